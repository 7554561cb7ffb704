"""The testcontainers path (hosts with a Docker engine): the same Apache Kafka 4.1 (KRaft) and
PostgreSQL 15 as the local stack, as containers.

testcontainers' own `KafkaContainer` drives Confluent images; `ApacheKafkaContainer` runs the
official `apache/kafka` image in single-node KRaft mode. The host port a client must use is known
only once the container runs, so the container waits for a start script that sets the advertised
listener to it (the way testcontainers-java's `org.testcontainers.kafka.KafkaContainer` does).
"""

from __future__ import annotations

import tarfile
from io import BytesIO
from typing import Any

KAFKA_IMAGE = "apache/kafka:4.1.0"
"""The local stack's version (`infra/kafka/pom.xml`)."""
POSTGRES_IMAGE = "postgres:15"

_SCRIPT = "/tmp/testcontainers_start.sh"
_CLIENT_PORT = 9092


def kafka_container(image: str = KAFKA_IMAGE) -> Any:
    """A started single-node KRaft broker; `.bootstrap` is the address for clients on this host."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    container = DockerContainer(image)
    container.with_exposed_ports(_CLIENT_PORT)
    for key, value in {
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": f"PLAINTEXT://0.0.0.0:{_CLIENT_PORT},BROKER://0.0.0.0:9093,CONTROLLER://0.0.0.0:9094",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "BROKER",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9094",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "CLUSTER_ID": "bWVkc2V0dGxlLXRlc3Rz",
    }.items():
        container.with_env(key, value)
    container.with_command(f'sh -c "while [ ! -f {_SCRIPT} ]; do sleep 0.1; done; sh {_SCRIPT}"')
    container.start()
    host, port = container.get_container_host_ip(), container.get_exposed_port(_CLIENT_PORT)
    script = (f"export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://{host}:{port},BROKER://localhost:9093\n"
              "exec /etc/kafka/docker/run\n").encode()
    archive = BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        info = tarfile.TarInfo(_SCRIPT.lstrip("/"))
        info.size, info.mode = len(script), 0o755
        tar.addfile(info, BytesIO(script))
    container.get_wrapped_container().put_archive("/", archive.getvalue())
    wait_for_logs(container, r"Kafka Server started", timeout=120)
    container.bootstrap = f"{host}:{port}"
    return container


def postgres_container(user: str, password: str, image: str = POSTGRES_IMAGE) -> Any:
    """A started PostgreSQL whose superuser is `user` with `password` (SCRAM-SHA-256 for every TCP
    client: the image's default with a password); `.server_url` is a server URL without a database
    and without the password (the caller's password file has it), `.host` the host to name there."""
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        from testcontainers.postgres import PostgresContainer
    container = PostgresContainer(image, username=user, password=password, dbname="postgres")
    container.with_env("POSTGRES_HOST_AUTH_METHOD", "scram-sha-256")
    container.start()
    host, port = container.get_container_host_ip(), container.get_exposed_port(5432)
    container.host = host
    container.server_url = f"postgresql://{user}@{host}:{port}"
    return container
