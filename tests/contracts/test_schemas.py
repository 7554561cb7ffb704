"""The committed JSON Schemas match the models, and no change breaks a consumer of an earlier version."""

import copy

import pytest

from contracts.codec import EVENT_TYPES
from contracts.schema import committed_versions, incompatibilities, schema_of, stale


def test_committed_schemas_are_not_stale() -> None:
    assert stale() == [], "run: python -m contracts.schema write"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_current_model_is_compatible_with_every_committed_version(event_type: str) -> None:
    versions = committed_versions(event_type)
    assert versions, f"no committed schema for {event_type}"
    current = schema_of(event_type)
    for version, old in sorted(versions.items()):
        assert incompatibilities(old, current) == [], f"{event_type} breaks consumers of v{version}"


def _statement() -> dict:
    return copy.deepcopy(schema_of("SettlementStatement"))


def test_checker_flags_a_removed_field() -> None:
    new = _statement()
    payload = new["$defs"]["SettlementStatement"]
    del payload["properties"]["maf_pay"]
    payload["required"].remove("maf_pay")
    assert any("maf_pay: removed" in p for p in incompatibilities(_statement(), new))


def test_checker_flags_a_retyped_field() -> None:
    new = _statement()
    new["$defs"]["SettlementStatement"]["properties"]["insurance_year"] = {"type": "string"}
    assert any("insurance_year" in p and "type changed" in p for p in incompatibilities(_statement(), new))


def test_checker_flags_a_new_required_field_but_not_an_optional_one() -> None:
    new = _statement()
    payload = new["$defs"]["SettlementStatement"]
    payload["properties"]["region"] = {"type": "string"}
    assert incompatibilities(_statement(), new) == []
    payload["required"].append("region")
    assert any("region: new required property" in p for p in incompatibilities(_statement(), new))


def test_checker_flags_a_widened_enum_which_old_consumers_cannot_read() -> None:
    new = _statement()
    outcome = new["$defs"]["SettlementStatement"]["properties"]["outcome"]
    outcome["enum"] = [*outcome["enum"], "pending"]
    assert incompatibilities(_statement(), new) != []
