"""Decoding the hot records: the native fast path against the pydantic contracts, in one process.

    .venv/bin/python bench/codec.py [--records 500] [--rounds 5]

Generates discharges (the real bills of `tools.generate`, as a hospital's producer writes them)
and the layers' results of them, then decodes each record the ways the platform can: pydantic
alone (`contracts.codec.decode_by_pydantic`, with one expected type and with a topic's several),
and `contracts.codec.decode` (the native fast path of `contracts.native`, pydantic for what it
declines). Prints microseconds per record and the ratio to pydantic, interleaving the rounds so
that other load on the host falls on all of them alike, and checks that every record took the
fast path with the same result.

Then the encoding settlement does per new discharge, the old way against the new, on the same
decoded discharges: the content digest's text (`json.dumps` sorted, against
`contracts.codec.canonical_json`, checked to give the same bytes) and the stored input
(`model_dump_json`, against `encode_json` of the dump the digest already made).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contracts import EVENT_TYPES, Contract, native  # noqa: E402
from contracts.codec import canonical_json, decode, decode_by_pydantic, encode_json  # noqa: E402
from contracts.topics import BASIC_SETTLED, BY_NAME, DISCHARGES, STATEMENTS  # noqa: E402
from tests.hostile.jsonbytes import dumps  # noqa: E402
from tests.hostile.world import fuzz_bases  # noqa: E402
from tools.generate import generate_discharges, generate_population  # noqa: E402


def records(n: int) -> dict[str, list[bytes]]:
    providers, persons = generate_population(n, 20, seed=7, year=2026)
    stream = generate_discharges(n, seed=7, year=2026, providers=providers, persons=persons)
    bases = fuzz_bases(persons, providers, stream, [])
    return {topic: [dumps(b.envelope) for b in bases[topic]] for topic in (DISCHARGES, BASIC_SETTLED, STATEMENTS)}


def per_record(fn: Callable[[Any], object], raws: list[Any]) -> float:
    t = time.perf_counter()
    for r in raws:
        fn(r)
    return (time.perf_counter() - t) / len(raws) * 1e6


def main(n: int, rounds: int) -> None:
    print(f"generating {n:,} discharges and their layers' results ...")
    by_topic = records(n)
    for topic, raws in by_topic.items():
        expected: tuple[type[Contract], ...] = tuple(EVENT_TYPES[p] for p in BY_NAME[topic].payloads)
        model = EVENT_TYPES[BY_NAME[topic].payloads[0]]
        exp = {m.__name__: m for m in expected}
        for r in raws:  # every record takes the fast path, with pydantic's result
            fast = native.decode(r, exp)
            assert fast is not None and fast.payload == decode_by_pydantic(r, model).payload, topic
        ways: dict[str, Callable[[bytes], object]] = {
            "pydantic, one type": lambda r, m=model: decode_by_pydantic(r, m),  # type: ignore[misc]
            f"pydantic, the topic's {len(expected)} types": lambda r, e=expected: decode_by_pydantic(r, *e),  # type: ignore[misc]
            "decode (native fast path)": lambda r, e=expected: decode(r, *e),  # type: ignore[misc]
        }
        times: dict[str, list[float]] = {k: [] for k in ways}
        for _ in range(rounds):
            for name, fn in ways.items():
                times[name].append(per_record(fn, raws))
        size = sum(map(len, raws)) / len(raws)
        print(f"{topic}: {len(raws):,} records of {size:,.0f} bytes on average ({len(expected)} payload types)")
        base = statistics.median(times["pydantic, one type"])
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"  {name:<34} {med:8.1f} µs/record  ({med / base:.2f} × pydantic with one type)")
    encoding(by_topic[DISCHARGES], rounds)


def encoding(raws: list[bytes], rounds: int) -> None:
    """Settlement's encoding of a new discharge: its digest's text and its stored input."""
    models = [decode(r, *(EVENT_TYPES[p] for p in BY_NAME[DISCHARGES].payloads)).payload for r in raws]
    dumps_ = [m.model_dump(mode="json") for m in models]
    for m, d in zip(models, dumps_, strict=True):
        assert canonical_json(d) == json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
        assert encode_json(d) == m.model_dump_json()
    ways: dict[str, tuple[Callable[[Any], object], list[Any]]] = {
        "digest text: json.dumps, sorted": (lambda d: json.dumps(d, sort_keys=True, separators=(",", ":")).encode(),
                                            dumps_),
        "digest text: canonical_json": (canonical_json, dumps_),
        "stored input: model_dump_json": (lambda m: m.model_dump_json(), models),
        "stored input: encode_json(dump)": (encode_json, dumps_),
        "(the dump both start from)": (lambda m: m.model_dump(mode="json"), models),
    }
    times: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(rounds):
        for name, (fn, xs) in ways.items():
            times[name].append(per_record(fn, xs))
    print(f"encoding a new discharge's content ({len(raws):,} discharges, the same bytes either way):")
    med = {k: statistics.median(v) for k, v in times.items()}
    for old, new in (("digest text: json.dumps, sorted", "digest text: canonical_json"),
                     ("stored input: model_dump_json", "stored input: encode_json(dump)")):
        print(f"  {old:<34} {med[old]:8.1f} µs/record")
        print(f"  {new:<34} {med[new]:8.1f} µs/record  ({med[new] / med[old]:.2f}×)")
    print(f"  {'(the dump both start from)':<34} {med['(the dump both start from)']:8.1f} µs/record")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    main(args.records, args.rounds)
