"""The platform's services as local processes (for the demo, the README and the tests), and the
operator console (`console`, services/console/: http://127.0.0.1:8090, as the Kafka principal
`console` and the read-only PostgreSQL role `medsettle_operator`, its sign-in secrets generated into
`.local/secrets/console/`).

`./medsettle services start|stop|status [NAME ...]` drives these functions. Each service runs as
`python -m services.<name>` with the local stack's connection settings and its pid in
`.local/run/<name>.pid`: to PostgreSQL as its own role (`medsettle_<name>`), with the password
file of that role alone as `PGPASSFILE` (`tools.stack.connection.service_connection`), in the
environment, never on its command line. It writes its own log, JSON with personal data masked, to
`.local/logs/<name>.log` (`LOG_FILE`), rotated: at most `LOG_BACKUPS` + 1 files of `LOG_MAX_BYTES`
(3 × 20 MiB by default). Its raw stdout/stderr (FastStream's access log; a failure before logging is
set up, an interpreter crash) go to `.local/logs/<name>.out`, rotated the same way by
`tools.stack.logpipe`. With `MEDSETTLE_LOCAL` set, `.local` means that directory
(see `tools.stack.common.paths`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from runtime.logging import LogSettings
from runtime.settings import SERVICES as SERVICES
from tools.stack import logpipe
from tools.stack.common import StackError, paths, process_alive, project_root, reap
from tools.stack.connection import database_url, local_access, service_connection


def _pid_file(name: str) -> Path:
    return paths().run / f"{name}.pid"


def endpoint_file(name: str) -> Path:
    """Where the service `name` started by `start` writes its health and metrics endpoint (JSON)."""
    return paths().run / f"{name}.health.json"


def endpoint_of(name: str) -> str | None:
    """The URL of the health and metrics endpoint of the service `name` started here, while it runs."""
    from runtime.health import read_endpoint

    if pid_of(name) is None:
        return None
    found = read_endpoint(endpoint_file(name))
    return found["url"] if found is not None else None


API_SERVICE = "gateway"
"""The service with an HTTP API for hospitals (besides every service's health endpoint)."""


def api_file(name: str) -> Path:
    """Where the gateway started by `start` writes its API's endpoint once it listens (JSON)."""
    return paths().run / f"{name}.api.json"


def api_url_of(name: str) -> str | None:
    """The URL of the hospital API of the service `name` started here (the gateway), while it listens."""
    from runtime.health import read_endpoint

    if pid_of(name) is None:
        return None
    found = read_endpoint(api_file(name))
    return found["url"] if found is not None else None


def configured_api_url(env: dict[str, str] | None = None) -> str:
    """Where the gateway's hospital API listens when started here: `GATEWAY_HOST`:`GATEWAY_PORT`
    (http://127.0.0.1:8080 unless the environment says otherwise)."""
    from runtime.health import url_host
    from runtime.settings import Settings

    s = Settings.model_validate({**os.environ, **(env or {}), "SERVICE_NAME": API_SERVICE})
    return f"http://{url_host(s.gateway_host)}:{s.gateway_port}"


def log_of(name: str) -> Path:
    """Where the service `name` started by `start` logs."""
    return paths().logs / f"{name}.log"


def pid_of(name: str) -> int | None:
    """The pid of the service `name` started here, if it is running (a zombie is not)."""
    try:
        pid = int(_pid_file(name).read_text())
    except (OSError, ValueError):
        return None
    return pid if process_alive(pid) else None


def spawn(name: str, env: dict[str, str], log: Path, detach: bool = True) -> subprocess.Popen[bytes]:
    """`python -m services.<name>` with `env` added, logging to `log` (rotated, `LOG_FILE`) and its raw
    stdout/stderr to `log` with the suffix `.out` (rotated by tools.stack.logpipe). `detach`: in its
    own session, so it outlives the terminal that started it. Its health endpoint listens on a free
    port (`HEALTH_PORT=0`) unless `env` or the environment names one: several stacks share a host."""
    inherited = dict(os.environ)
    if any(k.startswith("KAFKA_") for k in env):  # who it is to the broker is `env`'s alone
        inherited = {k: v for k, v in inherited.items() if not k.startswith("KAFKA_")}
    full_env = {**inherited, **env, "LOG_FILE": str(log)}
    full_env.pop("PGPASSWORD", None)  # a password in the environment would be the caller's, not the service's
    full_env.setdefault("HEALTH_PORT", "0")
    with logpipe.output_to(log.with_suffix(".out"), LogSettings.of(full_env)) as out:
        return subprocess.Popen([sys.executable, "-m", f"services.{name}"], cwd=project_root(), env=full_env,
                                stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=detach)


CONSOLE = "console"
"""The operator console (services/console/): started and stopped with the services."""
PROCESSES = (*SERVICES, CONSOLE)
CONSOLE_PORT = 8090
"""Where `start` runs the console: http://127.0.0.1:8090 (`CONSOLE_PORT` in the environment overrides)."""


def console_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('CONSOLE_PORT') or CONSOLE_PORT}"


def console_password_file() -> Path:
    """The generated operator's password (the console's sign-in), made by `start` if missing."""
    from services.console.auth import ConsoleSecrets
    from tools.stack.secrets import secrets_dir

    return ConsoleSecrets(secrets_dir(paths().local) / "console").password_file


def _console_connection(server: str, given: str | None) -> dict[str, str]:
    """The console's database access: the operator role's password file alone (it reads as that role),
    and its own files (the operators' password hashes, the session key), generated if missing."""
    from runtime.settings import OPERATOR_ROLE
    from services.console.auth import ConsoleSecrets
    from tools.stack.connection import _answers
    from tools.stack.connection import passfile as stack_passfile
    from tools.stack.pg import with_user
    from tools.stack.secrets import secrets_dir

    port = int(os.environ.get("CONSOLE_PORT") or CONSOLE_PORT)
    if _answers("127.0.0.1", port, 0.5):
        raise StackError(f"port {port} is in use (another stack's console?): set CONSOLE_PORT to a free port")
    own = secrets_dir(paths().local) / "console"
    ConsoleSecrets(own).ensure()
    operator = passfile_of(OPERATOR_ROLE) or given or stack_passfile()
    return {"DATABASE_URL": with_user(server, OPERATOR_ROLE), "CONSOLE_SECRETS": str(own),
            "CONSOLE_PORT": str(port),
            **({"PGPASSFILE": operator} if operator else {})}


def passfile_of(role: str) -> str | None:
    """The local stack's password file of `role` alone, if there is one."""
    from tools.stack.pg_secrets import PgSecrets

    found = PgSecrets.of(paths()).passfile(role)
    return str(found) if found.is_file() else None


def start(name: str, env: dict[str, str] | None = None) -> int:
    """Start a service (or the console) unless it runs; returns its pid. It is its own principal to
    the broker: its password (from `.local/secrets/kafka/<name>.password`) reaches it in its
    environment only."""
    if (pid := pid_of(name)) is not None:
        return pid
    p = paths()
    p.run.mkdir(parents=True, exist_ok=True)
    env = dict(env or {})
    if "KAFKA_USERNAME" not in env:  # the caller did not say who it is: itself, from the stack's secrets
        env = {**local_access(name, env.get("KAFKA_BOOTSTRAP_SERVERS")).env(), **env}
    if name == CONSOLE:
        connection = _console_connection(env.get("DATABASE_URL") or database_url(), env.get("PGPASSFILE"))
    else:
        connection = service_connection(name, env.get("DATABASE_URL") or database_url(), env.get("PGPASSFILE"))
    endpoint_file(name).unlink(missing_ok=True)
    if name == API_SERVICE:
        api_file(name).unlink(missing_ok=True)
        env.setdefault("GATEWAY_PORT_FILE", str(api_file(name)))
    proc = spawn(name, {**env, **connection, "HEALTH_PORT_FILE": str(endpoint_file(name))}, log_of(name))
    _pid_file(name).write_text(str(proc.pid))
    return proc.pid


def running() -> dict[str, int]:
    """The services (and the console) started here that are running, with their pids."""
    return {name: pid for name in PROCESSES if (pid := pid_of(name)) is not None}


def stop(name: str, timeout: float = 20.0) -> bool:
    """Stop a service (SIGTERM, then SIGKILL after `timeout`); returns whether it was running."""
    pid = pid_of(name)
    if pid is None:
        _pid_file(name).unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_of(name) is not None and time.monotonic() < deadline:
        reap(pid)
        time.sleep(0.1)
    if pid_of(name) is not None:
        os.kill(pid, signal.SIGKILL)
        while pid_of(name) is not None:
            reap(pid)
            time.sleep(0.05)
    _pid_file(name).unlink(missing_ok=True)
    return True
