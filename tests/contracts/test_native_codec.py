"""The native fast path (`contracts.native`) accepts and refuses exactly what the pydantic contracts do.

`contracts.codec.decode` tries the fast path first and gives pydantic (`decode_by_pydantic`) what
the fast path declines. The platform therefore accepts and refuses exactly what the contracts do
if, for every input, the fast path either declines or returns the very envelope pydantic returns
(equal model, equal JSON out). Checked here over: every valid envelope the platform's own code
makes, every contract at its extremes, the hostile catalogue, fuzzed records, and hypothesis
replacing one leaf of a valid envelope with the values where a second parser most likely
disagrees (floats, numeric strings in other forms, exotic digits, timestamps with seven fraction
digits or no zone, a final newline on an id, control characters, lone surrogates). And the fast
path must not decline the platform's own output: else it would be fast for nobody.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import EVENT_TYPES, Contract, ContractError, Envelope, encode, native
from contracts.codec import decode, decode_by_pydantic
from contracts.topics import BY_NAME
from tests.contract_extremes import build, extreme_envelope
from tests.hostile.catalogue import catalogue
from tests.hostile.fuzz import fuzz
from tests.hostile.jsonbytes import DupKey, dumps, get_path, set_path
from tests.hostile.world import Base, fuzz_bases
from tests.integration.platform import person_id
from tools.generate import generate_discharges, generate_population


def expected_of(topic: str) -> tuple[type[Contract], ...]:
    return tuple(EVENT_TYPES[p] for p in BY_NAME[topic].payloads)


def reference(raw: bytes, expected: tuple[type[Contract], ...]) -> Envelope[Any] | ContractError:
    try:
        return decode_by_pydantic(raw, *expected)
    except ContractError as exc:
        return exc


def assert_agrees(raw: bytes, expected: tuple[type[Contract], ...], *, must_be_fast: bool = False) -> bool:
    """The fast path declines or gives pydantic's result; returns whether it took the record."""
    fast = native.decode(raw, {m.__name__: m for m in expected})
    if fast is None:
        assert not must_be_fast, f"the fast path declined a valid record: {raw[:300]!r}"
        return False
    ref = reference(raw, expected)
    assert not isinstance(ref, ContractError), f"the fast path accepted what pydantic refuses ({ref.reason}): {raw[:300]!r}"
    assert isinstance(fast, Envelope) and type(fast.payload) is type(ref.payload)
    assert fast == ref, f"a different value: {raw[:300]!r}"
    assert fast.payload.model_dump_json() == ref.payload.model_dump_json()
    assert fast.payload.model_dump() == ref.payload.model_dump()
    assert fast.model_dump_json(exclude={"payload"}) == ref.model_dump_json(exclude={"payload"})
    return True


@cache
def world() -> dict[str, list[Base]]:
    providers, persons = generate_population(30, 4, seed=2, year=2026)
    discharges = generate_discharges(12, seed=3, year=2026, providers=providers, persons=persons)
    return fuzz_bases(persons, providers, discharges, [person_id(600 + i) for i in range(10)])


def bases() -> Iterator[Base]:
    for items in world().values():
        yield from items


def test_every_payload_model_has_a_fast_path() -> None:
    slow = [name for name, model in EVENT_TYPES.items() if not native.fast_path(model)]
    assert slow == []


def test_the_platforms_own_envelopes_take_the_fast_path_and_agree() -> None:
    seen = 0
    for base in bases():
        assert_agrees(dumps(base.envelope), expected_of(base.topic), must_be_fast=True)
        assert_agrees(json.dumps(base.envelope).encode(), expected_of(base.topic), must_be_fast=True)  # \\u escapes
        seen += 1
    assert seen >= 60 and all(world().values())


@pytest.mark.parametrize("dates", ["max", "min"])
@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_every_contract_at_its_extremes_takes_the_fast_path_and_agrees(name: str, dates: str) -> None:
    model = EVENT_TYPES[name]
    built = build(model, dates=dates)  # type: ignore[arg-type]
    raw = encode(extreme_envelope(built.instance, dates=dates))  # type: ignore[arg-type]
    assert_agrees(raw, (model,), must_be_fast=True)
    assert decode(raw, model) == decode_by_pydantic(raw, model)


def test_stored_payloads_decode_alike() -> None:
    """`native.decode_payload`: a layer's stored input and the registry snapshots, payload alone."""
    for base in bases():
        model = EVENT_TYPES[base.envelope["event_type"]]
        raw = json.dumps(base.envelope["payload"], ensure_ascii=False).encode()
        fast = native.decode_payload(raw, model)
        assert fast is not None and fast == model.model_validate_json(raw)


def test_the_hostile_catalogue() -> None:
    taken = 0
    for case in catalogue():
        if case.value:
            taken += assert_agrees(case.value, expected_of(case.topic))
    assert taken > 0  # the valid cases (a 64-bit version, ...) are taken


def test_fuzzed_records() -> None:
    taken = 0
    for f in fuzz(world(), 1500, seed=11):
        if f.value:
            taken += assert_agrees(f.value, expected_of(f.topic))
    assert 0 < taken < 1500


# --- one leaf replaced by hypothesis --------------------------------------------------------------

TRICKY: list[Any] = [
    1.5, 1.0, 0.0, -0.0, 1e2, 12, 0, -1, True, False, None, 10**12, -(10**12), 999999999999, 10**19, 2**64,
    "1", "1.0", "1.00", "1.000", "1.5", "-0.00", "+1.00", " 1.00", "1.00 ", "1.00\n", "1e2", "1E-2", ".5", "5.",
    "0x10", "1_000.00", "NaN", "Infinity", "-inf", "١٢٣.٤٥", "１２.３０", "12.3０", "999999999999.99",
    "1000000000000.00", "0.1234567890", "0.12345678901", "1.0000000000", "1.00000000001", "0.0000000001",
    "2026-02-29", "2024-02-29", "2026-13-01", "2026-1-1", "20260101", "2026-01-01T00:00:00Z",
    "2026-06-01T08:00:00+08:00", "2026-06-01T08:00:00.1234567Z", "2026-06-01T08:00:00.123456Z",
    "2026-06-01 08:00:00Z", "2026-06-01t08:00:00z", "2026-06-01T08:00:00", "2026-06-01T24:00:00Z",
    "2026-06-01T23:59:60Z", "2026-06-01T08:00:00+24:00", "2026-06-01T08:00Z", "2026-06-01T08:00:00.Z",
    "9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00Z", "2026-06-01T08:00:00-00:00",
    "", " ", "a\n", "\n", "a\x00b", "\x7f", "\u0085", "\ud800", "\udfff", "\U0001f600", "A" * 300, "测" * 201,
    "00000000-0000-0000-0000-000000000000", "urn:uuid:12345678-1234-5678-1234-567812345678",
    "12345678123456781234567812345678", "{12345678-1234-5678-1234-567812345678}",
    [], {}, [1], {"a": 1},
]


def leaf_paths(tree: Any, prefix: str = "") -> list[str]:
    if isinstance(tree, dict):
        return [p for k, v in tree.items() for p in leaf_paths(v, f"{prefix}{k}.")]
    if isinstance(tree, list):
        return [p for i, v in enumerate(tree[:3]) for p in leaf_paths(v, f"{prefix}{i}.")] or [prefix[:-1]]
    return [prefix[:-1]]


@cache
def mutable_bases() -> list[tuple[Base, list[str]]]:
    return [(b, leaf_paths(b.envelope)) for b in bases()]


def variant_of(value: Any) -> st.SearchStrategy[Any]:
    """Values near `value`: the same text with one change, the same number in another form."""
    out: list[st.SearchStrategy[Any]] = [st.sampled_from(TRICKY)]
    if isinstance(value, str):
        out += [st.just(value + "\n"), st.just(" " + value), st.just(value + "0"), st.just(value[:-1]),
                st.just(value.upper()), st.just(value.lower()),
                st.text(max_size=3).map(lambda t, v=value: v + t), st.text(max_size=3).map(lambda t, v=value: t + v)]
        try:
            out.append(st.just(float(value)))
            out.append(st.just(int(float(value))))
        except (ValueError, OverflowError):
            pass
    elif isinstance(value, bool):
        out.append(st.just(int(value)))
    elif isinstance(value, int):
        out += [st.just(str(value)), st.just(float(value)), st.just(value + 1), st.just(value - 1)]
    return st.one_of(out)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, tuple[type[Contract], ...]]:
    base, paths = draw(st.sampled_from(mutable_bases()))
    tree = copy.deepcopy(base.envelope)
    duplicated = False
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        how = draw(st.sampled_from(["replace", "replace", "replace", "delete", "duplicate", "unknown"]))
        *parents, last = path.split(".")
        try:
            node = get_path(tree, ".".join(parents)) if parents else tree
            key: str | int = int(last) if isinstance(node, list) else last
            node[key]
        except (KeyError, IndexError, TypeError, ValueError):
            continue  # an earlier change removed or replaced it
        if how == "replace":
            set_path(tree, path, draw(variant_of(get_path(tree, path))))
        elif how == "delete" and isinstance(node, dict):
            del node[key]
        elif how == "duplicate" and isinstance(node, dict):
            node[DupKey(str(key))] = draw(st.sampled_from(TRICKY))
            duplicated = True
        elif how == "unknown" and isinstance(node, dict):
            node[draw(st.sampled_from(["extra", "Payload", "event_id ", str(key).upper()]))] = 1
    raw = dumps(tree) if duplicated or draw(st.booleans()) else json.dumps(tree, default=str).encode()
    return raw, expected_of(base.topic)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated())
def test_one_changed_leaf_is_decided_alike(case: tuple[bytes, tuple[type[Contract], ...]]) -> None:
    assert_agrees(*case)
