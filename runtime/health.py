"""Each service's HTTP endpoint: liveness, readiness and Prometheus metrics on one port.

| path | answers |
|---|---|
| `/healthz` | liveness: 200 `{"live": true}` whenever the event loop runs (the server runs in the service's loop) |
| `/readyz` | readiness: 200 when every check passes, else 503; the JSON body names each check and why it failed |
| `/metrics` | Prometheus text format (`runtime.metrics`), lag and backlog measured at the scrape |

Readiness checks (each bounded by `CHECK_TIMEOUT_S`): `database` — the pool answers `SELECT 1`;
`broker` — the service's producer fetches the cluster's metadata; `consumers` — every subscription
has partitions assigned (a pattern subscription, such as the intake's on hospitals' topics, may
match no topic yet and is not required); `projections` — the registry projections are started;
`running` — the service has started and not stopped on a fatal error.

The server is uvicorn running a plain ASGI app in the service's own event loop (no thread, no
signal handlers: FastStream keeps SIGINT/SIGTERM). `HEALTH_PORT=0` picks a free port; the port
is logged (`health endpoint listening`) and written to `HEALTH_PORT_FILE` when that is set.

`python -m runtime.health SERVICE [--live]` asks a service on this host for its readiness
(liveness) and exits 0 or 1: the containers' health check.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from runtime import metrics
from runtime.logging import get_logger

if TYPE_CHECKING:
    from runtime.app import ServiceContext

CHECK_TIMEOUT_S = 2.0
log = get_logger("runtime.health")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


async def _check(name: str, probe: Callable[[], Awaitable[str | None]]) -> tuple[str, dict[str, Any]]:
    """Run one probe with the timeout: ok, or the reason it failed."""
    try:
        problem = await asyncio.wait_for(probe(), CHECK_TIMEOUT_S)
    except TimeoutError:
        problem = f"no answer within {CHECK_TIMEOUT_S:g} s"
    except Exception as exc:  # noqa: BLE001 - any failure of a probe is the answer "not ready", with its reason
        problem = f"{type(exc).__name__}: {exc}"
    return name, ({"ok": True} if problem is None else {"ok": False, "error": problem})


class SubscriberProbe:
    """One subscription's FastStream subscriber, as readiness and the lag gauge see it."""

    def __init__(self, name: str, subscriber: Any, *, required: bool = True) -> None:
        self.name = name
        self.subscriber = subscriber
        self.required = required
        """False for a pattern subscription, which may match no topic yet."""

    def consumer(self) -> Any:
        """The subscriber's aiokafka consumer while it runs, else None."""
        return getattr(self.subscriber, "consumer", None)

    def assigned(self) -> bool:
        consumer = self.consumer()
        return consumer is not None and bool(consumer.assignment())

    async def lag(self) -> int | None:
        """Records behind the high watermark of the consumer's last fetch, summed over its
        partitions (None before it fetched anything)."""
        consumer = self.consumer()
        if consumer is None:
            return None
        total, known = 0, False
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is None:
                continue
            known = True
            total += max(0, high - await consumer.position(tp))
        return total if known else None


class Health:
    """What `/readyz` and `/metrics` know of one running service."""

    def __init__(self, ctx: ServiceContext, service: str) -> None:
        self.ctx = ctx
        self.service = service
        self.started = False

    # ------------------------------------------------------------------ readiness

    async def _database(self) -> str | None:
        if self.ctx.pool is None:
            return "the database pool is not open yet"
        async with self.ctx.pool.acquire(timeout=CHECK_TIMEOUT_S) as conn:
            await conn.fetchval("SELECT 1")
        return None

    async def _broker(self) -> str | None:
        await self.ctx.publisher.ping()
        return None

    async def _consumers(self) -> str | None:
        missing = [s.name for s in self.ctx.subscribers if s.required and not s.assigned()]
        return f"no partitions assigned: {', '.join(missing)}" if missing else None

    async def _projections(self) -> str | None:
        missing = [t for t in self.ctx.projection_topics if t not in self.ctx.projections]
        return f"not started: {', '.join(missing)}" if missing else None

    async def _running(self) -> str | None:
        if "fatal" in self.ctx.state:
            return str(self.ctx.state["fatal"])
        return None if self.started else "starting"

    async def readiness(self) -> dict[str, Any]:
        checks = dict(await asyncio.gather(
            _check("running", self._running), _check("database", self._database), _check("broker", self._broker),
            _check("consumers", self._consumers), _check("projections", self._projections)))
        failed = [name for name, c in checks.items() if not c["ok"]]
        return {"service": self.service, "ready": not failed, "failed": failed, "checks": checks}

    # ------------------------------------------------------------------ gauges measured at a scrape

    async def refresh_gauges(self) -> None:
        await asyncio.gather(self._lag(), self._outbox(), self._projection_lag(), return_exceptions=True)

    async def _lag(self) -> None:
        for sub in self.ctx.subscribers:
            assigned = sub.consumer().assignment() if sub.consumer() is not None else set()
            metrics.ASSIGNED_PARTITIONS.labels(self.service, sub.name).set(len(assigned))
            lag = await asyncio.wait_for(sub.lag(), CHECK_TIMEOUT_S)
            if lag is not None:
                metrics.CONSUMER_LAG.labels(self.service, sub.name).set(lag)

    async def _outbox(self) -> None:
        if self.ctx.pool is None:
            return
        async with self.ctx.pool.acquire(timeout=CHECK_TIMEOUT_S) as conn:
            n = await conn.fetchval("SELECT count(*) FROM outbox",
                                    timeout=CHECK_TIMEOUT_S)
        metrics.OUTBOX_BACKLOG.labels(self.service).set(n)

    async def _projection_lag(self) -> None:
        for name, projection in list(self.ctx.projections.items()):
            lag = await asyncio.wait_for(projection.lag(), CHECK_TIMEOUT_S)
            metrics.PROJECTION_LAG.labels(self.service, name).set(lag)

    # ------------------------------------------------------------------ the ASGI app

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # uvicorn runs with lifespan off; answer anyway
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b"method not allowed\n", "text/plain")
        elif path == "/healthz":
            await _respond(send, 200, _json({"service": self.service, "live": True}), "application/json")
        elif path == "/readyz":
            body = await self.readiness()
            await _respond(send, 200 if body["ready"] else 503, _json(body), "application/json")
        elif path == "/metrics":
            await self.refresh_gauges()
            await _respond(send, 200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
        else:
            await _respond(send, 404, b"not found: /healthz, /readyz, /metrics\n", "text/plain")


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True).encode() + b"\n"


async def _respond(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the service's event loop: the service (FastStream) owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class EmbeddedServer:
    """An ASGI app served by uvicorn in the service's own event loop on `host:port` (0: a free
    port, logged and written to `port_file`): the health endpoint, or the gateway's HTTP API."""

    what = "the HTTP endpoint"
    port_setting = "the port setting"
    paths: tuple[str, ...] = ()

    def __init__(self, app: ASGIApp, host: str, port: int, port_file: str | None = None, *,
                 backlog: int = 64) -> None:
        self.app = app
        self.backlog = backlog
        self.host, self.requested_port, self.port_file = host, port, port_file
        self.port: int | None = None
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.requested_port))
        except OSError as exc:
            sock.close()
            raise RuntimeError(f"{self.what} cannot listen on {self.host}:{self.requested_port} ({exc}); "
                               f"set {self.port_setting} (0: any free port)") from exc
        sock.listen(self.backlog)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)  # not "Started server process" at INFO
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="off",
                                timeout_graceful_shutdown=1)
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="health-endpoint")
        deadline = time.monotonic() + 10
        while not self._server.started and not self._task.done() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # uvicorn says it started by a flag only
        if self._task.done():
            self._task.result()  # raises what went wrong
        if self.port_file:
            write_endpoint(Path(self.port_file), self.host, self.port)
        log.info(f"{self.what} listening", url=f"http://{url_host(self.host)}:{self.port}", paths=list(self.paths))
        return self.port

    @property
    def url(self) -> str | None:
        return None if self.port is None else f"http://{url_host(self.host)}:{self.port}"

    async def stop(self) -> None:
        if self.port_file:
            _remove(Path(self.port_file))
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)
        self._server = self._task = None


class HealthServer(EmbeddedServer):
    """The endpoint of one service: started first in the service's start-up, stopped last."""

    what = "health endpoint"
    port_setting = "HEALTH_PORT"
    paths = ("/healthz", "/readyz", "/metrics")

    def __init__(self, health: Health, host: str, port: int, port_file: str | None = None) -> None:
        super().__init__(health, host, port, port_file)
        self.health = health


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def url_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def write_endpoint(path: Path, host: str, port: int) -> None:
    """The endpoint's state file: JSON with host, port, url and pid (written atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"host": host, "port": port, "url": f"http://{url_host(host)}:{port}",
                               "pid": os.getpid()}) + "\n")
    tmp.replace(path)


def read_endpoint(path: Path) -> dict[str, Any] | None:
    """What `write_endpoint` wrote, or None."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("url"), str) else None


def probe(url: str, timeout: float = 3.0) -> tuple[int, dict[str, Any] | None]:
    """GET `url` (a `/healthz` or `/readyz`): the status and the JSON body (status 0 when nothing answers)."""
    import urllib.error  # noqa: PLC0415 - only the probe command and the CLI use it
    import urllib.request  # noqa: PLC0415

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read())
        except ValueError:
            return exc.code, None
    except (OSError, ValueError):
        return 0, None


def main(argv: list[str] | None = None) -> int:
    """`python -m runtime.health SERVICE [--live]`: 0 when the service on this host is ready (live)."""
    from runtime.settings import load_settings  # noqa: PLC0415

    args = argv if argv is not None else sys.argv[1:]
    names = [a for a in args if not a.startswith("--")]
    if len(names) != 1:
        sys.stderr.write("usage: python -m runtime.health SERVICE [--live]\n")
        return 2
    settings = load_settings(names[0])
    path = "/healthz" if "--live" in args else "/readyz"
    status, body = probe(f"http://{url_host(settings.health_host)}:{settings.health_port}{path}")
    if status != 200:
        failed = (body or {}).get("failed") or "no answer"
        sys.stderr.write(f"{names[0]}: not {'live' if path == '/healthz' else 'ready'} ({status}): {failed}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
