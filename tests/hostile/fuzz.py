"""Seeded mutations of real valid envelopes: the same seed and bases always give the same records.

Each fuzzed record starts from a valid base of its topic (`tests.hostile.world.fuzz_bases`), gets
its own event id (and its own claim id on claim topics, kept consistent wherever the payload
repeats it), so that no fuzzed record is a mere redelivery of another, and then one to three
mutations:

    byte_flip          flip bits of one to three bytes of the encoded value
    truncate           cut the value anywhere
    delete_field       remove a key anywhere in the tree
    type_swap          a value becomes another JSON type
    extreme_value      a value becomes an extreme one (huge, negative, NaN, year 9999, 2**63, ...)
    duplicate_key      an object carries one of its keys twice (the second value another)
    duplicate_element  an array element is repeated
    deep_nesting       a value is wrapped in arrays or objects, up to 20,000 deep
    big_number         a value becomes an integer or decimal of hundreds to thousands of digits
    unicode            control characters, NUL, lone surrogates, bidi overrides, emoji in a string
    key                the Kafka key: null (not on a compacted topic: its broker refuses that),
                       empty, another subject, or bytes that are not UTF-8

Some mutations leave a record valid (a deleted optional field, a duplicated diagnosis code): the
accounting then expects it to be accepted.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.topics import ALERTS, BASIC_SETTLED, BY_NAME, CATASTROPHIC_SETTLED, DISCHARGES, STATEMENTS
from tests.hostile.jsonbytes import DupKey, Raw, dumps, set_path, walk
from tests.hostile.world import Base, claim_of

MUTATIONS = ("byte_flip", "truncate", "delete_field", "type_swap", "extreme_value", "duplicate_key",
             "duplicate_element", "deep_nesting", "big_number", "unicode", "key")

EXTREMES: tuple[Any, ...] = (
    "", " ", "x" * 20_000, 0, -1, 2**31, 2**63, -(2**63) - 1, 10**30, "-1.00", "NaN", "Infinity", "-0.00",
    "1000000000000.00", "1e12", "0.001", "9999-12-31", "0001-01-01", "2026-02-30", "2026-13-01",
    "9999-12-31T23:59:59Z", "2026-06-01T08:00:00", True, False, None, [], {}, "null", "\x00",
)
UNICODE = ("\x00", "\x07", "\x1b[31m", "\x7f", "\u0085", "\u200b", "\u202e", "\ufeff", "\ud800", "\udfff",
           "\U0001f600", "\uffff", "é", "𠜎")


@dataclass(frozen=True)
class Fuzzed:
    index: int
    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    mutations: tuple[str, ...]
    event_id: str
    claim_id: str | None


def _fresh(base: Base, rng: random.Random, index: int) -> dict[str, Any]:
    """The base with its own event id, and its own claim id where the topic has one."""
    tree = copy.deepcopy(base.envelope)
    tree["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    p = tree["payload"]
    number = f"FZ{index:06d}"
    if base.topic == DISCHARGES:
        p["hospital_claim_id"] = number
        tree["correlation_id"] = f"{p['hospital_id']}:{number}"
    elif base.topic in (BASIC_SETTLED, CATASTROPHIC_SETTLED):
        p["claim"]["hospital_claim_id"] = number
        p["claim"]["claim_id"] = tree["correlation_id"] = f"{p['claim']['hospital_id']}:{number}"
    elif base.topic == STATEMENTS:
        p["hospital_claim_id"] = number
        p["claim_id"] = tree["correlation_id"] = f"{p['hospital_id']}:{number}"
    elif base.topic == ALERTS:
        p["claim_id"] = tree["correlation_id"] = f"{p['hospital_id']}:{number}"
        p["alert_id"] = f"{p['rule']}:{p['claim_id']}"
    return tree


def _leaves(tree: Any) -> list[str]:
    return [path for path, node in walk(tree) if not isinstance(node, (dict, list))]


def _pick(rng: random.Random, items: Sequence[Any]) -> Any:
    return items[rng.randrange(len(items))]


def _deep(rng: random.Random) -> Raw:
    depth = _pick(rng, (64, 256, 1000, 5000, 20_000))
    if rng.random() < 0.5:
        return Raw(b"[" * depth + b"1" + b"]" * depth)
    return Raw(b'{"a":' * depth + b"1" + b"}" * depth)


def _big(rng: random.Random) -> Raw:
    digits = "".join(str(rng.randrange(10)) for _ in range(_pick(rng, (300, 1000, 4301, 6000))))
    digits = "1" + digits
    return Raw(digits.encode() if rng.random() < 0.6 else f'"{digits}.{digits[:2]}"'.encode())


def _swap_type(value: Any, rng: random.Random) -> Any:
    options: list[Any] = [0, "0", True, None, [value], {"v": value}, 1.5]
    return _pick(rng, [o for o in options if type(o) is not type(value)])


class _Mutator:
    def __init__(self, rng: random.Random, base: Base, tree: dict[str, Any]) -> None:
        self.rng, self.base, self.tree = rng, base, tree
        self.key: bytes | None = base.key.encode()
        self.value: bytes | None = None  # set once a byte-level mutation has run

    def bytes(self) -> bytes:
        return self.value if self.value is not None else dumps(self.tree)

    def apply(self, name: str) -> None:
        rng = self.rng
        if name == "key":  # a compacted topic's broker refuses a record without key: never null there
            keys = (b"", b"\xff\xfe\xfd", b"110105194912310021", "他人".encode(), (self.base.key + "x").encode())
            self.key = _pick(rng, keys if BY_NAME[self.base.topic].cleanup_policy == "compact" else (None, *keys))
            return
        if name in ("byte_flip", "truncate"):
            data = bytearray(self.bytes())
            if name == "truncate":
                self.value = bytes(data[: rng.randrange(len(data))])
            else:
                for _ in range(rng.randint(1, 3)):
                    i = rng.randrange(len(data))
                    data[i] ^= 1 << rng.randrange(8)
                self.value = bytes(data)
            return
        if self.value is not None:  # the tree no longer describes the bytes
            return
        nodes = walk(self.tree)
        path, node = _pick(rng, nodes)
        objects: list[dict[Any, Any]] = [n for n in [self.tree, *(n for _, n in nodes)] if isinstance(n, dict) and n]
        if name == "delete_field":
            obj = _pick(rng, objects)
            del obj[_pick(rng, [k for k in obj if isinstance(k, str)] or list(obj))]
        elif name == "type_swap":
            set_path(self.tree, path, _swap_type(node, rng))
        elif name == "extreme_value":
            set_path(self.tree, _pick(rng, _leaves(self.tree) or [path]), copy.deepcopy(_pick(rng, EXTREMES)))
        elif name == "duplicate_key":
            obj = _pick(rng, objects)
            k = _pick(rng, [k for k in obj if isinstance(k, str)] or ["event_id"])
            obj[DupKey(k, len(obj))] = _pick(rng, (obj.get(k), "", None, 0, _pick(rng, EXTREMES)))
        elif name == "duplicate_element":
            arrays = [(p, n) for p, n in nodes if isinstance(n, list) and n]
            if arrays:
                p, arr = _pick(rng, arrays)
                arr.insert(rng.randrange(len(arr) + 1), copy.deepcopy(_pick(rng, arr)))
        elif name == "deep_nesting":
            set_path(self.tree, path, _deep(rng))
        elif name == "big_number":
            set_path(self.tree, _pick(rng, _leaves(self.tree) or [path]), _big(rng))
        elif name == "unicode":
            strings = [(p, n) for p, n in nodes if isinstance(n, str)]
            if strings:
                p, s = _pick(rng, strings)
                i = rng.randrange(len(s) + 1)
                set_path(self.tree, p, s[:i] + _pick(rng, UNICODE) + s[i:])


def fuzz(bases: dict[str, list[Base]], n: int, seed: int, *, start: int = 0) -> Iterator[Fuzzed]:
    """`n` fuzzed records, topics in turn; record `i` depends only on (`seed`, `i`) and the bases."""
    topics = sorted(t for t, bs in bases.items() if bs)
    for index in range(start, start + n):
        rng = random.Random(f"{seed}:{index}")
        topic = topics[index % len(topics)]
        base = _pick(rng, bases[topic])
        tree = _fresh(base, rng, index)
        event_id, claim_id = tree["event_id"], claim_of(topic, tree["payload"])
        mutator = _Mutator(rng, base, tree)
        names = tuple(_pick(rng, MUTATIONS) for _ in range(rng.choice((1, 1, 1, 2, 3))))
        for name in names:
            mutator.apply(name)
        value = mutator.bytes()
        yield Fuzzed(index, topic, mutator.key, value, base.headers, names, event_id, claim_id)


def identifiers(topic: str, value: bytes | None) -> tuple[str | None, str | None]:
    """(event id, claim id) as a consumer would read them from the bytes, if it can."""
    try:
        tree = json.loads(value or b"")
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(tree, dict):
        return None, None
    event_id = tree.get("event_id") if isinstance(tree.get("event_id"), str) else None
    return event_id, claim_of(topic, tree.get("payload"))


__all__ = ["MUTATIONS", "Fuzzed", "fuzz", "identifiers"]
