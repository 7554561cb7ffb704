"""One-stop settlement (一站式结算): the demo-county worked examples end to end, and properties
over random claim sequences of one person-year (money generated as integer fen, never floats)."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.money import FEN
from policy import PolicyProfile, load_profile
from policy.one_stop import (
    OneStopClaim,
    OneStopResult,
    OneStopYearState,
    settle_one_stop,
    settle_year,
)
from policy.vocabulary import CARE_LOCATIONS, PERSON_CATEGORIES

DEMO = load_profile("demo-county")
# demo-county with a Qinzhou-style per-class pre-payment (B 15%, C 30%, F001 L1087), so that the
# properties also cover a critical-illness scope wider than the basic one.
DEMO_PREPAY = load_profile(
    "demo-county", {"catastrophic": {"scope_classes": ["A", "B", "C"], "class_prepayment": {"B": "0.15", "C": "0.30"}}}
)
GZ = load_profile("gz-2009-basic")
SCHEME = {"demo-county": "resident", "gz-2009-basic": "urban_resident"}


def demo_claim(claim_id: str, level: int, categories: set[str] | None = None, **amounts: str) -> OneStopClaim:
    return OneStopClaim(claim_id, "resident", level, {k: D(v) for k, v in amounts.items()},
                        categories=frozenset(categories or {"ordinary"}))


# ------------------------------------------------------------ demo-county.md worked examples


def test_demo_examples_1_and_2_same_person() -> None:
    r1, r2 = settle_year([
        demo_claim("H1:1", 3, A="8000.00", B="2000.00", SELF="500.00"),
        demo_claim("H1:2", 2, A="5000.00"),
    ], DEMO)
    # 1. basic (10,000 - 400) x 40% = 3,840.00; accumulation 5,760 < 6,000; patient 10,500 - 3,840 = 6,660.00
    assert (r1.total_cost, r1.basic_paid, r1.catastrophic_paid, r1.assistance_paid, r1.patient_pays) == (
        D("10500.00"), D("3840.00"), D("0.00"), D("0.00"), D("6660.00"))
    assert r1.catastrophic is not None and r1.catastrophic.accumulation_after == D("5760.00")
    # 2. basic (5,000 - 200) x 50% = 2,400.00; accumulation 5,760 -> 8,160: 2,160 x 50% = 1,080.00;
    #    patient 5,000 - 2,400 - 1,080 = 1,520.00
    assert (r2.total_cost, r2.basic_paid, r2.catastrophic_paid, r2.assistance_paid, r2.patient_pays) == (
        D("5000.00"), D("2400.00"), D("1080.00"), D("0.00"), D("1520.00"))
    assert r2.catastrophic is not None
    assert (r2.catastrophic.accumulation_before, r2.catastrophic.accumulation_after) == (D("5760.00"), D("8160.00"))
    assert r2.year_state_after.basic.paid == D("6240.00")       # 3,840 + 2,400


def test_demo_example_3_dibao() -> None:
    [r] = settle_year([demo_claim("H1:3", 3, {"dibao"}, A="50000.00")], DEMO)
    # deductible 200; basic 49,800 x 40% = 19,920.00; accumulation 29,880, threshold 3,000, 26,880 above:
    # 20,000 x 60% + 6,880 x 70% = 16,816.00; residual 13,264.00; assistance 70% = 9,284.80; patient 3,979.20
    assert r.basic.deductible == D("200.00")
    assert (r.basic_paid, r.catastrophic_paid, r.assistance_paid, r.patient_pays) == (
        D("19920.00"), D("16816.00"), D("9284.80"), D("3979.20"))
    assert r.catastrophic is not None and r.assistance is not None
    assert (r.catastrophic.accumulation_after, r.catastrophic.threshold) == (D("29880.00"), D("3000.00"))
    assert r.assistance.base == D("13264.00")
    assert r.basic_paid + r.catastrophic_paid + r.assistance_paid + r.patient_pays == D("50000.00")


def test_assistance_is_not_deducted_from_the_accumulation() -> None:
    # F001 L177: after example 3 (assistance 9,284.80) the accumulation is still 29,880.00. A second
    # stay, A 10,000 at level 3: basic (10,000 - 200) x 40% = 3,920; it adds 9,800 - 3,920 = 5,880,
    # so 29,880 -> 35,760, i.e. 26,880 -> 32,760 above the threshold 3,000: all inside
    # [20,000, 40,000) at 60 + 10 = 70%: 5,880 x 70% = 4,116.00
    r1, r2 = settle_year([demo_claim("H1:3", 3, {"dibao"}, A="50000.00"), demo_claim("H1:4", 3, {"dibao"}, A="10000.00")], DEMO)
    assert r1.year_state_after.catastrophic.accumulation == D("29880.00")
    assert r2.catastrophic is not None
    assert (r2.basic_paid, r2.catastrophic.accumulation_after, r2.catastrophic_paid) == (
        D("3920.00"), D("35760.00"), D("4116.00"))


def test_a_profile_without_catastrophic_and_assistance_skips_them() -> None:
    [r] = settle_year([OneStopClaim("H1:1", "urban_resident", 3, {"A": D("10000.00")})], GZ)
    assert (r.catastrophic, r.assistance) == (None, None)
    assert (r.basic_paid, r.patient_pays) == (D("3840.00"), D("6160.00"))   # GZ: (10,000 - 400) x 40%


# ---------------------------------------------------------------------------- properties


def fen(max_yuan: int, min_yuan: int = 0) -> st.SearchStrategy[D]:
    return st.integers(min_value=min_yuan * 100, max_value=max_yuan * 100).map(lambda f: (D(f) / 100).quantize(FEN))


# small stays, large stays, and stays big enough to reach the 500,000 critical-illness cap
AMOUNT = st.one_of(fen(2_000), fen(60_000), fen(600_000), fen(1_500_000, 200_000))


@st.composite
def person_year(draw: Any, scheme: str = "resident", in_pool_only: bool = False) -> list[OneStopClaim]:
    categories = frozenset(draw(st.sets(st.sampled_from(PERSON_CATEGORIES), min_size=1, max_size=3)))
    grade = draw(st.one_of(st.none(), st.integers(1, 4)))
    years = draw(st.integers(0, 15))
    claims = []
    for i in range(draw(st.integers(1, 10))):
        amounts = {cls: draw(AMOUNT) for cls in ("A", "B", "C", "SELF") if draw(st.booleans())}
        claims.append(OneStopClaim(
            claim_id=f"H{i % 3}:{i}", scheme=scheme, hospital_level=draw(st.integers(1, 3)),
            amounts_by_class=amounts, categories=categories, disability_grade=grade,
            consecutive_contribution_years=years,
            care_location="in_pool" if in_pool_only else draw(st.sampled_from(CARE_LOCATIONS)),
            referred=draw(st.booleans()),
        ))
    return claims


PROFILES = st.sampled_from([DEMO, DEMO_PREPAY, GZ])
RUN = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def money_ok(*amounts: D | None) -> bool:
    return all(a is None or (a >= 0 and a == a.quantize(FEN)) for a in amounts)


def check_claim(r: OneStopResult, claim: OneStopClaim, profile: PolicyProfile) -> None:
    b, c, a = r.basic, r.catastrophic, r.assistance
    # parts add up to the total, to the fen
    assert r.total_cost == sum(claim.amounts_by_class.values(), D(0))
    assert r.total_cost == r.basic_paid + r.catastrophic_paid + r.assistance_paid + r.patient_pays
    assert r.in_policy + r.out_of_policy == r.total_cost
    # nothing negative, everything in fen
    assert money_ok(r.total_cost, r.in_policy, r.out_of_policy, r.basic_paid, r.catastrophic_paid,
                    r.assistance_paid, r.patient_pays, b.deductible, b.cap_left_after, b.residual_in_policy,
                    b.catastrophic_base)
    # basic pays at most the in-policy cost above the deductible
    assert b.paid <= b.above_deductible <= r.in_policy
    residual, scope = b.residual_in_policy, tuple(b.in_policy_classes)
    if c is not None:
        # critical illness receives in_policy - basic, plus its scope classes basic does not cover
        scope = profile.catastrophic_for(claim.scheme).scope_classes
        extra = sum((b.amounts_by_class[k] for k in scope if k not in b.in_policy_classes), D(0))
        assert c.residual_received == b.residual_in_policy + extra
        assert c.paid <= c.residual_received and c.paid <= c.accumulation_increment
        assert c.paid == sum((s.paid for s in c.slices), D(0))
        assert money_ok(c.paid, c.accumulation_after, c.cap_left_after, c.residual_after, c.residual_in_policy, c.prepayment)
        residual = c.residual_in_policy
    if a is not None:
        # assistance receives the in-policy residual after basic and critical illness
        assert a.base == residual and a.paid <= a.base
        assert money_ok(a.paid, a.base, a.residual_after, a.cap_left_after)
    # full self-pay lines are never paid by any fund; out-of-scope lines are the patient's
    assert r.patient_pays >= b.amounts_by_class["SELF"]
    if set(scope) == set(b.in_policy_classes):
        assert r.patient_pays >= r.out_of_policy


@RUN
@given(data=st.data(), profile=PROFILES)
def test_parts_add_up_and_no_layer_pays_more_than_it_received(data: st.DataObject, profile: PolicyProfile) -> None:
    claims = data.draw(person_year(SCHEME[profile.id]))
    for claim, r in zip(claims, settle_year(claims, profile), strict=True):
        check_claim(r, claim, profile)


@RUN
@given(data=st.data(), profile=PROFILES)
def test_annual_caps_are_never_exceeded(data: st.DataObject, profile: PolicyProfile) -> None:
    claims = data.draw(person_year(SCHEME[profile.id]))
    results = settle_year(claims, profile)
    basic = sum((r.basic_paid for r in results), D(0))
    cat = sum((r.catastrophic_paid for r in results), D(0))
    assist = sum((r.assistance_paid for r in results), D(0))
    # basic 40,000 per person-year (F002 L109); GZ continuity bonus raises it by at most 20% (F002 L115)
    assert basic <= (D("48000") if profile.id == "gz-2009-basic" else D("40000"))
    assert basic <= results[-1].basic.annual_cap             # the person's years are fixed within the year
    assert cat <= D("500000")                                 # Qinzhou F001 L1085
    assert assist <= D("30000")                               # demo-county illustrative
    final = results[-1].year_state_after
    assert (final.basic.paid, final.catastrophic.paid, final.assistance.paid) == (basic, cat, assist)


@RUN
@given(data=st.data(), profile=PROFILES)
def test_replaying_gives_identical_results(data: st.DataObject, profile: PolicyProfile) -> None:
    claims = data.draw(person_year(SCHEME[profile.id]))
    first = settle_year(claims, profile)
    assert settle_year(list(claims), profile) == first
    # resuming from any stored accumulator gives the same as settling in one go
    split = data.draw(st.integers(0, len(claims)))
    head = settle_year(claims[:split], profile)
    state = head[-1].year_state_after if head else OneStopYearState()
    assert head + settle_year(claims[split:], profile, state) == first


@RUN
@given(claims=person_year(in_pool_only=True))
def test_catastrophic_pays_the_band_integral_of_the_year_whatever_the_split(claims: list[OneStopClaim]) -> None:
    # in one's own pool and before the cap, the year's critical-illness payments are the band integral
    # of the year's accumulation (F001 L745), up to the fen rounding of each band slice
    results = settle_year(claims, DEMO)
    policy = DEMO.catastrophic_for("resident")
    first = results[0].catastrophic
    assert first is not None
    threshold, adjustment = first.threshold, first.ratio_adjustment
    total = results[-1].year_state_after.catastrophic.accumulation
    above = max(total - threshold, D(0))
    bounds = [b.lower for b in policy.bands or ()] + [None]
    exact = D(0)
    for band, lower, upper in zip(policy.bands or (), bounds, bounds[1:], strict=False):
        assert lower is not None
        part = max(min(above, upper if upper is not None else above) - lower, D(0))
        exact += part * min(band.ratio + adjustment, D(1))
    computed = sum((r.catastrophic.computed for r in results if r.catastrophic), D(0))
    slices = sum((len(r.catastrophic.slices) for r in results if r.catastrophic), 0)
    assert abs(computed - exact) <= D("0.005") * slices


def test_one_claim_helper_matches_the_year_helper() -> None:
    claim = demo_claim("H1:9", 1, {"tekun"}, A="3000.00", B="1000.00", C="50.00")
    assert settle_one_stop(claim, DEMO, OneStopYearState()) == settle_year([claim], DEMO)[0]
