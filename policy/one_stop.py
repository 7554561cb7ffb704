"""One-stop settlement (一站式结算) of one claim across the three layers, pure.

The chain and the residual each layer receives:

1. basic insurance (基本医保) prices the claim → ``basic``;
2. critical illness (大病保险) receives the compliant residual ``in_policy - basic`` (plus any
   class in its scope that basic does not cover, e.g. Qinzhou C after 30% pre-payment) → ``catastrophic``;
3. medical assistance (医疗救助) receives the in-policy residual
   ``max(in_policy - basic - catastrophic, 0)`` → ``assistance``;
4. the patient pays ``total - basic - catastrophic - assistance`` (个人负担), which is the
   out-of-policy lines plus the in-policy part no layer paid.

All amounts are fen, so ``total = basic + catastrophic + assistance + patient_pays`` holds
exactly. A layer the profile does not price for the scheme is skipped (its result is None and it
pays 0); a profile that does not price the basic layer for the scheme raises `NotPricedError`.
The services call their own layer's function; this helper serves tests and the audit service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from contracts.money import ZERO
from policy.calculators.assistance import (
    AssistanceClaim,
    AssistanceResult,
    AssistanceYearState,
    settle_assistance,
)
from policy.calculators.basic import (
    BasicClaim,
    BasicResult,
    BasicYearState,
    settle_basic,
)
from policy.calculators.catastrophic import (
    CatastrophicClaim,
    CatastrophicResult,
    CatastrophicYearState,
    settle_catastrophic,
)
from policy.profile import PolicyProfile


@dataclass(frozen=True)
class OneStopClaim:
    claim_id: str
    scheme: str
    hospital_level: int | str
    amounts_by_class: Mapping[str, Decimal]
    categories: frozenset[str] = frozenset({"ordinary"})
    disability_grade: int | None = None
    consecutive_contribution_years: int = 0
    care_location: str = "in_pool"
    referred: bool = False
    condition_groups: frozenset[str] = frozenset()

    def basic_claim(self) -> BasicClaim:
        return BasicClaim(
            claim_id=self.claim_id,
            scheme=self.scheme,
            hospital_level=self.hospital_level,
            amounts_by_class=self.amounts_by_class,
            categories=self.categories,
            disability_grade=self.disability_grade,
            consecutive_contribution_years=self.consecutive_contribution_years,
        )


@dataclass(frozen=True)
class OneStopYearState:
    """The three per-person-year accumulators before a claim."""

    basic: BasicYearState = field(default_factory=BasicYearState)
    catastrophic: CatastrophicYearState = field(default_factory=CatastrophicYearState)
    assistance: AssistanceYearState = field(default_factory=AssistanceYearState)


@dataclass(frozen=True)
class OneStopResult:
    claim_id: str
    profile_id: str
    profile_version: int
    total_cost: Decimal
    in_policy: Decimal
    out_of_policy: Decimal
    basic: BasicResult
    catastrophic: CatastrophicResult | None
    assistance: AssistanceResult | None
    basic_paid: Decimal
    catastrophic_paid: Decimal
    assistance_paid: Decimal
    funds_paid: Decimal
    patient_pays: Decimal
    year_state_after: OneStopYearState = field(repr=False)


def settle_one_stop(claim: OneStopClaim, profile: PolicyProfile, year: OneStopYearState) -> OneStopResult:
    """Chain basic → critical illness → assistance for one claim of one person-year."""
    basic = settle_basic(claim.basic_claim(), profile, year.basic)
    catastrophic = None
    residual = basic.residual_in_policy
    if profile.prices_layer("catastrophic", claim.scheme):
        cat_claim = CatastrophicClaim.from_basic(
            basic,
            categories=claim.categories,
            care_location=claim.care_location,
            referred=claim.referred,
            condition_groups=claim.condition_groups,
        )
        catastrophic = settle_catastrophic(cat_claim, profile, year.catastrophic)
        residual = catastrophic.residual_in_policy
    assistance = None
    if profile.prices_layer("assistance", claim.scheme):
        assistance = settle_assistance(
            AssistanceClaim(claim.claim_id, claim.scheme, residual, claim.categories), profile, year.assistance
        )
    cat_paid = ZERO if catastrophic is None else catastrophic.paid
    assist_paid = ZERO if assistance is None else assistance.paid
    funds = basic.paid + cat_paid + assist_paid
    return OneStopResult(
        claim_id=claim.claim_id,
        profile_id=profile.id,
        profile_version=profile.version,
        total_cost=basic.total_cost,
        in_policy=basic.in_policy,
        out_of_policy=basic.out_of_policy,
        basic=basic,
        catastrophic=catastrophic,
        assistance=assistance,
        basic_paid=basic.paid,
        catastrophic_paid=cat_paid,
        assistance_paid=assist_paid,
        funds_paid=funds,
        patient_pays=basic.total_cost - funds,
        year_state_after=OneStopYearState(
            basic=basic.year_state_after,
            catastrophic=year.catastrophic if catastrophic is None else catastrophic.year_state_after,
            assistance=year.assistance if assistance is None else assistance.year_state_after,
        ),
    )


def settle_year(
    claims: list[OneStopClaim] | tuple[OneStopClaim, ...],
    profile: PolicyProfile,
    year: OneStopYearState | None = None,
) -> tuple[OneStopResult, ...]:
    """Settle one person-year's claims in order, threading the accumulators."""
    state = year or OneStopYearState()
    results = []
    for claim in claims:
        result = settle_one_stop(claim, profile, state)
        results.append(result)
        state = result.year_state_after
    return tuple(results)
