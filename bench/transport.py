"""The yardstick of `bench/pipeline.py`: the same three hops with nothing but transport.

    .venv/bin/python bench/transport.py hop SERVICE     # one hop as a process (bench/pipeline.py starts them)

Each hop is a process like the layer it stands for, as that layer's principal, in its consumer group,
on the same topics of a namespace (same partitions), batched as the services are
(`BATCH_MAX_RECORDS`, `BATCH_TIMEOUT_MS`): it reads a batch, decodes every record's JSON and encodes
it again (the records keep their size: real discharge envelopes), sends them with the services'
idempotent producer (`runtime.publisher.Publisher`), waits for the acknowledgements and commits the
batch's offsets. No database, no contracts, no pricing: what is left of a layer when the work is gone.
`run(...)` times the three hops on a list of prepared discharges; `bench/pipeline.py` calls it in the
same run as the real services and prints the ratio.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from aiokafka import AIOKafkaConsumer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contracts.topics import BASIC_SETTLED, CATASTROPHIC_SETTLED, DISCHARGES, STATEMENTS  # noqa: E402
from runtime.kafka_access import KafkaAccess  # noqa: E402
from runtime.publisher import Publisher  # noqa: E402
from runtime.settings import Settings  # noqa: E402
from tools.stack.common import cpu_seconds  # noqa: E402

HOPS = {"settlement": (DISCHARGES, BASIC_SETTLED), "catastrophic": (BASIC_SETTLED, CATASTROPHIC_SETTLED),
        "assistance": (CATASTROPHIC_SETTLED, STATEMENTS)}
"""Each hop: the layer whose principal and group it uses, its input and output topic."""


async def hop(service: str) -> None:
    """Forward `service`'s input to its output until terminated (the settings from the environment)."""
    source, target = HOPS[service]
    settings = Settings(SERVICE_NAME=service)
    consumer = AIOKafkaConsumer(settings.topic(source), group_id=f"{settings.consumer_group}.{source}",
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                fetch_min_bytes=settings.fetch_min_bytes, fetch_max_wait_ms=settings.fetch_max_wait_ms,
                                client_id=f"medsettle-{service}", **settings.kafka_options())
    publisher = Publisher(settings.kafka_options(), client_id=f"medsettle-{service}")
    await consumer.start()
    await publisher.start()
    out_topic = settings.topic(target)
    try:
        while True:
            fetched = await consumer.getmany(timeout_ms=settings.batch_timeout_ms,
                                             max_records=settings.batch_max_records)
            records = [r for part in fetched.values() for r in part]
            if not records:
                continue
            out: list[tuple[str, bytes, bytes | None, Mapping[str, str]]] = []
            for r in records:
                envelope = json.loads(r.value or b"")
                out.append((out_topic, json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode(),
                            r.key, {"event_type": str(envelope["event_type"])}))
            await publisher.send_all(out)
            await consumer.commit()
    finally:
        await publisher.stop()
        await consumer.stop()


def start_hops(kafka: dict[str, KafkaAccess], prefix: str) -> list[subprocess.Popen[bytes]]:
    """The three hops as processes in the namespace `prefix`, each as its layer's principal."""
    procs = []
    for service in HOPS:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")}
        env.update(kafka[service].env(), TOPIC_PREFIX=prefix, SERVICE_NAME=service)
        with Path(f"/tmp/bench-transport-{service}.log").open("wb") as log:
            procs.append(subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "hop", service], env=env,
                                          stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    return procs


async def wait_for(admin: KafkaAccess, topic: str, n: int, t0: float, timeout: float = 900) -> float:
    """Seconds since `t0` when `topic` holds `n` records (the sum of its partitions' end offsets;
    nothing is deleted in a namespace this young)."""
    from tools.stack.lag import partitions

    consumer = AIOKafkaConsumer(**admin.options(), client_id="medsettle-bench")
    await consumer.start()
    try:
        parts = await partitions(consumer, topic)
        while sum((await consumer.end_offsets(parts)).values()) < n:
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"{topic} did not reach {n} records in {timeout:.0f}s")
            await asyncio.sleep(0.1)
        return time.perf_counter() - t0
    finally:
        await consumer.stop()


async def run(admin: KafkaAccess, kafka: dict[str, KafkaAccess], prefix: str, discharges: Sequence[object],
              ) -> tuple[float, dict[str, float], dict[str, float | None]]:
    """Publish `discharges` (prepared, `tools.hospital.publish.Prepared`) in the namespace `prefix` with
    the three hops running; returns the publishing time, the seconds until each hop's output held
    every record, and each hop's CPU seconds."""
    from tools.hospital.publish import publish

    procs = start_hops(kafka, prefix)
    try:
        await asyncio.sleep(3)  # the hops join their groups before the records arrive, as the services have
        t0 = time.perf_counter()
        await publish(list(discharges), admin, progress=False, prefix=prefix)  # type: ignore[arg-type]
        t_publish = time.perf_counter() - t0
        done = {service: await wait_for(admin, prefix + target, len(discharges), t0)
                for service, (_, target) in HOPS.items()}
        cpu = {service: cpu_seconds(p.pid) for service, p in zip(HOPS, procs, strict=True)}
        return t_publish, done, cpu
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "hop" or sys.argv[2] not in HOPS:
        sys.exit(f"usage: {sys.argv[0]} hop {{{','.join(HOPS)}}}")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(hop(sys.argv[2]))
