"""Profiles the seeds describe but could not be expressed before: Daqing's condition groups (三种大病,
judged on the discharge's diagnosis codes) and the employee scheme (职工医保) whose numbers are
required operator inputs (refused, listing every one, until supplied by an overlay or --set).

Expected values of the worked examples are seed-rules.md section 1.5.3's; the employee values are
the TEST overlay's (tests/data/employee-test-inputs.yaml), worked by hand."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from contracts import BasicSettled, ClaimSummary, LayerDetail
from policy import (
    MissingOperatorInputs,
    ProfileError,
    load_profile,
    operator_overrides,
    parse_assignment,
    parse_profile,
    read_overlay,
    read_yaml,
)
from policy.calculators.catastrophic import CatastrophicClaim, CatastrophicYearState, settle_catastrophic
from policy.decisions import catastrophic as catastrophic_decision
from policy.loader import POLICIES_DIR
from policy.one_stop import OneStopClaim, OneStopYearState, settle_one_stop

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = ROOT / "tests" / "data" / "employee-test-inputs.yaml"
DAQING = load_profile("daqing-2015-catastrophic")
EMPLOYEE_INPUTS = [
    "scheme_variants.employee.basic.deductible_basis", "scheme_variants.employee.basic.deductible.1",
    "scheme_variants.employee.basic.deductible.2", "scheme_variants.employee.basic.deductible.3",
    "scheme_variants.employee.basic.ratio.1", "scheme_variants.employee.basic.ratio.2",
    "scheme_variants.employee.basic.ratio.3", "scheme_variants.employee.basic.annual_cap",
    "scheme_variants.employee.catastrophic",
]


def _self_pay(amount: str, scheme: str, codes: tuple[str, ...]) -> CatastrophicClaim:
    """A claim whose compliant self-pay after basic is `amount`, with these diagnoses (Daqing's groups)."""
    return CatastrophicClaim(claim_id="H1:1", scheme=scheme, in_policy=D(amount), deductible=D(0), basic_paid=D(0),
                             amounts_by_class={"A": D(amount)}, condition_groups=DAQING.condition_groups_of(codes))


# ------------------------------------------------------------------- condition groups


def test_daqing_groups_are_judged_on_diagnosis_code_prefixes() -> None:
    assert DAQING.condition_groups_of(["C34.9", "I10"]) == {"tumour_radio_chemo"}
    assert DAQING.condition_groups_of(["n18.5"]) == {"uraemia_dialysis"}  # case and dots aside
    assert DAQING.condition_groups_of(["Z51.100x001", "T86.1"]) == {"tumour_radio_chemo", "transplant_antirejection"}
    assert DAQING.condition_groups_of(["J18.9", "D12.0", "N18.4"]) == frozenset()  # benign, CKD stage 4: none
    assert DAQING.condition_groups_of([]) == frozenset()


def test_daqing_code_lists_are_marked_illustrative_and_name_their_source() -> None:
    assert DAQING.is_illustrative("condition_groups.uraemia_dialysis.diagnosis_prefixes[0]")
    assert all("F001 L811" in g.name for g in DAQING.condition_groups.values())
    text = (POLICIES_DIR / "daqing-2015-catastrophic.yaml").read_text(encoding="utf-8")
    assert "ILLUSTRATIVE" in text


def test_daqing_ncms_worked_example_from_a_diagnosis() -> None:
    # seed-rules.md 1.5.3: (30,000 - 12,443) x 50% = 8,778.50 (uraemia dialysis: N18.5)
    r = settle_catastrophic(_self_pay("30000.00", "ncms", ("N18.5",)), DAQING, CatastrophicYearState())
    assert (r.rule, r.threshold, r.paid) == ("bands", D("12443"), D("8778.50"))


def test_daqing_urban_worked_example_from_a_diagnosis() -> None:
    # reading (b): 150,000 - 18,000 = 132,000; 100,000 x 50% + 32,000 x 55% = 67,600.00 (a malignant tumour)
    r = settle_catastrophic(_self_pay("150000.00", "urban_resident", ("C16.9", "I10")), DAQING, CatastrophicYearState())
    assert r.paid == D("67600.00")


def test_daqing_does_not_cover_a_claim_outside_the_three_diseases() -> None:
    r = settle_catastrophic(_self_pay("150000.00", "urban_resident", ("I21.9",)), DAQING, CatastrophicYearState())
    assert (r.rule, r.paid, r.accumulation_after) == ("not_covered", D(0), D(0))


def test_a_covered_condition_must_be_a_defined_group() -> None:
    data = read_yaml((POLICIES_DIR / "daqing-2015-catastrophic.yaml").read_text(encoding="utf-8"))
    with pytest.raises(ProfileError) as info:
        parse_profile(data, {"condition_groups": {"uraemia_dialysis": None}})
    assert info.value.path.startswith("condition_groups.uraemia_dialysis")
    del data["condition_groups"]
    with pytest.raises(ProfileError) as info:
        parse_profile(data)
    assert info.value.path == "scheme_variants.urban_resident.catastrophic.covered_conditions[0]"
    assert "no condition group 'tumour_radio_chemo'" in str(info.value)


@pytest.mark.parametrize("prefix", ["", "3C", "C.", "CC1", "C 1", "C1-2"])
def test_a_bad_diagnosis_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ProfileError) as info:
        load_profile("daqing-2015-catastrophic", {"condition_groups": {"uraemia_dialysis": {"diagnosis_prefixes": [prefix]}}})
    assert "diagnosis_prefixes" in info.value.path


# a demo-county whose critical illness covers Daqing's three diseases only (a candidate an operator might try)
RESTRICTED = load_profile("demo-county", {"condition_groups": {k: v.model_dump() for k, v in DAQING.condition_groups.items()},
                                          "catastrophic": {"covered_conditions": list(DAQING.condition_groups)}})


def _basic_settled(codes: tuple[str, ...]) -> BasicSettled:
    summary = ClaimSummary(
        claim_id="H1:ZY1", hospital_claim_id="ZY1", hospital_id="H1", person_id="P1", discharge_event_id="e1",
        admission_date=date(2026, 3, 1), discharge_date=date(2026, 3, 20), insurance_year=2026,
        care_location="in_pool", referred=False, hospital_level=3, scheme="resident", categories=("ordinary",),
        total_cost=D("50000.00"), in_policy=D("50000.00"), out_of_policy=D("0.00"), amounts_by_class={"A": D("50000.00")},
        diagnosis_codes=codes, profile_id="demo-county", profile_version=1)
    basic = LayerDetail(layer="basic", base=D("50000.00"), deductible=D("400.00"), ratio=D("0.40"), paid=D("19840.00"),
                        accumulator_before=D(0), accumulator_after=D("19840.00"), cap=D("40000.00"),
                        cap_left=D("20160.00"), profile_id="demo-county", profile_version=1)
    return BasicSettled(claim=summary, outcome="settled", basic=basic, residual_in_policy=D("30160.00"),
                        catastrophic_base=D("29760.00"))


def test_the_catastrophic_decision_reads_the_groups_from_the_claim_summary() -> None:
    # accumulation 49,600 - 19,840 = 29,760; 23,760 above 6,000: 20,000 x 50% + 3,760 x 60% = 12,256.00
    covered = catastrophic_decision.decide(_basic_settled(("C34.9",)), RESTRICTED, CatastrophicYearState())
    assert covered.result is not None and covered.result.paid == D("12256.00")
    other = catastrophic_decision.decide(_basic_settled(("J18.9",)), RESTRICTED, CatastrophicYearState())
    assert other.result is not None and (other.result.rule, other.result.paid) == ("not_covered", D(0))
    older = catastrophic_decision.decide(_basic_settled(()), RESTRICTED, CatastrophicYearState())  # a v2 result
    assert older.result is not None and older.result.rule == "not_covered"
    unrestricted = catastrophic_decision.decide(_basic_settled(("J18.9",)), load_profile("demo-county"),
                                                CatastrophicYearState())
    assert unrestricted.result is not None and unrestricted.result.paid == D("12256.00")


def test_settlement_copies_the_diagnosis_codes_onto_the_claim_summary() -> None:
    from policy.calculators.basic import BasicYearState
    from policy.decisions.basic import decide
    from tests.unit.test_settlement_domain import bill, hospital, person

    d = bill().model_copy(update={"diagnosis_codes": ("N18.5", "I10")})
    decision = decide(d, "e1", person(), hospital(), load_profile("demo-county"), BasicYearState())
    assert decision.event.outcome == "settled" and decision.event.claim.diagnosis_codes == ("N18.5", "I10")


# --------------------------------------------------------------- required operator inputs


def test_the_employee_profile_is_refused_listing_every_missing_input() -> None:
    with pytest.raises(MissingOperatorInputs) as info:
        load_profile("demo-county-employee")
    err = info.value
    assert [path for path, _ in err.missing] == EMPLOYEE_INPUTS
    text = str(err)
    assert all(path in text for path in EMPLOYEE_INPUTS)
    assert "seeds" in text and "--overlay" in text and "--set PATH=VALUE" in text and "POLICY_OVERLAY" in text
    assert "seed-rules.md 1.2" in text


def test_supplying_some_inputs_still_lists_the_others() -> None:
    with pytest.raises(MissingOperatorInputs) as info:
        load_profile("demo-county-employee", operator_overrides(None, [
            "scheme_variants.employee.basic.annual_cap=100000.00",
            "scheme_variants.employee.basic.deductible_basis=per_year"]))
    assert [p for p, _ in info.value.missing] == [p for p in EMPLOYEE_INPUTS if not p.endswith(("annual_cap", "basis"))]


def test_with_the_overlay_the_employee_profile_validates_and_prices() -> None:
    profile = load_profile("demo-county-employee", operator_overrides(OVERLAY))
    assert profile.prices_scheme("employee") and profile.prices_scheme("resident")
    assert "scheme_variants.employee.basic.annual_cap" in profile.overrides_applied
    # TEST inputs: level 3, deductible 600, 80%: (30,000 - 600) x 80% = 23,520.00; critical illness: accumulation
    # 30,000 - 600 - 23,520 = 5,880 < 10,000: nothing; no assisted category; the patient pays 6,480.00
    claim = OneStopClaim(claim_id="H1:1", scheme="employee", hospital_level=3, amounts_by_class={"A": D("30000.00")})
    r = settle_one_stop(claim, profile, OneStopYearState())
    assert (r.basic_paid, r.catastrophic_paid, r.assistance_paid, r.patient_pays) == (
        D("23520.00"), D("0.00"), D("0.00"), D("6480.00"))


def test_the_overlay_can_be_given_as_assignments_too() -> None:
    overlay = read_overlay(OVERLAY)
    sets = [f"scheme_variants.employee.basic.{k}={v}" for k, v in (
        ("deductible_basis", "per_admission"), ("deductible.1", "100.00"), ("deductible.2", "300.00"),
        ("deductible.3", "600.00"), ("ratio.1", "0.90"), ("ratio.2", "0.85"), ("ratio.3", "0.80"),
        ("annual_cap", "100000.00"))]
    catastrophic = {"scheme_variants": {"employee": {"catastrophic": overlay["scheme_variants"]["employee"]["catastrophic"]}}}
    by_sets = load_profile("demo-county-employee", [catastrophic, *operator_overrides(None, sets)])
    by_file = load_profile("demo-county-employee", operator_overrides(OVERLAY))
    assert by_sets.model_dump(exclude={"overrides_applied"}) == by_file.model_dump(exclude={"overrides_applied"})


def test_the_employee_profile_prices_residents_as_demo_county() -> None:
    employee = load_profile("demo-county-employee", operator_overrides(OVERLAY))
    demo = load_profile("demo-county")
    for section in ("basic", "catastrophic", "assistance", "enrollment", "audit", "effective_from", "illustrative"):
        assert getattr(employee, section) == getattr(demo, section), section


@pytest.mark.parametrize(("text", "expected"), [
    ("catastrophic.threshold=8000.00", {"catastrophic": {"threshold": D("8000.00")}}),
    ("catastrophic.bands[1].ratio=0.65", {"catastrophic": {"bands": {1: {"ratio": D("0.65")}}}}),
    ("basic.ratio.3=0.45", {"basic": {"ratio": {"3": D("0.45")}}}),
    ("basic.in_policy_classes=[A, B, C]", {"basic": {"in_policy_classes": ["A", "B", "C"]}}),
    ("catastrophic.poor_threshold=", {"catastrophic": {"poor_threshold": None}}),
])
def test_assignments(text: str, expected: dict[str, Any]) -> None:
    assert parse_assignment(text) == expected


@pytest.mark.parametrize("text", ["catastrophic.threshold", "=5", "a..b=1", "bands[x]=1", "a=[unclosed"])
def test_bad_assignments_are_refused(text: str) -> None:
    with pytest.raises(ProfileError):
        parse_assignment(text)


def test_an_assignment_changes_the_candidate() -> None:
    profile = load_profile("demo-county", operator_overrides(None, ["catastrophic.bands[1].ratio=0.65"]))
    assert profile.catastrophic_for("resident").bands[1].ratio == D("0.65")  # type: ignore[index]
    assert profile.overrides_applied == ("catastrophic.bands[1].ratio",)


def test_an_overlay_cannot_change_the_profile_id(tmp_path: Path) -> None:
    f = tmp_path / "o.yaml"
    f.write_text("id: other\n")
    with pytest.raises(ProfileError, match="cannot change the profile's id"):
        read_overlay(f)
    with pytest.raises(ProfileError, match="no overlay file"):
        read_overlay(tmp_path / "missing.yaml")


def test_an_operator_input_takes_a_reason_not_a_mapping() -> None:
    with pytest.raises(ProfileError, match="takes a reason"):
        read_yaml("basic: !operator-input {a: 1}\n")
    data = read_yaml("annual_cap: !operator-input\n")
    with pytest.raises(MissingOperatorInputs) as info:
        parse_profile({**read_yaml((POLICIES_DIR / "demo-county.yaml").read_text()), "basic": data})
    assert info.value.missing == (("basic.annual_cap", "not in the sources"),)


def test_a_service_refuses_to_start_on_an_incomplete_profile() -> None:
    env = {**os.environ, "POLICY_PROFILE": "demo-county-employee", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
           "DATABASE_URL": "postgresql://nobody@127.0.0.1:1"}
    env.pop("POLICY_OVERLAY", None)
    env.pop("LOG_FILE", None)
    proc = subprocess.run([sys.executable, "-m", "services.settlement"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 78
    assert "settlement refused to start" in proc.stderr
    assert all(path in proc.stderr for path in EMPLOYEE_INPUTS)
    assert "POLICY_OVERLAY" in proc.stderr and "seeds" in proc.stderr
