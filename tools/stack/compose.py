"""docker-compose's Kafka, secured like the local stack (see docker-compose.yml):

1. `medsettle stack compose-secrets` (the `secrets` init container, before the broker) generates the
   CA, the broker's certificate (names `kafka`, `localhost`, `127.0.0.1`) and every principal's
   password into the secrets volume, and renders `infra/kafka/server.properties.template` for the
   container (`server.properties`) with the client properties its health check authenticates with
   (`broker-client.properties`: the broker's own certificate, mutual TLS on INTERNAL). Files are
   0600 (the CA certificate 0644), owned by the broker's user (its key, its properties) or each
   service's own uid (its password). Nothing secret is in the compose file or the image.
2. the broker formats its storage and starts from that file;
3. `medsettle stack compose-setup` (the `kafka-setup` init container, once the broker is healthy)
   sets the SCRAM credentials as the broker (mutual TLS), grants the services' ACLs and creates the
   registry's topics as admin — `tools.stack.secure`, as the local stack does at every start.
"""

from __future__ import annotations

import os
from pathlib import Path

from services.console.auth import ConsoleSecrets
from tools.stack.kafka import render_server_properties
from tools.stack.principals import ADMIN, STACK_PRINCIPALS
from tools.stack.secrets import StackSecrets, write_private

HOSTNAME = "kafka"
LISTENERS = "CLIENT://0.0.0.0:9092,HOST://0.0.0.0:29092,INTERNAL://0.0.0.0:9094,CONTROLLER://0.0.0.0:9093"
ADVERTISED = f"CLIENT://{HOSTNAME}:9092,HOST://127.0.0.1:29092,INTERNAL://{HOSTNAME}:9094,CONTROLLER://{HOSTNAME}:9093"
DATA_DIR = "/tmp/kraft-combined-logs"
BROKER_UID = 1000
"""`appuser` of the apache/kafka image."""
SERVICE_UIDS = {"enrollment": 10011, "settlement": 10012, "catastrophic": 10013, "assistance": 10014,
                "audit": 10015, "intake": 10016, "gateway": 10017, "console": 10018}
"""The uid each service's container runs as (docker-compose.yml `user:`; the PostgreSQL password files
of infra/postgres/compose/generate-secrets.sh are owned the same way): each reads its own password."""


def prepare(root: Path, template: Path, chown: bool = True) -> list[str]:
    """Generate what is missing in `root` (the secrets volume) and render the broker's configuration."""
    secrets = StackSecrets.at(root)
    made = secrets.ensure(STACK_PRINCIPALS, sans=(HOSTNAME, "localhost", "127.0.0.1"))
    console = ConsoleSecrets(root / "console")
    made += console.ensure()
    write_private(root / "server.properties", render_server_properties(
        template.read_text(), listeners=LISTENERS, advertised_listeners=ADVERTISED,
        controller_address=f"{HOSTNAME}:9093", data_dir=DATA_DIR, secrets_dir=str(root)).encode())
    write_private(root / "broker-client.properties", (
        "security.protocol=SSL\nssl.keystore.type=PEM\n"
        f"ssl.keystore.location={secrets.broker_pem}\nssl.truststore.type=PEM\n"
        f"ssl.truststore.location={secrets.ca_cert}\n").encode())
    os.chmod(secrets.ca_cert, 0o644)
    os.chmod(root, 0o755)  # the directory: each file keeps its own owner and mode
    os.chmod(secrets.password_file(ADMIN).parent, 0o755)
    if chown:
        for path in (secrets.broker_pem, root / "server.properties", root / "broker-client.properties"):
            os.chown(path, BROKER_UID, BROKER_UID)
        for principal, uid in SERVICE_UIDS.items():  # admin's stays root's (kafka-setup runs as root)
            os.chown(secrets.password_file(principal), uid, uid)
        for path in (console.root, console.users_file, console.session_key_file):  # not the password: root's
            os.chown(path, SERVICE_UIDS["console"], SERVICE_UIDS["console"])
    return made
