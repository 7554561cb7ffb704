"""Basic insurance (基本医保) layer: the pure calculator. No I/O, no logging, Decimal only.

For one inpatient discharge (a claim) under a profile's `basic` section:

* ``in_policy`` = the sum of the profile's in-policy classes (demo-county: ``A`` 甲类 + ``B`` 乙类);
  ``out_of_policy`` = the rest (``C`` 丙类 + ``SELF`` 全自费), always paid by the patient;
* the deductible (起付线) of the hospital level (医院级别), reduced for the tilt categories
  (demo-county: halved for dibao 低保, tekun 特困, disabled 残疾人 grade 1–2);
* the fund ratio (报销比例) of the level, raised by the continuity bonus (连续缴费奖励) when the
  profile has one;
* ``basic = min(round(max(in_policy - deductible, 0) × ratio), cap_left)`` where ``cap_left`` is
  what the annual cap (封顶线) per person-year leaves after the payments so far.

Handed on to critical illness: the compliant residual ``in_policy - basic`` and the
catastrophic base ``max(in_policy - deductible, 0) - basic``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from contracts.money import ONE, ZERO, round_fen
from policy.calculators.inputs import claim_money, validated_amounts_by_class
from policy.errors import InvalidClaimError, NotPricedError
from policy.profile import BasicPolicy, ContinuityBonus, PolicyProfile
from policy.vocabulary import CATALOGUE_CLASSES, LevelKey, claim_categories, level_key


@dataclass(frozen=True)
class BasicClaim:
    """One discharge as basic insurance sees it.

    `hospital_level` comes from the provider registry: 1, 2, 3 or ``"community"`` (Zhengzhou).
    `amounts_by_class` maps catalogue class (A/B/C/SELF) to the bill's total for that class.
    """

    claim_id: str
    scheme: str
    hospital_level: int | str
    amounts_by_class: Mapping[str, Decimal]
    categories: frozenset[str] = frozenset({"ordinary"})
    disability_grade: int | None = None
    consecutive_contribution_years: int = 0


@dataclass(frozen=True)
class BasicYearState:
    """Basic accumulator of one person-year before a claim."""

    paid: Decimal = ZERO
    """basic fund payments so far this year (counts against the annual cap)"""
    deductible_met: Decimal = ZERO
    """deductible borne so far this year (only used when the deductible is per year)"""


@dataclass(frozen=True)
class BasicResult:
    claim_id: str
    profile_id: str
    profile_version: int
    scheme: str
    hospital_level: str
    amounts_by_class: Mapping[str, Decimal]
    in_policy_classes: frozenset[str]
    total_cost: Decimal
    in_policy: Decimal
    out_of_policy: Decimal
    deductible: Decimal
    """the deductible (起付线) that applies to this claim, after the tilt"""
    deductible_reduced: bool
    deductible_applied: Decimal
    """the part of in-policy cost that fell under the deductible: min(deductible, in_policy)"""
    base_ratio: Decimal
    continuity_increase: Decimal
    """the continuity bonus applied (a fraction; relative or points as the profile says)"""
    ratio: Decimal
    above_deductible: Decimal
    computed: Decimal
    """round(above_deductible × ratio), before the cap"""
    annual_cap: Decimal
    cap_left_before: Decimal
    paid: Decimal
    """basic fund pays (统筹基金支付)"""
    cap_left_after: Decimal
    accumulator_before: Decimal
    accumulator_after: Decimal
    residual_in_policy: Decimal
    """compliant residual handed on: in_policy - paid"""
    catastrophic_base: Decimal
    """max(in_policy - deductible, 0) - paid: what accumulates for critical illness"""
    year_state_after: BasicYearState = field(repr=False)


def settle_basic(claim: BasicClaim, profile: PolicyProfile, year: BasicYearState) -> BasicResult:
    """Price one claim under the basic layer of `profile`.

    Raises `NotPricedError` (→ NO_POLICY) when the profile does not price the scheme, the basic
    layer or the hospital level, and `InvalidClaimError` for a malformed claim.
    """
    policy = profile.basic_for(claim.scheme)
    level = _level(claim, profile, policy)
    amounts = validated_amounts_by_class(claim.amounts_by_class, CATALOGUE_CLASSES)
    categories = claim_categories(claim.categories)
    paid_before = claim_money(year.paid, "year.paid")
    met_before = claim_money(year.deductible_met, "year.deductible_met")
    if claim.consecutive_contribution_years < 0:
        raise InvalidClaimError("consecutive_contribution_years: must be >= 0")

    total = sum(amounts.values(), ZERO)
    in_policy = sum((amounts[c] for c in policy.in_policy_classes), ZERO)
    level_deductible, reduced = _deductible(categories, claim.disability_grade, policy, level)
    if policy.deductible_basis == "per_year":
        deductible = max(level_deductible - met_before, ZERO)
    else:
        deductible = level_deductible

    base_ratio = policy.ratio[level]
    if base_ratio is None:
        raise NotPricedError(profile.id, f"basic.ratio.{level}: the source states no ratio for level {level}")
    increase, ratio, cap = _continuity(policy.continuity_bonus, claim.consecutive_contribution_years, base_ratio, policy.annual_cap)

    above = max(in_policy - deductible, ZERO)
    computed = round_fen(above * ratio)
    cap_left_before = max(cap - paid_before, ZERO)
    paid = min(computed, cap_left_before)
    applied = min(deductible, in_policy)
    state_after = BasicYearState(paid=paid_before + paid, deductible_met=met_before + applied)
    return BasicResult(
        claim_id=claim.claim_id,
        profile_id=profile.id,
        profile_version=profile.version,
        scheme=claim.scheme,
        hospital_level=level,
        amounts_by_class=amounts,
        in_policy_classes=frozenset(policy.in_policy_classes),
        total_cost=total,
        in_policy=in_policy,
        out_of_policy=total - in_policy,
        deductible=deductible,
        deductible_reduced=reduced,
        deductible_applied=applied,
        base_ratio=base_ratio,
        continuity_increase=increase,
        ratio=ratio,
        above_deductible=above,
        computed=computed,
        annual_cap=cap,
        cap_left_before=cap_left_before,
        paid=paid,
        cap_left_after=cap_left_before - paid,
        accumulator_before=paid_before,
        accumulator_after=state_after.paid,
        residual_in_policy=in_policy - paid,
        catastrophic_base=above - paid,
        year_state_after=state_after,
    )


def _level(claim: BasicClaim, profile: PolicyProfile, policy: BasicPolicy) -> LevelKey:
    try:
        level = level_key(claim.hospital_level)
    except ValueError as exc:
        raise InvalidClaimError(f"hospital_level: {exc}") from None
    if level not in policy.levels:
        raise NotPricedError(profile.id, f"basic: hospital level {level} is not priced (levels {', '.join(policy.levels)})")
    return level


def _deductible(categories: frozenset[str], grade: int | None, policy: BasicPolicy, level: LevelKey
                ) -> tuple[Decimal, bool]:
    """The level's deductible, reduced (e.g. halved) for the tilt categories."""
    full = policy.deductible[level]
    tilt = policy.deductible_reduction
    if tilt is None:
        return full, False
    severe = "disabled" in categories and grade in tilt.disabled_grades
    if severe or categories & set(tilt.categories):
        return round_fen(full * tilt.factor), True
    return full, False


def _continuity(bonus: ContinuityBonus | None, years: int, ratio: Decimal, cap: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """(increase, effective ratio, effective cap) under the GZ continuity bonus.

    Steps = years - first_step_after_years + 1 once the first threshold is reached (3 years → one
    step of 2%, 4 years → two steps, ...), the increase is at most `max_increase` of the original
    standard. Relative mode multiplies the ratio; points mode adds points, at most
    `max_increase × ratio`. The cap always rises relatively. A ratio never exceeds 1.
    """
    if bonus is None or years < bonus.first_step_after_years:
        return ZERO, ratio, cap
    steps = years - bonus.first_step_after_years + 1
    increase = min(steps * bonus.step, bonus.max_increase)
    if bonus.mode == "relative":
        new_ratio = ratio * (ONE + increase)
    else:
        increase = min(steps * bonus.step, bonus.max_increase * ratio)
        new_ratio = ratio + increase
    relative = min(steps * bonus.step, bonus.max_increase)
    new_cap = round_fen(cap * (ONE + relative)) if bonus.applies_to_cap else cap
    return increase, min(new_ratio, ONE), new_cap
