"""The decoder against what a buggy or hostile client can put on a topic: whatever the bytes, it
returns a valid model or raises `ContractError` with a reason, and nothing else."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import (
    EVENT_TYPES,
    BillLine,
    ContractError,
    DischargeRecorded,
    EnrollPerson,
    PersonSnapshot,
    decode,
    encode,
    make_envelope,
)
from contracts.enrollment import CategoryPeriod, CoveragePeriod
from contracts.identity import make_identity_number
from contracts.limits import MAX_BILL_LINES, MAX_RECORD_BYTES

PID = make_identity_number("500242", date(1970, 5, 1), 7)


def _line(amount: str = "100.00", day: date = date(2026, 5, 1)) -> BillLine:
    return BillLine(item_code="X1", item_name="床位费", catalogue_class="A", quantity=Decimal(1), unit="日",
                    unit_price=Decimal(amount), amount=Decimal(amount), service_date=day)


def _discharge(n_lines: int = 2) -> DischargeRecorded:
    lines = tuple(_line() for _ in range(n_lines))
    return DischargeRecorded(hospital_claim_id="ZY1", hospital_id="H1", person_id=PID, admission_date=date(2026, 5, 1),
                             discharge_date=date(2026, 5, 3), care_location="in_pool", referred=False,
                             diagnosis_codes=("I63.9",), lines=lines,
                             total_amount=sum((x.amount for x in lines), Decimal(0)))


def _snapshot(version: int = 1) -> PersonSnapshot:
    return PersonSnapshot(person_id=PID, version=version, scheme="resident", status="active", categories=("ordinary",),
                          category_history=(CategoryPeriod(effective_from=date(2026, 1, 1), categories=("ordinary",)),),
                          coverage=(CoveragePeriod(coverage_year=2026, payment_date=date(2025, 11, 1),
                                                   benefits_from=date(2026, 1, 1), waiting_period=False),))


def _doc(payload: Any) -> dict[str, Any]:
    return json.loads(encode(make_envelope(payload, correlation_id="c", producer="test")))


def _bytes(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


GOOD_DISCHARGE = _doc(_discharge())


def _with(path: tuple[Any, ...], value: Any, doc: dict[str, Any] | None = None) -> bytes:
    """A copy of a valid discharge envelope with one value replaced (given as raw JSON text)."""
    doc = json.loads(json.dumps(doc or GOOD_DISCHARGE))
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = "__X__"
    return _bytes(doc).replace(b'"__X__"', value if isinstance(value, bytes) else json.dumps(value).encode())


HOSTILE: dict[str, tuple[bytes, str]] = {
    "empty value": (b"", "empty"),
    "JSON null": (b"null", "not a JSON object"),
    "an array instead of an object": (b"[1, 2]", "not a JSON object"),
    "not JSON": (b"{not json", "not JSON"),
    "invalid UTF-8": (b'{"event_id": "\xff\xfe"}', "not JSON"),
    "100,000-deep nesting": (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    "100,000-deep nesting in a field": (_with(("payload", "referred"), b"[" * 100_000 + b"]" * 100_000), "JSON"),
    "a 5,000-digit integer": (_with(("schema_version",), b"9" * 5000), "JSON"),
    "a 5,000-digit integer as an amount": (_with(("payload", "total_amount"), b"9" * 5000), "JSON"),
    "NaN as an amount": (_with(("payload", "total_amount"), b"NaN"), "not JSON"),
    "a negative amount": (_with(("payload", "lines", 0, "amount"), "-100.00"), "negative"),
    "an amount of 1e12": (_with(("payload", "total_amount"), "1000000000000.00"), "12 integer digits"),
    "an amount in exponent form": (_with(("payload", "total_amount"), "1E+3"), "decimal string"),
    "a float amount": (_with(("payload", "total_amount"), b"200.0"), "not a float"),
    "an amount over the per-discharge bound": (_with(("payload", "total_amount"), "100000000.01"), "less than"),
    "a NUL in a name": (_with(("payload", "lines", 0, "item_name"), "床位\u0000费"), "control characters"),
    "a NUL in the producer": (_with(("producer",), "hosp\u0000ital"), "control characters"),
    "a date in year 9999": (_with(("payload", "discharge_date"), "9999-12-31"), "discharge_date"),
    "February 30": (_with(("payload", "admission_date"), "2026-02-30"), "admission_date"),
    "a huge string": (_with(("payload", "hospital_claim_id"), "A" * 300_000), "hospital_claim_id"),
    "a record over the size limit": (_with(("payload", "referred"), b" " * MAX_RECORD_BYTES), "over the limit"),
    "an unknown event type": (_with(("event_type",), "DischargeCancelled"), "unexpected event_type"),
    "a newer schema version": (_with(("schema_version",), 99), "newer than this service knows"),
    "no payload": (_bytes({k: v for k, v in GOOD_DISCHARGE.items() if k != "payload"}), "payload"),
    "a version over 2^63 - 1": (_with(("payload", "version"), 2**63, _doc(_snapshot())), "version"),
    "admission after discharge": (_with(("payload", "admission_date"), "2026-05-04"), "before admission_date"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_each_hostile_record_is_one_contract_error_naming_the_problem(case: str) -> None:
    raw, expected_reason = HOSTILE[case]
    model = PersonSnapshot if "version over" in case else DischargeRecorded
    with pytest.raises(ContractError) as info:
        decode(raw, model)
    assert expected_reason in info.value.reason
    assert len(info.value.reason) <= 500 and "\x00" not in info.value.reason


def test_too_many_bill_lines_are_refused() -> None:
    doc = _doc(_discharge(1))
    doc["payload"]["lines"] = doc["payload"]["lines"] * (MAX_BILL_LINES + 1)
    doc["payload"]["total_amount"] = str(Decimal("100.00") * (MAX_BILL_LINES + 1))
    with pytest.raises(ContractError, match="lines"):
        decode(_bytes(doc), DischargeRecorded)
    doc["payload"]["lines"] = doc["payload"]["lines"][:MAX_BILL_LINES]
    doc["payload"]["total_amount"] = str(Decimal("100.00") * MAX_BILL_LINES)
    assert len(decode(_bytes(doc), DischargeRecorded).payload.lines) == MAX_BILL_LINES


def test_a_version_of_three_billion_is_a_valid_snapshot() -> None:
    """It used to overflow the projection's int column and halt settlement; the column is bigint now."""
    raw = _with(("payload", "version"), 3_000_000_000, _doc(_snapshot()))
    assert decode(raw, PersonSnapshot).payload.version == 3_000_000_000


def test_every_valid_envelope_still_decodes() -> None:
    enroll = EnrollPerson(person_id=PID, name="张三", scheme="resident", categories=("dibao",),
                          payment_date=date(2025, 11, 1), coverage_year=2026)
    for payload in (_discharge(), _snapshot(), enroll):
        env = make_envelope(payload, correlation_id="c", producer="test")
        assert decode(encode(env), type(payload)) == env


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_bytes_decode_or_raise_the_one_error(raw: bytes) -> None:
    _decodes_or_refuses(raw)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=4), max_leaves=20)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


_DISCHARGE_PATHS = _paths(GOOD_DISCHARGE)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_DISCHARGE_PATHS), _json)
def test_a_valid_envelope_with_any_value_replaced_decodes_or_raises_the_one_error(path: tuple[Any, ...],
                                                                                   value: Any) -> None:
    raw = _with(path, json.dumps(value).encode())
    for model in (DischargeRecorded, *EVENT_TYPES.values()):
        _decodes_or_refuses(raw, model)


def _decodes_or_refuses(raw: bytes, *models: Any) -> None:
    try:
        env = decode(raw, *models)
    except ContractError as exc:
        assert exc.reason and "\x00" not in exc.reason
        return
    assert type(env.payload) in EVENT_TYPES.values()
