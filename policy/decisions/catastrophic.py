"""Critical-illness insurance (大病保险) decision for one basic result, pure.

A rejected claim passes through unchanged. A claim under a scheme the profile does not price for
critical illness pays nothing here and hands the basic residual on. The claim's condition groups
(病种组, for a profile that covers some diseases only) come from the diagnosis codes settlement
copied onto the claim summary.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts import BasicSettled, CatastrophicSettled, LayerDetail
from contracts.settlement import BandPayment
from policy import PolicyProfile
from policy.calculators.catastrophic import (
    CatastrophicClaim,
    CatastrophicResult,
    CatastrophicYearState,
    settle_catastrophic,
)


@dataclass(frozen=True)
class CatastrophicDecision:
    event: CatastrophicSettled
    result: CatastrophicResult | None
    year_after: CatastrophicYearState | None


def detail_of(r: CatastrophicResult) -> LayerDetail:
    flat = r.rule == "out_of_province_flat"
    return LayerDetail(
        layer="catastrophic", base=r.base, deductible=r.threshold,
        ratio=r.slices[0].ratio if flat and r.slices else None, paid=r.paid,
        accumulator_before=r.accumulation_before, accumulator_after=r.accumulation_after,
        cap=r.annual_cap, cap_left=r.cap_left_after,
        bands=tuple(BandPayment(lower=s.lower, upper=s.upper, ratio=s.ratio, amount=s.amount, paid=s.paid)
                    for s in r.slices),
        note=r.note, profile_id=r.profile_id, profile_version=r.profile_version)


def decide(basic: BasicSettled, profile: PolicyProfile, year: CatastrophicYearState) -> CatastrophicDecision:
    claim = basic.claim
    if basic.outcome == "rejected" or basic.basic is None or claim.scheme is None:
        event = CatastrophicSettled(claim=claim, outcome="rejected", rejection=basic.rejection,
                                    residual_in_policy=basic.residual_in_policy)
        return CatastrophicDecision(event, None, None)
    if not profile.prices_layer("catastrophic", claim.scheme):
        event = CatastrophicSettled(claim=claim, outcome="settled", basic=basic.basic,
                                    residual_in_policy=basic.residual_in_policy)
        return CatastrophicDecision(event, None, None)
    calc_claim = CatastrophicClaim(
        claim_id=claim.claim_id, scheme=claim.scheme, in_policy=claim.in_policy, deductible=basic.basic.deductible,
        basic_paid=basic.basic.paid, amounts_by_class={str(k): v for k, v in claim.amounts_by_class.items()},
        categories=frozenset(claim.categories), care_location=claim.care_location, referred=claim.referred,
        basic_in_policy_classes=frozenset(profile.basic_for(claim.scheme).in_policy_classes),
        condition_groups=profile.condition_groups_of(claim.diagnosis_codes))
    result = settle_catastrophic(calc_claim, profile, year)
    event = CatastrophicSettled(claim=claim, outcome="settled", basic=basic.basic, catastrophic=detail_of(result),
                                residual_in_policy=result.residual_in_policy)
    return CatastrophicDecision(event, result, result.year_state_after)
