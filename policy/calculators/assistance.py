"""Medical assistance (医疗救助) layer: the pure calculator. No I/O, no logging, Decimal only.

Assistance pays a ratio of the residual compliant self-pay — the in-policy residual after basic
insurance and critical illness — by the person's category; a person in several categories gets
the most generous tier (highest ratio, then highest cap, then the first listed). Out-of-policy
lines (C 丙类, SELF 全自费) are never assisted: they are not part of the residual it receives.
The payment is rounded half-up to the fen and limited by the tier's annual cap per person-year.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from contracts.money import ZERO, round_fen
from policy.calculators.inputs import claim_money
from policy.profile import AssistanceTier, PolicyProfile
from policy.vocabulary import claim_categories


@dataclass(frozen=True)
class AssistanceClaim:
    claim_id: str
    scheme: str
    residual_in_policy: Decimal
    """in-policy residual after basic and critical illness (what the patient would still pay in policy)"""
    categories: frozenset[str] = frozenset({"ordinary"})


@dataclass(frozen=True)
class AssistanceYearState:
    paid: Decimal = ZERO
    """assistance paid so far this person-year (counts against the annual cap)"""


@dataclass(frozen=True)
class AssistanceResult:
    claim_id: str
    profile_id: str
    profile_version: int
    category: str | None
    """the tier applied (None: no assisted category)"""
    ratio: Decimal
    base: Decimal
    """the residual received"""
    computed: Decimal
    """round(base × ratio), before the cap"""
    annual_cap: Decimal | None
    cap_left_before: Decimal | None
    paid: Decimal
    """medical assistance pays (医疗救助支付)"""
    cap_left_after: Decimal | None
    paid_before: Decimal
    paid_after: Decimal
    residual_after: Decimal
    """base - paid: the in-policy part the patient pays"""
    year_state_after: AssistanceYearState = field(repr=False)


def settle_assistance(claim: AssistanceClaim, profile: PolicyProfile, year: AssistanceYearState) -> AssistanceResult:
    """Price one claim under the assistance layer of `profile` (NotPricedError → NO_POLICY)."""
    policy = profile.assistance_for(claim.scheme)
    categories = claim_categories(claim.categories)
    base = claim_money(claim.residual_in_policy, "residual_in_policy")
    paid_before = claim_money(year.paid, "year.paid")
    tier = most_generous(policy.tiers, categories)
    if tier is None:
        computed = paid = ZERO
        cap = cap_left_before = cap_left_after = None
    else:
        computed = round_fen(base * tier.ratio)
        cap = tier.annual_cap
        cap_left_before = max(cap - paid_before, ZERO)
        paid = min(computed, cap_left_before, base)
        cap_left_after = cap_left_before - paid
    state = AssistanceYearState(paid=paid_before + paid)
    return AssistanceResult(
        claim_id=claim.claim_id,
        profile_id=profile.id,
        profile_version=profile.version,
        category=None if tier is None else tier.category,
        ratio=ZERO if tier is None else tier.ratio,
        base=base,
        computed=computed,
        annual_cap=cap,
        cap_left_before=cap_left_before,
        paid=paid,
        cap_left_after=cap_left_after,
        paid_before=paid_before,
        paid_after=state.paid,
        residual_after=base - paid,
        year_state_after=state,
    )


def most_generous(tiers: tuple[AssistanceTier, ...], categories: frozenset[str]) -> AssistanceTier | None:
    """The person's best tier: highest ratio, then highest cap, then the first listed."""
    best: AssistanceTier | None = None
    for tier in tiers:
        if tier.category in categories and (best is None or (tier.ratio, tier.annual_cap) > (best.ratio, best.annual_cap)):
            best = tier
    return best
