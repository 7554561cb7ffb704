"""The ACL plan is derived from the topic registry: each principal holds exactly its rights."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from contracts.topics import (
    ALL_TOPICS,
    DISCHARGES,
    ENROLLMENT_COMMANDS,
    INTAKE,
    PERSONS,
    REFUSALS,
    STATEMENTS,
    TOPICS,
    hospital_requests_topic,
    hospital_statements_topic,
)
from policy.loader import load_profile
from runtime.settings import SERVICES, load_settings
from tools.stack.kafka_admin import Acl
from tools.stack.principals import SERVICE_PRINCIPALS, hospital_acls, service_acls


def _specs() -> dict[str, Any]:
    from services.assistance.app import SPEC as ASSISTANCE
    from services.audit.app import make_spec
    from services.catastrophic.app import SPEC as CATASTROPHIC
    from services.enrollment.app import SPEC as ENROLLMENT
    from services.gateway.app import SPEC as GATEWAY
    from services.settlement.app import SPEC as SETTLEMENT

    return {s.name: s for s in (ENROLLMENT, SETTLEMENT, CATASTROPHIC, ASSISTANCE, make_spec(), GATEWAY)}


def test_the_registry_readers_are_what_each_service_subscribes_to_and_projects() -> None:
    for name, spec in _specs().items():
        settings = load_settings(name)
        ctx = SimpleNamespace(settings=settings, catch_up_projections=None,
                              policy=lambda s=settings: load_profile(s.policy_profile))
        reads = {sub.topic for sub in spec.subscriptions(ctx)} | {p.topic for p in spec.projections}
        assert reads == {t.name for t in TOPICS if name in t.readers}, name


def test_each_topic_is_written_by_its_producing_services_only() -> None:
    writers: dict[str, set[str]] = {}
    for acl in service_acls():
        if acl.operation == "write" and acl.pattern == "literal":
            writers.setdefault(acl.name, set()).add(acl.principal)
    assert writers[DISCHARGES] == {f"User:{INTAKE}"}  # no hospital and no other service writes it
    assert writers[STATEMENTS] == {"User:assistance"}
    assert writers[PERSONS] == {"User:enrollment"}
    assert writers[REFUSALS] == {"User:settlement", f"User:{INTAKE}"}
    assert ENROLLMENT_COMMANDS not in writers  # operators' (admin) only
    assert all(len(w) == 1 for t, w in writers.items() if t != REFUSALS), writers
    assert set(writers) <= {t.name for t in ALL_TOPICS}


def test_services_get_no_cluster_create_delete_or_foreign_group_right() -> None:
    for acl in service_acls("t1a2b3c4."):
        assert acl.name.startswith("t1a2b3c4.")
        if acl.principal == f"User:{INTAKE}" and acl.pattern == "prefixed" and acl.resource_type == "topic":
            assert acl.name == "t1a2b3c4.hospital." and acl.operation in ("read", "write", "create")
            continue
        assert acl.resource_type in ("topic", "group") and acl.operation in ("read", "write")
        if acl.resource_type == "group":
            service = acl.principal.removeprefix("User:")
            assert (acl.name, acl.pattern) == (f"t1a2b3c4.medsettle.{service}.", "prefixed")
        else:
            assert acl.pattern == "literal"
    assert {a.principal for a in service_acls()} == {f"User:{s}" for s in SERVICE_PRINCIPALS}
    assert set(SERVICES) == set(SERVICE_PRINCIPALS) and "intake" in SERVICES


def test_the_gateway_reads_answers_and_the_registry_and_writes_nothing_as_itself() -> None:
    """It publishes with the signed-in hospital's own credentials (the hospital's ACLs apply)."""
    mine = {(a.resource_type, a.name, a.operation, a.pattern) for a in service_acls() if a.principal == "User:gateway"}
    assert mine == {("topic", STATEMENTS, "read", "literal"), ("topic", REFUSALS, "read", "literal"),
                    ("topic", PERSONS, "read", "literal"), ("topic", "enrollment.providers", "read", "literal"),
                    ("group", "medsettle.gateway.", "read", "prefixed")}


def test_settlement_rights_are_its_inputs_outputs_and_dead_letters() -> None:
    mine = {(a.resource_type, a.name, a.operation) for a in service_acls() if a.principal == "User:settlement"}
    assert mine == {
        ("topic", "claims.discharges", "read"), ("topic", "enrollment.persons", "read"),
        ("topic", "enrollment.providers", "read"), ("topic", "claims.basic-settled", "write"),
        ("topic", "claims.refusals", "write"), ("topic", "claims.discharges.dlt", "write"),
        ("topic", "enrollment.persons.dlt", "write"), ("topic", "enrollment.providers.dlt", "write"),
        ("group", "medsettle.settlement.", "read")}


def test_a_hospital_has_its_two_topics_and_its_own_groups_only() -> None:
    acls = hospital_acls("H001", "t1.")
    assert acls == {
        Acl("User:hospital-H001", "topic", "t1." + hospital_requests_topic("H001"), "literal", "write"),
        Acl("User:hospital-H001", "topic", "t1." + hospital_statements_topic("H001"), "literal", "read"),
        Acl("User:hospital-H001", "group", "t1.hospital.H001.", "prefixed", "read")}


@pytest.mark.parametrize("bad", ["H.001", "", "H 1", "-H", "x" * 41, "H:1"])
def test_a_hospital_id_that_could_cover_another_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="cannot be a hospital principal"):
        hospital_acls(bad)
