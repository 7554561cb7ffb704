"""Medical assistance (医疗救助) decision and the one-stop statement (一站式结算单), pure.

Assistance takes the in-policy residual left by basic and critical-illness insurance (out-of-policy
lines are never assisted); the statement then splits the bill: basic fund (hifp_pay),
critical-illness insurance (hifmi_pay), assistance (maf_pay) and what the patient pays (psn_pay).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from contracts import CatastrophicSettled, LayerDetail, SettlementStatement
from contracts.money import ZERO
from policy import PolicyProfile
from policy.calculators.assistance import (
    AssistanceClaim,
    AssistanceResult,
    AssistanceYearState,
    settle_assistance,
)


@dataclass(frozen=True)
class AssistanceDecision:
    statement: SettlementStatement
    result: AssistanceResult | None
    year_after: AssistanceYearState | None


def _detail(r: AssistanceResult) -> LayerDetail:
    return LayerDetail(layer="assistance", base=r.base, deductible=ZERO, ratio=r.ratio, paid=r.paid,
                       accumulator_before=r.paid_before, accumulator_after=r.paid_after, cap=r.annual_cap,
                       cap_left=r.cap_left_after, note=f"category {r.category}" if r.category else "no assisted category",
                       profile_id=r.profile_id, profile_version=r.profile_version)


def decide(prior: CatastrophicSettled, profile: PolicyProfile, year: AssistanceYearState,
           settled_at: datetime) -> AssistanceDecision:
    c = prior.claim
    result: AssistanceResult | None = None
    if prior.outcome == "settled" and c.scheme is not None and profile.prices_layer("assistance", c.scheme):
        result = settle_assistance(AssistanceClaim(claim_id=c.claim_id, scheme=c.scheme,
                                                   residual_in_policy=prior.residual_in_policy,
                                                   categories=frozenset(c.categories)), profile, year)
    hifp = prior.basic.paid if prior.basic else ZERO
    hifmi = prior.catastrophic.paid if prior.catastrophic else ZERO
    maf = result.paid if result else ZERO
    funds = hifp + hifmi + maf
    details = tuple(d for d in (prior.basic, prior.catastrophic, _detail(result) if result else None) if d is not None)
    statement = SettlementStatement(
        claim_id=c.claim_id, hospital_claim_id=c.hospital_claim_id, hospital_id=c.hospital_id, person_id=c.person_id,
        admission_date=c.admission_date, discharge_date=c.discharge_date, insurance_year=c.insurance_year,
        outcome=prior.outcome, rejection=prior.rejection, total_cost=c.total_cost, in_policy=c.in_policy,
        out_of_policy=c.out_of_policy, hifp_pay=hifp, hifmi_pay=hifmi, maf_pay=maf, fund_pay_sumamt=funds,
        psn_pay=c.total_cost - funds, details=details, profile_id=c.profile_id, profile_version=c.profile_version,
        settled_at=settled_at)
    return AssistanceDecision(statement, result, result.year_state_after if result else None)
