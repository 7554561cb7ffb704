"""Medical assistance (医疗救助) calculator. The demo-county assistance numbers are illustrative
(demo-county.md Layer 3: tekun 100%, dibao 70%, poverty_registered 60%, cap 30,000 each); expected
values are worked by hand from that table."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from policy import InvalidClaimError, NotPricedError, load_profile
from policy.calculators.assistance import (
    AssistanceClaim,
    AssistanceYearState,
    settle_assistance,
)
from policy.one_stop import OneStopClaim, settle_year

DEMO = load_profile("demo-county")
FIRST = AssistanceYearState()


def residual(amount: str, *categories: str, scheme: str = "resident") -> AssistanceClaim:
    return AssistanceClaim("H1:1", scheme, D(amount), frozenset(categories or {"ordinary"}))


def test_demo_example_3() -> None:
    # residual 50,000 - 19,920 - 16,816 = 13,264; dibao 70% = 9,284.80; cap left 30,000 - 9,284.80
    r = settle_assistance(residual("13264.00", "dibao"), DEMO, FIRST)
    assert (r.category, r.ratio, r.base, r.paid) == ("dibao", D("0.70"), D("13264.00"), D("9284.80"))
    assert (r.paid_before, r.paid_after, r.cap_left_after) == (D("0"), D("9284.80"), D("20715.20"))
    assert r.residual_after == D("3979.20")             # 13,264 - 9,284.80: the patient's in-policy part


@pytest.mark.parametrize(
    ("categories", "category", "paid"),
    [
        (("tekun",), "tekun", "1000.00"),                       # 100%
        (("dibao", "tekun"), "tekun", "1000.00"),               # most generous wins
        (("dibao", "poverty_registered"), "dibao", "700.00"),   # 70% beats 60%
        (("poverty_registered", "disabled"), "poverty_registered", "600.00"),
        (("ordinary",), None, "0.00"),                          # anyone else 0%
        (("disabled", "youfu", "orphan"), None, "0.00"),
    ],
)
def test_most_generous_category(categories: tuple[str, ...], category: str | None, paid: str) -> None:
    r = settle_assistance(residual("1000.00", *categories), DEMO, FIRST)
    assert (r.category, r.paid) == (category, D(paid))
    if category is None:
        assert (r.annual_cap, r.cap_left_after) == (None, None)


def test_tie_on_ratio_goes_to_the_higher_cap() -> None:
    # TEST tiers (not policy numbers): same ratio, different caps
    profile = load_profile("demo-county", {"assistance": {"tiers": [
        {"category": "dibao", "ratio": "0.50", "annual_cap": "100.00"},
        {"category": "orphan", "ratio": "0.50", "annual_cap": "200.00"},
    ]}})
    r = settle_assistance(residual("1000.00", "dibao", "orphan"), profile, FIRST)
    assert (r.category, r.paid) == ("orphan", D("200.00"))      # 50% x 1,000 = 500 -> cap 200


def test_annual_cap_is_never_exceeded() -> None:
    # 25,000 paid already; tekun 100% of 10,000 = 10,000 but 5,000 left
    r = settle_assistance(residual("10000.00", "tekun"), DEMO, AssistanceYearState(paid=D("25000.00")))
    assert (r.computed, r.paid, r.cap_left_after, r.paid_after) == (D("10000.00"), D("5000.00"), D("0"), D("30000.00"))
    assert settle_assistance(residual("10000.00", "tekun"), DEMO, r.year_state_after).paid == D("0")


def test_rounding_half_up() -> None:
    # 0.05 x 70% = 0.035 -> 0.04; 0.01 x 60% = 0.006 -> 0.01
    assert settle_assistance(residual("0.05", "dibao"), DEMO, FIRST).paid == D("0.04")
    assert settle_assistance(residual("0.01", "poverty_registered"), DEMO, FIRST).paid == D("0.01")


def test_out_of_policy_lines_are_never_assisted() -> None:
    # tekun at level 3: A 1,000 + C 3,000 + SELF 2,000. Basic (1,000 - 200) x 40% = 320;
    # accumulation 800 - 320 = 480 < 3,000: no critical illness; assistance 100% of 1,000 - 320 = 680;
    # the patient pays C + SELF = 5,000.00 in full
    [r] = settle_year([OneStopClaim("H1:1", "resident", 3, {"A": D("1000.00"), "C": D("3000.00"), "SELF": D("2000.00")},
                                    categories=frozenset({"tekun"}))], DEMO)
    assert (r.basic_paid, r.catastrophic_paid, r.assistance_paid, r.patient_pays) == (
        D("320.00"), D("0"), D("680.00"), D("5000.00"))


def test_not_priced_and_invalid() -> None:
    with pytest.raises(NotPricedError):
        settle_assistance(residual("100.00", "dibao", scheme="employee"), DEMO, FIRST)
    with pytest.raises(NotPricedError):
        settle_assistance(residual("100.00", "dibao", scheme="urban_resident"), load_profile("gz-2009-basic"), FIRST)
    with pytest.raises(InvalidClaimError):
        settle_assistance(residual("-1.00", "dibao"), DEMO, FIRST)
    with pytest.raises(InvalidClaimError):
        settle_assistance(residual("1.00", "pauper"), DEMO, FIRST)
