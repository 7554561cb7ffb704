"""Critical-illness insurance (大病保险) layer: the pure calculator. No I/O, no logging, Decimal only.

Per person-year the layer accumulates each claim's catastrophic base
``max(in_policy - deductible, 0) - basic`` (the personal part below the basic deductible does not
count; medical assistance received is never deducted), less any per-class pre-payment (Qinzhou:
the patient first pays 15% of 乙类 B and 30% of 丙类 C lines). A claim pays the **band integral**
between the accumulation before and after it, with bands (分段) measured on the cumulative amount
above the threshold (起付线; lower for the poor). So several stays that each stay under the
threshold are paid once the year's total crosses it, and a stay spanning two bands is paid at
both rates.

Ratios: the band ratio, plus the poor bonus (+10 points), plus the out-of-pool adjustment for care
in another pool of the same province (referred −5 / not referred −10 points, after the poor
bonus), kept inside 0..1. Care outside the province is paid at a flat ratio instead (referred 50%,
not referred 40%, no poor bonus). Each band's payment is rounded half-up to the fen; the claim's
payment is their sum, limited by the annual cap per person-year and by the residual received.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from contracts.money import ZERO, round_fen
from policy.calculators.inputs import (
    claim_money,
    clamp_ratio,
    validated_amounts_by_class,
)
from policy.errors import InvalidClaimError, NotPricedError
from policy.profile import CatastrophicPolicy, PolicyProfile
from policy.vocabulary import CARE_LOCATIONS, CATALOGUE_CLASSES, claim_categories

if TYPE_CHECKING:
    from policy.calculators.basic import BasicResult

Rule = Literal["bands", "out_of_province_flat", "not_covered"]


@dataclass(frozen=True)
class CatastrophicClaim:
    """What critical illness needs of a claim: the basic result plus person and care context."""

    claim_id: str
    scheme: str
    in_policy: Decimal
    deductible: Decimal
    """the basic deductible that applied to the claim"""
    basic_paid: Decimal
    amounts_by_class: Mapping[str, Decimal]
    categories: frozenset[str] = frozenset({"ordinary"})
    care_location: str = "in_pool"
    referred: bool = False
    basic_in_policy_classes: frozenset[str] = frozenset({"A", "B"})
    condition_groups: frozenset[str] = frozenset()
    """disease groups of the stay; only matter when the profile restricts diseases (Daqing)"""

    @classmethod
    def from_basic(
        cls,
        basic: BasicResult,
        *,
        categories: frozenset[str],
        care_location: str = "in_pool",
        referred: bool = False,
        condition_groups: frozenset[str] = frozenset(),
    ) -> CatastrophicClaim:
        """Build the input from a `policy.calculators.basic.BasicResult`."""
        return cls(
            claim_id=basic.claim_id,
            scheme=basic.scheme,
            in_policy=basic.in_policy,
            deductible=basic.deductible,
            basic_paid=basic.paid,
            amounts_by_class=basic.amounts_by_class,
            categories=categories,
            care_location=care_location,
            referred=referred,
            basic_in_policy_classes=basic.in_policy_classes,
            condition_groups=condition_groups,
        )


@dataclass(frozen=True)
class CatastrophicYearState:
    """Critical-illness accumulator of one person-year before a claim."""

    accumulation: Decimal = ZERO
    """accumulated compliant self-pay counted for critical illness (assistance not deducted)"""
    paid: Decimal = ZERO
    """critical-illness payments so far this year (counts against the annual cap)"""


@dataclass(frozen=True)
class BandSlice:
    """The part of this claim's accumulation inside one band."""

    lower: Decimal
    upper: Decimal | None
    band_ratio: Decimal
    """the ratio in the profile (for the flat out-of-province rule: the flat ratio)"""
    ratio: Decimal
    """the ratio applied after the poor bonus and location adjustments"""
    amount: Decimal
    computed: Decimal
    """round(amount × ratio)"""
    paid: Decimal
    """after the annual cap and the residual limit (lowest bands first)"""


@dataclass(frozen=True)
class CatastrophicResult:
    claim_id: str
    profile_id: str
    profile_version: int
    rule: Rule
    residual_received: Decimal
    """what the patient would still pay within this layer's scope: in_policy - basic (+ scope classes basic does not cover)"""
    base: Decimal
    """max(in_policy - deductible, 0) - basic (+ out-of-basic scope classes), before pre-payment"""
    prepayment: Decimal
    """per-class personal pre-payment (Qinzhou B 15%, C 30%)"""
    accumulation_increment: Decimal
    accumulation_before: Decimal
    accumulation_after: Decimal
    threshold: Decimal
    poor: bool
    band_base: str
    ratio_adjustment: Decimal
    """points added to every band (poor bonus + location), 0 under the flat rule"""
    slices: tuple[BandSlice, ...]
    computed: Decimal
    annual_cap: Decimal
    cap_left_before: Decimal
    paid: Decimal
    """critical illness pays (大病保险支付)"""
    cap_left_after: Decimal
    paid_before: Decimal
    paid_after: Decimal
    residual_after: Decimal
    """residual_received - paid"""
    residual_in_policy: Decimal
    """in-policy (basic scope) residual after basic and critical illness: what assistance may take"""
    note: str | None
    year_state_after: CatastrophicYearState = field(repr=False)


def settle_catastrophic(claim: CatastrophicClaim, profile: PolicyProfile, year: CatastrophicYearState) -> CatastrophicResult:
    """Price one claim under the critical-illness layer of `profile` (NotPricedError → NO_POLICY)."""
    policy = profile.catastrophic_for(claim.scheme)
    amounts = validated_amounts_by_class(claim.amounts_by_class, CATALOGUE_CLASSES)
    categories = claim_categories(claim.categories)
    in_policy = claim_money(claim.in_policy, "in_policy")
    deductible = claim_money(claim.deductible, "deductible")
    basic_paid = claim_money(claim.basic_paid, "basic_paid")
    acc_before = claim_money(year.accumulation, "year.accumulation")
    paid_before = claim_money(year.paid, "year.paid")
    if basic_paid > in_policy:
        raise InvalidClaimError(f"basic_paid {basic_paid} exceeds in_policy {in_policy}")
    if claim.care_location not in CARE_LOCATIONS:
        raise InvalidClaimError(f"care_location: {claim.care_location!r} is not one of {', '.join(CARE_LOCATIONS)}")
    missing = set(claim.basic_in_policy_classes) - set(policy.scope_classes)
    if missing:
        raise NotPricedError(profile.id, f"catastrophic.scope_classes lacks basic in-policy class {', '.join(sorted(missing))}")

    extra = sum((amounts[c] for c in policy.scope_classes if c not in claim.basic_in_policy_classes), ZERO)
    residual = in_policy - basic_paid + extra
    below = ZERO if not policy.excludes_basic_deductible else min(deductible, in_policy)
    base = max(in_policy - below - basic_paid, ZERO) + extra
    prepayment = round_fen(sum((r * amounts[c] for c, r in policy.class_prepayment.items()), ZERO))
    poor = bool(categories & set(policy.poor_categories))
    threshold = policy.poor_threshold if poor and policy.poor_threshold is not None else policy.threshold
    covered = policy.covered_conditions is None or bool(claim.condition_groups & set(policy.covered_conditions))
    increment = max(base - prepayment, ZERO) if covered else ZERO
    acc_after = acc_before + increment
    lo, hi = _coordinates(policy, threshold, acc_before, acc_after)

    rule: Rule
    note = None
    if not covered:
        rule, adjustment, raw = "not_covered", ZERO, []
        note = "no covered condition group: the claim does not accumulate for critical illness"
    elif claim.care_location == "out_of_province" and policy.out_of_province is not None:
        rule, adjustment = "out_of_province_flat", ZERO
        raw = [_flat(policy, poor, claim.referred, lo, hi)]
    else:
        rule, adjustment = "bands", _adjustment(policy, poor, claim.care_location, claim.referred)
        raw = _bands(policy, adjustment, lo, hi)
        if claim.care_location != "in_pool" and not _has_rule(policy, claim.care_location):
            note = f"the profile states no rule for {claim.care_location} care: band ratios apply unchanged"

    computed = sum((s.computed for s in raw), ZERO)
    cap_left_before = max(policy.annual_cap - paid_before, ZERO)
    paid = min(computed, cap_left_before, residual)
    slices = _allot(raw, paid)
    state = CatastrophicYearState(accumulation=acc_after, paid=paid_before + paid)
    return CatastrophicResult(
        claim_id=claim.claim_id,
        profile_id=profile.id,
        profile_version=profile.version,
        rule=rule,
        residual_received=residual,
        base=base,
        prepayment=prepayment,
        accumulation_increment=increment,
        accumulation_before=acc_before,
        accumulation_after=acc_after,
        threshold=threshold,
        poor=poor,
        band_base=policy.band_base,
        ratio_adjustment=adjustment,
        slices=slices,
        computed=computed,
        annual_cap=policy.annual_cap,
        cap_left_before=cap_left_before,
        paid=paid,
        cap_left_after=cap_left_before - paid,
        paid_before=paid_before,
        paid_after=state.paid,
        residual_after=residual - paid,
        residual_in_policy=max(in_policy - basic_paid - paid, ZERO),
        note=note,
        year_state_after=state,
    )


def _coordinates(policy: CatastrophicPolicy, threshold: Decimal, before: Decimal, after: Decimal) -> tuple[Decimal, Decimal]:
    """This claim's slice of the year's accumulation, in the coordinates the bands are measured on."""
    if policy.band_base == "above_threshold":
        return max(before - threshold, ZERO), max(after - threshold, ZERO)
    return max(before, threshold), max(after, threshold)


def _adjustment(policy: CatastrophicPolicy, poor: bool, location: str, referred: bool) -> Decimal:
    points = policy.poor_bonus if poor else ZERO
    rule = policy.in_province_out_of_pool
    if location == "in_province" and rule is not None:
        points += rule.referred_adjustment if referred else rule.not_referred_adjustment
    return points


def _has_rule(policy: CatastrophicPolicy, location: str) -> bool:
    if location == "in_province":
        return policy.in_province_out_of_pool is not None
    return policy.out_of_province is not None


def _bands(policy: CatastrophicPolicy, adjustment: Decimal, lo: Decimal, hi: Decimal) -> list[BandSlice]:
    bands = policy.bands or ()
    slices: list[BandSlice] = []
    for i, band in enumerate(bands):
        lower = band.lower
        upper = bands[i + 1].lower if i + 1 < len(bands) else None
        assert lower is not None  # a validated profile has every bound
        start = max(lo, lower)
        end = hi if upper is None else min(hi, upper)
        if end <= start:
            continue
        ratio = clamp_ratio(band.ratio + adjustment)
        amount = end - start
        slices.append(BandSlice(lower, upper, band.ratio, ratio, amount, round_fen(amount * ratio), ZERO))
    return slices


def _flat(policy: CatastrophicPolicy, poor: bool, referred: bool, lo: Decimal, hi: Decimal) -> BandSlice:
    rule = policy.out_of_province
    assert rule is not None
    flat = rule.referred_ratio if referred else rule.not_referred_ratio
    ratio = clamp_ratio(flat + (policy.poor_bonus if poor and rule.poor_bonus_applies else ZERO))
    amount = hi - lo
    return BandSlice(ZERO, None, flat, ratio, amount, round_fen(amount * ratio), ZERO)


def _allot(slices: list[BandSlice], paid: Decimal) -> tuple[BandSlice, ...]:
    """Spread the (possibly capped) payment over the bands, lowest first, so the slices add up."""
    left = paid
    result = []
    for s in slices:
        part = min(s.computed, left)
        left -= part
        result.append(BandSlice(s.lower, s.upper, s.band_ratio, s.ratio, s.amount, s.computed, part))
    return tuple(result)
