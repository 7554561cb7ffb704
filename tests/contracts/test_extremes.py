"""The extreme-instance builder (`tests.contract_extremes`): it fills every field of every contract
on the wire with an accepted extreme, and what it builds survives the wire unchanged."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Annotated, Any

import annotated_types as at
import pytest
from pydantic import BaseModel, Field

from contracts import (
    EVENT_TYPES,
    ClaimSummary,
    DischargeRecorded,
    PersonSnapshot,
    decode,
    encode,
    limits,
)
from contracts.limits import (
    DATE_MAX,
    DATE_MIN,
    DISCHARGE_TOTAL_MAX,
    INT64_MAX,
    LINE_AMOUNT_MAX,
    MAX_BILL_LINES,
    MAX_HISTORY,
    MAX_RECORD_BYTES,
    MONEY_MAX,
    TIMESTAMP_MAX,
    TIMESTAMP_MIN,
)
from tests.contract_extremes import (
    Builder,
    NoExtreme,
    build,
    extreme_envelope,
    field_paths,
    longest_match,
    record_bytes,
)

MODELS = sorted(EVENT_TYPES.items())


def leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every value inside a model instance, with its path (elements of collections included)."""
    if isinstance(value, BaseModel):
        return [(path, value), *(leaf for name in type(value).model_fields
                                 for leaf in leaves(getattr(value, name), f"{path}.{name}"))]
    if isinstance(value, tuple):
        return [(path, value), *(leaf for i, v in enumerate(value) for leaf in leaves(v, f"{path}[{i}]"))]
    if isinstance(value, dict):
        return [(path, value), *(leaf for k, v in value.items() for leaf in leaves(v, f"{path}[{k!r}]"))]
    return [(path, value)]


@pytest.fixture(scope="module", params=["max", "min"])
def built(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {name: build(model, dates=request.param) for name, model in MODELS}


@pytest.mark.parametrize("name", [name for name, _ in MODELS])
def test_every_field_of_every_model_is_filled(built: dict[str, Any], name: str) -> None:
    b = built[name]
    assert b.filled == field_paths(EVENT_TYPES[name]), "a field the builder did not fill (or one it made up)"
    empty = [path for path, v in leaves(b.instance) if v is None or (isinstance(v, (tuple, dict)) and not v)]
    assert empty == [], "optional fields are filled in, collections hold elements"


@pytest.mark.parametrize("name", [name for name, _ in MODELS])
def test_every_extreme_instance_survives_the_wire(built: dict[str, Any], name: str) -> None:
    b = built[name]
    envelope = extreme_envelope(b.instance, dates=b.dates)
    raw = encode(envelope)
    assert len(raw) == b.size <= MAX_RECORD_BYTES
    back = decode(raw, EVENT_TYPES[name])
    assert back == envelope
    assert back.payload.model_dump(mode="json") == b.instance.model_dump(mode="json")
    assert back.payload.message_key() == b.instance.message_key()


def test_strings_are_at_their_maximum_length_of_wide_characters(built: dict[str, Any]) -> None:
    line = built["DischargeRecorded"].instance.lines[0]
    assert len(line.item_name) == 200 and len(line.item_name.encode()) > 2 * 200
    assert any(ord(c) > 0xFFFF for c in line.item_name) and '"' in line.item_name and "\\" in line.item_name
    assert len(line.item_code) == 50 and re.fullmatch(limits.CODE, line.item_code)
    statement = built["SettlementStatement"].instance
    assert len(statement.claim_id) == 105 and len(statement.hospital_id) == 40
    assert len(built["PersonSnapshot"].instance.person_id) == 18
    alert = built["AuditAlert"].instance
    assert len(alert.evidence) == 50 and all(len(k) == 64 and len(v) == 2000 for k, v in alert.evidence.items())


def test_numbers_and_dates_are_at_their_bounds(built: dict[str, Any]) -> None:
    person, provider = built["PersonSnapshot"].instance, built["ProviderSnapshot"].instance
    assert person.version == provider.version == INT64_MAX
    assert provider.licensed_beds == limits.MAX_LICENSED_BEDS and provider.level == 3
    claim: ClaimSummary = built["BasicSettled"].instance.claim
    assert claim.total_cost == claim.in_policy == MONEY_MAX and claim.profile_version == limits.INT32_MAX
    assert built["CatastrophicSettled"].instance.catastrophic.ratio == 1
    assert str(built["CatastrophicSettled"].instance.catastrophic.ratio) == "1.00000000000"  # 12 digits
    dates = {d for name in ("DischargeRecorded", "SettlementStatement", "RegisterProvider")
             for _, d in leaves(built[name].instance) if type(d).__name__ == "date"}
    assert dates in ({DATE_MAX}, {DATE_MIN})
    stamp = built["SettlementStatement"].instance.settled_at
    assert stamp in (TIMESTAMP_MAX - timedelta(microseconds=1), TIMESTAMP_MIN)


def test_the_record_size_bounds_the_largest_discharge_before_the_line_count_does() -> None:
    b = build(DischargeRecorded)
    d = b.instance
    kept, most = b.cut["lines"]
    assert most == MAX_BILL_LINES and kept == len(d.lines) < MAX_BILL_LINES
    one_more = Builder(sizes={"lines": kept + 1}).model(DischargeRecorded, "DischargeRecorded", top=True)
    assert record_bytes(one_more) > MAX_RECORD_BYTES >= b.size
    # the total's bound: as many lines at the line maximum as it allows, the others priced at 0.00
    assert d.total_amount == DISCHARGE_TOTAL_MAX
    at_max = [ln for ln in d.lines if ln.amount == LINE_AMOUNT_MAX]
    assert len(at_max) == DISCHARGE_TOTAL_MAX / LINE_AMOUNT_MAX
    assert all(ln.amount == 0 for ln in d.lines[len(at_max):])
    assert all(ln.quantity == Decimal("999999999.999") for ln in d.lines)
    assert len(d.diagnosis_codes) == limits.MAX_DIAGNOSES


def test_a_snapshot_keeps_its_histories_full_and_cuts_the_widest() -> None:
    b = build(PersonSnapshot)
    assert len(b.instance.category_history) == len(b.instance.coverage) == MAX_HISTORY
    assert set(b.cut) == {"suspensions"} and b.cut["suspensions"][0] == len(b.instance.suspensions) < MAX_HISTORY


@pytest.mark.parametrize("pattern, length", [
    (limits.IDENTIFIER, 40), (limits.HOSPITAL_CLAIM_ID, 64), (limits.CLAIM_ID, 105), (limits.PERSON_REFERENCE, 32),
    (limits.IDENTITY_NUMBER, 18), (limits.CODE, 50), (limits.NO_CONTROL_CHARACTERS, 1000),
])
def test_the_longest_match_of_every_pattern(pattern: str, length: int) -> None:
    texts = {longest_match(pattern, length, salt) for salt in range(50)}
    assert all(len(t) == length and re.fullmatch(pattern, t) for t in texts)
    assert len(texts) > 1, "the salt tells elements apart"
    assert len(longest_match(limits.IDENTITY_NUMBER, 40)) == 18, "no longer than the pattern allows"


def test_a_field_without_a_bound_is_an_error_not_a_skip() -> None:
    class Unbounded(BaseModel):
        name: str

    class Unknown(BaseModel):
        amount: Annotated[int, at.MultipleOf(5), Field(le=10)]

    with pytest.raises(NoExtreme, match="without max_length"):
        build(Unbounded)
    with pytest.raises(NoExtreme, match="unknown constraint"):
        build(Unknown)
