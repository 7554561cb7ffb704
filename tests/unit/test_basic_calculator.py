"""Basic insurance (基本医保) calculator. Expected values are worked by hand from the policy text
(demo-county.md Layer 1; seed-rules.md section 1.1, F002 L107-L115 and L521)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from policy import InvalidClaimError, NotPricedError, load_profile
from policy.calculators.basic import BasicClaim, BasicYearState, settle_basic

DEMO = load_profile("demo-county")
GZ = load_profile("gz-2009-basic")
ZZ = load_profile("zhengzhou-basic")
FIRST = BasicYearState()


def claim(level: int | str, scheme: str = "resident", categories: frozenset[str] = frozenset({"ordinary"}),
          grade: int | None = None, years: int = 0, **amounts: str) -> BasicClaim:
    return BasicClaim(
        claim_id="H1:1", scheme=scheme, hospital_level=level,
        amounts_by_class={k: D(v) for k, v in amounts.items()},
        categories=categories, disability_grade=grade, consecutive_contribution_years=years,
    )


# ------------------------------------------------------------------- demo-county examples


def test_demo_example_1_ordinary_level_3() -> None:
    # A 8,000 + B 2,000 in policy, SELF 500 out; (10,000 - 400) x 40% = 3,840.00
    r = settle_basic(claim(3, A="8000.00", B="2000.00", SELF="500.00"), DEMO, FIRST)
    assert (r.total_cost, r.in_policy, r.out_of_policy) == (D("10500.00"), D("10000.00"), D("500.00"))
    assert (r.deductible, r.ratio, r.paid) == (D("400.00"), D("0.40"), D("3840.00"))
    assert r.residual_in_policy == D("6160.00")           # 10,000 - 3,840
    assert r.catastrophic_base == D("5760.00")            # (10,000 - 400) - 3,840
    assert (r.accumulator_before, r.accumulator_after) == (D("0.00"), D("3840.00"))
    assert r.cap_left_after == D("36160.00")              # 40,000 - 3,840
    assert not r.deductible_reduced


def test_demo_example_2_second_claim_level_2() -> None:
    # (5,000 - 200) x 50% = 2,400.00; accumulator 3,840 -> 6,240
    r = settle_basic(claim(2, A="5000.00"), DEMO, BasicYearState(paid=D("3840.00")))
    assert r.paid == D("2400.00")
    assert r.catastrophic_base == D("2400.00")            # 4,800 - 2,400
    assert (r.accumulator_before, r.accumulator_after) == (D("3840.00"), D("6240.00"))
    assert r.cap_left_after == D("33760.00")              # 40,000 - 6,240


def test_demo_example_3_dibao_halved_deductible() -> None:
    # deductible 400 / 2 = 200; 49,800 x 40% = 19,920.00
    r = settle_basic(claim(3, categories=frozenset({"dibao"}), A="50000.00"), DEMO, FIRST)
    assert (r.deductible, r.deductible_reduced, r.paid) == (D("200.00"), True, D("19920.00"))
    assert r.residual_in_policy == D("30080.00")          # 50,000 - 19,920
    assert r.catastrophic_base == D("29880.00")           # 49,800 - 19,920


@pytest.mark.parametrize(
    ("categories", "grade", "deductible", "paid"),
    [
        ({"tekun"}, None, "200.00", "3920.00"),           # halved: (10,000 - 200) x 40%
        ({"disabled"}, 1, "200.00", "3920.00"),
        ({"disabled"}, 2, "200.00", "3920.00"),
        ({"disabled"}, 3, "400.00", "3840.00"),           # grade 3 is not severe: (10,000 - 400) x 40%
        ({"youfu"}, None, "400.00", "3840.00"),
        ({"poverty_registered"}, None, "400.00", "3840.00"),  # no basic tilt in demo-county
    ],
)
def test_demo_deductible_tilts(categories: set[str], grade: int | None, deductible: str, paid: str) -> None:
    r = settle_basic(claim(3, categories=frozenset(categories), grade=grade, A="10000.00"), DEMO, FIRST)
    assert (r.deductible, r.paid) == (D(deductible), D(paid))


def test_demo_level_1() -> None:
    # (3,000 - 40) x 60% = 1,776.00
    assert settle_basic(claim(1, A="3000.00"), DEMO, FIRST).paid == D("1776.00")


def test_in_policy_below_the_deductible_pays_nothing() -> None:
    r = settle_basic(claim(3, A="300.00", C="1000.00"), DEMO, FIRST)
    assert (r.paid, r.deductible_applied, r.catastrophic_base, r.residual_in_policy) == (
        D("0.00"), D("300.00"), D("0.00"), D("300.00"))
    assert r.out_of_policy == D("1000.00")                # C is out of policy in demo-county


def test_annual_cap_is_never_exceeded() -> None:
    # 39,000 paid already: the claim computes (10,000 - 400) x 40% = 3,840 but only 1,000 is left
    r = settle_basic(claim(3, A="10000.00"), DEMO, BasicYearState(paid=D("39000.00")))
    assert (r.computed, r.paid, r.cap_left_after, r.accumulator_after) == (
        D("3840.00"), D("1000.00"), D("0.00"), D("40000.00"))
    assert r.catastrophic_base == D("8600.00")            # 9,600 - 1,000: critical illness takes the rest
    nxt = settle_basic(claim(3, A="10000.00"), DEMO, r.year_state_after)
    assert (nxt.paid, nxt.cap_left_before) == (D("0.00"), D("0.00"))


def test_rounding_half_up_to_the_fen() -> None:
    # level 2: (200.03 - 200) x 50% = 0.015 -> 0.02 (half up)
    assert settle_basic(claim(2, A="200.03"), DEMO, FIRST).paid == D("0.02")
    # (200.01 - 200) x 50% = 0.005 -> 0.01 (half up)
    assert settle_basic(claim(2, A="200.01"), DEMO, FIRST).paid == D("0.01")


def test_per_year_deductible_basis_when_a_profile_chooses_it() -> None:
    profile = load_profile("demo-county", {"basic": {"deductible_basis": "per_year"}})
    first = settle_basic(claim(3, A="300.00"), profile, FIRST)          # 300 of the 400 deductible borne
    second = settle_basic(claim(3, A="10000.00"), profile, first.year_state_after)
    # remaining deductible 400 - 300 = 100; (10,000 - 100) x 40% = 3,960.00
    assert (second.deductible, second.paid) == (D("100.00"), D("3960.00"))


# -------------------------------------------------------------------------- refusals


def test_scheme_not_priced_is_no_policy() -> None:
    with pytest.raises(NotPricedError) as info:
        settle_basic(claim(3, scheme="employee", A="100.00"), DEMO, FIRST)
    assert info.value.reason_code == "NO_POLICY"


def test_basic_layer_not_priced_by_a_catastrophic_only_profile() -> None:
    daqing = load_profile("daqing-2015-catastrophic")
    with pytest.raises(NotPricedError, match="basic"):
        settle_basic(claim(3, scheme="ncms", A="100.00"), daqing, FIRST)


@pytest.mark.parametrize(
    "bad",
    [
        dict(hospital_level=4),
        dict(amounts_by_class={"A": D("-1.00")}),
        dict(amounts_by_class={"A": D("1.001")}),
        dict(amounts_by_class={"A": 1.5}),
        dict(amounts_by_class={"D": D("1.00")}),
        dict(categories=frozenset({"veteran"})),
        dict(consecutive_contribution_years=-1),
    ],
)
def test_invalid_claims_are_refused(bad: dict[str, object]) -> None:
    fields: dict[str, object] = dict(claim_id="H1:1", scheme="resident", hospital_level=3,
                                     amounts_by_class={"A": D("1.00")})
    fields.update(bad)
    with pytest.raises(InvalidClaimError):
        settle_basic(BasicClaim(**fields), DEMO, FIRST)  # type: ignore[arg-type]


# ------------------------------------------------------------------ GZ (F002 L107-L115)


def test_gz_worked_examples() -> None:
    # seed-rules.md 1.1 [DERIVED]: (10,000 - 400) x 40% = 3,840; patient 6,160
    r = settle_basic(claim(3, scheme="urban_resident", A="10000.00"), GZ, FIRST)
    assert (r.paid, r.residual_in_policy) == (D("3840.00"), D("6160.00"))
    # 低保: deductible 200, (10,000 - 200) x 40% = 3,920
    r = settle_basic(claim(3, scheme="urban_resident", categories=frozenset({"dibao"}), A="10000.00"), GZ, FIRST)
    assert r.paid == D("3920.00")
    # level 1: (3,000 - 40) x 60% = 1,776
    assert settle_basic(claim(1, scheme="urban_resident", A="3000.00"), GZ, FIRST).paid == D("1776.00")


def test_gz_cap_40000() -> None:
    # level 1, 100,000: (100,000 - 40) x 60% = 59,976 -> capped at 40,000 (F002 L109)
    r = settle_basic(claim(1, scheme="urban_resident", A="100000.00"), GZ, FIRST)
    assert (r.computed, r.paid) == (D("59976.00"), D("40000.00"))


@pytest.mark.parametrize(
    ("years", "increase", "ratio", "paid", "cap"),
    [
        (0, "0", "0.40", "3840.00", "40000.00"),
        (2, "0", "0.40", "3840.00", "40000.00"),
        # 满3年: +2% of the standard: 0.40 x 1.02 = 0.408; 9,600 x 0.408 = 3,916.80; cap 40,800
        (3, "0.02", "0.408", "3916.80", "40800.00"),
        # 5 years: 3 steps = 6%: 0.40 x 1.06 = 0.424; 9,600 x 0.424 = 4,070.40; cap 42,400
        (5, "0.06", "0.424", "4070.40", "42400.00"),
        # 12 years: 10 steps = 20%, the maximum: 0.48; 9,600 x 0.48 = 4,608.00; cap 48,000
        (12, "0.20", "0.48", "4608.00", "48000.00"),
        # 20 years: still at most 20% of the original standard
        (20, "0.20", "0.48", "4608.00", "48000.00"),
    ],
)
def test_gz_continuity_bonus_relative(years: int, increase: str, ratio: str, paid: str, cap: str) -> None:
    r = settle_basic(claim(3, scheme="urban_resident", years=years, A="10000.00"), GZ, FIRST)
    assert (r.continuity_increase, r.ratio, r.paid, r.annual_cap) == (D(increase), D(ratio), D(paid), D(cap))


def test_gz_continuity_bonus_in_points_mode() -> None:
    points = load_profile("gz-2009-basic", {"basic": {"continuity_bonus": {"mode": "points"}}})
    # 5 years: 3 steps x 2 points = 0.06: 0.40 + 0.06 = 0.46; 9,600 x 0.46 = 4,416.00
    r = settle_basic(claim(3, scheme="urban_resident", years=5, A="10000.00"), points, FIRST)
    assert (r.ratio, r.paid, r.annual_cap) == (D("0.46"), D("4416.00"), D("42400.00"))
    # 20 years: at most 20% of the original 0.40 = 0.08 points: 0.48; 9,600 x 0.48 = 4,608.00
    r = settle_basic(claim(3, scheme="urban_resident", years=20, A="10000.00"), points, FIRST)
    assert (r.ratio, r.paid) == (D("0.48"), D("4608.00"))


# -------------------------------------------------------------- Zhengzhou (F002 L521)


@pytest.mark.parametrize(
    ("level", "deductible", "paid"),
    [
        (1, "300.00", "5820.00"),   # (10,000 - 300) x 60%
        (2, "600.00", "5170.00"),   # (10,000 - 600) x 55%
        (3, "900.00", "4550.00"),   # (10,000 - 900) x 50%
    ],
)
def test_zhengzhou_classes(level: int, deductible: str, paid: str) -> None:
    r = settle_basic(claim(level, scheme="urban_resident", A="10000.00"), ZZ, FIRST)
    assert (r.deductible, r.paid) == (D(deductible), D(paid))


def test_zhengzhou_cap_25000() -> None:
    # class 1, 50,000: (50,000 - 300) x 60% = 29,820 -> capped at 25,000
    r = settle_basic(claim(1, scheme="urban_resident", A="50000.00"), ZZ, FIRST)
    assert (r.computed, r.paid, r.cap_left_after) == (D("29820.00"), D("25000.00"), D("0.00"))


def test_zhengzhou_community_ratio_is_not_in_the_source() -> None:
    with pytest.raises(NotPricedError, match=r"basic\.ratio\.community"):
        settle_basic(claim("community", scheme="urban_resident", A="1000.00"), ZZ, FIRST)
    # with an operator-supplied ratio (0.65 is a TEST input, not a policy number):
    # deductible 200 (F002 L521); (1,000 - 200) x 65% = 520.00
    supplied = load_profile("zhengzhou-basic", {"basic": {"ratio": {"community": "0.65"}}})
    r = settle_basic(claim("community", scheme="urban_resident", A="1000.00"), supplied, FIRST)
    assert (r.deductible, r.paid) == (D("200.00"), D("520.00"))


def test_demo_county_has_no_community_level() -> None:
    with pytest.raises(NotPricedError, match="community"):
        settle_basic(claim("community", A="1000.00"), DEMO, FIRST)
