"""The basic layer's decision per discharge: every way a claim can fail ends as a rejection with
its reason code (never silence), and a priced claim carries the profile that priced it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from contracts import BillLine, DischargeRecorded, PersonSnapshot, ProviderSnapshot
from contracts.enrollment import CategoryPeriod, CoveragePeriod, Suspension
from contracts.identity import make_identity_number
from policy import load_profile
from policy.calculators.basic import BasicYearState
from policy.decisions.basic import decide

PROFILE = load_profile("demo-county")
PID = make_identity_number("500242", date(1970, 5, 5), 12)


def person(**over) -> PersonSnapshot:
    fields = dict(person_id=PID, version=1, scheme="resident", status="active", categories=("ordinary",),
                  category_history=(CategoryPeriod(effective_from=date(2026, 1, 1), categories=("ordinary",)),),
                  coverage=(CoveragePeriod(coverage_year=2026, payment_date=date(2025, 11, 1),
                                           benefits_from=date(2026, 1, 1), waiting_period=False),))
    fields.update(over)
    return PersonSnapshot(**fields)


def hospital(**over) -> ProviderSnapshot:
    fields = dict(provider_id="H3", version=1, name="h", level=3, location="in_pool", pool_code="500242",
                  licensed_beds=100, agreement_valid_from=date(2026, 1, 1))
    fields.update(over)
    return ProviderSnapshot(**fields)


def bill(admitted: date = date(2026, 3, 2)) -> DischargeRecorded:
    lines = (BillLine(item_code="A1", item_name="a", catalogue_class="A", quantity=Decimal(1), unit="x",
                      unit_price=Decimal("8000.00"), amount=Decimal("8000.00"), service_date=admitted),
             BillLine(item_code="S1", item_name="s", catalogue_class="SELF", quantity=Decimal(1), unit="x",
                      unit_price=Decimal("500.00"), amount=Decimal("500.00"), service_date=admitted))
    return DischargeRecorded(hospital_claim_id="C1", hospital_id="H3", person_id=PID, admission_date=admitted,
                             discharge_date=admitted, care_location="in_pool", referred=False,
                             diagnosis_codes=("I10",), lines=lines, total_amount=Decimal("8500.00"))


def code(**kw) -> str | None:
    args = dict(d=bill(), event_id="e", person=person(), provider=hospital(), profile=PROFILE, year=BasicYearState())
    args.update(kw)
    event = decide(**args).event
    return event.rejection.reason_code if event.rejection else None


def test_priced_claim() -> None:
    decision = decide(bill(), "e", person(), hospital(), PROFILE, BasicYearState())
    assert decision.event.outcome == "settled"
    assert decision.event.basic.paid == Decimal("3040.00")  # (8,000 − 400) × 40%
    assert decision.event.claim.out_of_policy == Decimal("500.00")
    assert (decision.event.basic.profile_id, decision.event.claim.profile_version) == ("demo-county", PROFILE.version)


def test_every_rejection_reason() -> None:
    assert code(person=None) == "NOT_ENROLLED"
    assert code(person=person(coverage=(CoveragePeriod(coverage_year=2026, payment_date=date(2026, 2, 10),
                                                       benefits_from=date(2026, 8, 10), waiting_period=True),))
                ) == "WAITING_PERIOD"
    assert code(person=person(status="suspended", suspensions=(Suspension(start=date(2026, 2, 1), reason="x"),))
                ) == "SUSPENDED"
    assert code(person=person(status="deceased", date_of_death=date(2026, 2, 1))) == "DECEASED"
    assert code(person=person(scheme="employee")) == "NO_POLICY"
    assert code(provider=None) == "UNKNOWN_PROVIDER"
    assert code(provider=hospital(agreement_valid_to=date(2026, 2, 28))) == "UNKNOWN_PROVIDER"
    assert code() is None


def test_rejected_claim_pays_nothing_and_keeps_the_bill() -> None:
    decision = decide(bill(), "e", None, hospital(), PROFILE, BasicYearState())
    assert decision.year_after is None and decision.event.basic is None
    assert decision.event.claim.total_cost == Decimal("8500.00")


def test_consecutive_contribution_years_come_from_the_coverage_history() -> None:
    from policy.decisions.basic import consecutive_contribution_years

    def years(*ys: int) -> PersonSnapshot:
        return person(coverage=tuple(CoveragePeriod(coverage_year=y, payment_date=date(y - 1, 11, 1),
                                                    benefits_from=date(y, 1, 1), waiting_period=False) for y in ys))

    assert consecutive_contribution_years(years(2024, 2025, 2026), 2026) == 3
    assert consecutive_contribution_years(years(2022, 2024, 2025, 2026), 2026) == 3  # 2023 missing: the run restarts
    assert consecutive_contribution_years(years(2026), 2026) == 1
