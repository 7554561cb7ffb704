"""Critical-illness insurance (大病保险) calculator. Expected values are worked by hand from the
policy text (demo-county.md Layer 2; seed-rules.md section 1.5; F001 L175-L177, L811-L867,
L1077-L1087)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from policy import InvalidClaimError, NotPricedError, load_profile
from policy.calculators.catastrophic import (
    CatastrophicClaim,
    CatastrophicYearState,
    settle_catastrophic,
)

DEMO = load_profile("demo-county")
DAQING = load_profile("daqing-2015-catastrophic")
# Operator inputs (TEST values, not policy numbers): Qinzhou's lost 60%/70% band bounds, and a
# Province-X tender table (one band at the ends of the stated 50%-75% range).
QINZHOU = load_profile("qinzhou-2015-catastrophic", {"catastrophic": {"bands": {1: {"lower": "20000"}, 2: {"lower": "40000"}}}})
PROVINCE_X_50 = load_profile("province-x-catastrophic", {"catastrophic": {"bands": [{"lower": "0", "ratio": "0.50"}]}})
PROVINCE_X_75 = load_profile("province-x-catastrophic", {"catastrophic": {"bands": [{"lower": "0", "ratio": "0.75"}]}})
FIRST = CatastrophicYearState()


def after_basic(in_policy: str, deductible: str, basic: str, *, scheme: str = "resident",
                categories: frozenset[str] = frozenset({"ordinary"}), location: str = "in_pool",
                referred: bool = False, conditions: frozenset[str] = frozenset(),
                **amounts: str) -> CatastrophicClaim:
    by_class = {k: D(v) for k, v in amounts.items()} or {"A": D(in_policy)}
    return CatastrophicClaim(
        claim_id="H1:1", scheme=scheme, in_policy=D(in_policy), deductible=D(deductible), basic_paid=D(basic),
        amounts_by_class=by_class, categories=categories, care_location=location, referred=referred,
        condition_groups=conditions,
    )


def self_pay(amount: str, **kw: object) -> CatastrophicClaim:
    """A claim whose compliant self-pay after basic is `amount` (no basic deductible, no basic payment)."""
    return after_basic(amount, "0", "0", **kw)  # type: ignore[arg-type]


def state(accumulation: str, paid: str = "0") -> CatastrophicYearState:
    return CatastrophicYearState(accumulation=D(accumulation), paid=D(paid))


# ------------------------------------------------------------------- demo-county examples


def test_demo_example_1_stays_under_the_threshold() -> None:
    # (10,000 - 400) - 3,840 = 5,760 accumulated; 5,760 < 6,000: nothing paid
    r = settle_catastrophic(after_basic("10000.00", "400.00", "3840.00"), DEMO, FIRST)
    assert (r.accumulation_increment, r.accumulation_before, r.accumulation_after) == (D("5760"), D("0"), D("5760"))
    assert (r.threshold, r.paid, r.slices, r.cap_left_after) == (D("6000"), D("0"), (), D("500000"))
    assert r.residual_in_policy == D("6160.00")          # 10,000 - 3,840 handed to assistance


def test_demo_example_2_crosses_the_threshold() -> None:
    # (5,000 - 200) - 2,400 = 2,400: 5,760 -> 8,160; 2,160 above 6,000 at 50% = 1,080.00
    r = settle_catastrophic(after_basic("5000.00", "200.00", "2400.00"), DEMO, state("5760.00"))
    assert (r.accumulation_before, r.accumulation_after, r.paid) == (D("5760"), D("8160"), D("1080.00"))
    [s] = r.slices
    assert (s.lower, s.upper, s.ratio, s.amount, s.paid) == (D("0"), D("20000"), D("0.50"), D("2160"), D("1080.00"))
    assert (r.residual_received, r.residual_in_policy) == (D("2600.00"), D("1520.00"))   # 5,000 - 2,400; - 1,080
    assert (r.paid_after, r.cap_left_after) == (D("1080.00"), D("498920.00"))


def test_demo_example_3_poor_person_two_bands() -> None:
    # (50,000 - 200) - 19,920 = 29,880; poor threshold 3,000: 26,880 above;
    # 20,000 x (50+10)% + 6,880 x (60+10)% = 12,000 + 4,816 = 16,816.00
    r = settle_catastrophic(after_basic("50000.00", "200.00", "19920.00", categories=frozenset({"dibao"})), DEMO, FIRST)
    assert (r.poor, r.threshold, r.accumulation_after, r.ratio_adjustment) == (True, D("3000"), D("29880"), D("0.10"))
    assert [(s.lower, s.ratio, s.amount, s.paid) for s in r.slices] == [
        (D("0"), D("0.60"), D("20000"), D("12000.00")), (D("20000"), D("0.70"), D("6880"), D("4816.00")),
    ]
    assert (r.paid, r.residual_in_policy) == (D("16816.00"), D("13264.00"))   # 30,080 - 16,816


def test_stays_under_the_threshold_are_paid_when_the_year_crosses_it() -> None:
    # Henan F001 L745: 2,500 + 2,500 + 2,500 = 7,500; only the third pays (7,500 - 6,000) x 50% = 750.00
    year, paid = FIRST, []
    for _ in range(3):
        r = settle_catastrophic(self_pay("2500.00"), DEMO, year)
        paid.append(r.paid)
        year = r.year_state_after
    assert paid == [D("0"), D("0"), D("750.00")]
    assert year.accumulation == D("7500.00")


def test_a_stay_spanning_two_bands_is_paid_at_both_rates() -> None:
    # 30,000 - 6,000 = 24,000 above: 20,000 x 50% + 4,000 x 60% = 10,000 + 2,400 = 12,400.00
    assert settle_catastrophic(self_pay("30000.00"), DEMO, FIRST).paid == D("12400.00")


@pytest.mark.parametrize(
    ("categories", "location", "referred", "paid"),
    [
        # ordinary, 16,000 accumulated: 10,000 above 6,000
        ({"ordinary"}, "in_pool", False, "5000.00"),            # 50%
        ({"ordinary"}, "in_province", True, "4500.00"),         # 50 - 5 = 45%
        ({"ordinary"}, "in_province", False, "4000.00"),        # 50 - 10 = 40%
        ({"ordinary"}, "out_of_province", True, "5000.00"),     # flat 50%
        ({"ordinary"}, "out_of_province", False, "4000.00"),    # flat 40%
        # dibao, 16,000 accumulated: 13,000 above the poor threshold 3,000, all in [0, 20,000) at 50 + 10 = 60%
        ({"dibao"}, "in_pool", False, "7800.00"),
    ],
)
def test_demo_location_and_referral_rules(categories: set[str], location: str, referred: bool, paid: str) -> None:
    r = settle_catastrophic(self_pay("16000.00", categories=frozenset(categories), location=location, referred=referred), DEMO, FIRST)
    assert r.paid == D(paid)


@pytest.mark.parametrize(
    ("location", "referred", "paid", "rule"),
    [
        # dibao, 13,000 accumulated: 10,000 above the poor threshold 3,000
        ("in_province", True, "5500.00", "bands"),          # 50 + 10 - 5 = 55%
        ("in_province", False, "5000.00", "bands"),         # 50 + 10 - 10 = 50%
        ("out_of_province", True, "5000.00", "out_of_province_flat"),   # flat 50%, no poor bonus
        ("out_of_province", False, "4000.00", "out_of_province_flat"),  # flat 40%, no poor bonus
    ],
)
def test_demo_poor_person_out_of_pool(location: str, referred: bool, paid: str, rule: str) -> None:
    r = settle_catastrophic(self_pay("13000.00", categories=frozenset({"dibao"}), location=location, referred=referred), DEMO, FIRST)
    assert (r.threshold, r.paid, r.rule) == (D("3000"), D(paid), rule)


def test_annual_cap_is_never_exceeded() -> None:
    # 499,000 paid; 100,000 accumulated (94,000 above, 80% band): 10,000 x 80% = 8,000 but 1,000 left
    r = settle_catastrophic(self_pay("10000.00"), DEMO, state("100000.00", "499000.00"))
    assert (r.computed, r.paid, r.cap_left_after, r.paid_after) == (D("8000.00"), D("1000.00"), D("0"), D("500000.00"))
    assert r.accumulation_after == D("110000.00")
    assert settle_catastrophic(self_pay("10000.00"), DEMO, r.year_state_after).paid == D("0")


def test_capped_payment_is_allotted_to_the_lowest_bands_first() -> None:
    # 495,000 paid; 56,000 accumulated = 50,000 above; + 20,000 -> 70,000 above:
    # 10,000 x 70% = 7,000 and 10,000 x 80% = 8,000: computed 15,000, only 5,000 left
    r = settle_catastrophic(self_pay("20000.00"), DEMO, state("56000.00", "495000.00"))
    assert [(s.computed, s.paid) for s in r.slices] == [(D("7000.00"), D("5000.00")), (D("8000.00"), D("0"))]
    assert r.paid == D("5000.00")


def test_bands_measured_on_the_cumulative_amount_when_configured() -> None:
    cumulative = load_profile("demo-county", {"catastrophic": {"band_base": "cumulative"}})
    # accumulation 0 -> 26,000, paid above 6,000 with bounds on the accumulation itself:
    # [6,000, 20,000) x 50% + [20,000, 26,000) x 60% = 7,000 + 3,600 = 10,600.00
    assert settle_catastrophic(self_pay("26000.00"), cumulative, FIRST).paid == D("10600.00")
    # reading (b), the default: 20,000 above the threshold at 50% = 10,000.00
    assert settle_catastrophic(self_pay("26000.00"), DEMO, FIRST).paid == D("10000.00")


def test_basic_deductible_part_counts_only_when_the_profile_says_so() -> None:
    counting = load_profile("demo-county", {"catastrophic": {"excludes_basic_deductible": False}})
    claim = after_basic("10000.00", "400.00", "3840.00")
    assert settle_catastrophic(claim, DEMO, FIRST).accumulation_increment == D("5760.00")       # 9,600 - 3,840
    assert settle_catastrophic(claim, counting, FIRST).accumulation_increment == D("6160.00")   # 10,000 - 3,840


# ------------------------------------------------------- Daqing 2015 (F001 L811-L867)


def test_daqing_ncms_worked_example() -> None:
    # seed-rules.md 1.5.3: (30,000 - 12,443) x 50% = 8,778.50
    r = settle_catastrophic(self_pay("30000.00", scheme="ncms", conditions=frozenset({"uraemia_dialysis"})), DAQING, FIRST)
    assert (r.threshold, r.paid) == (D("12443"), D("8778.50"))


def test_daqing_urban_worked_example() -> None:
    # reading (b): 150,000 - 18,000 = 132,000 above; 100,000 x 50% + 32,000 x 55% = 50,000 + 17,600 = 67,600.00
    r = settle_catastrophic(self_pay("150000.00", scheme="urban_resident", conditions=frozenset({"tumour_radio_chemo"})), DAQING, FIRST)
    assert [(s.amount, s.paid) for s in r.slices] == [(D("100000"), D("50000.00")), (D("32000"), D("17600.00"))]
    assert r.paid == D("67600.00")


def test_daqing_cap_200000() -> None:
    # 500,000 - 18,000 = 482,000: 100,000 x 50% + 382,000 x 55% = 50,000 + 210,100 = 260,100 -> 200,000
    r = settle_catastrophic(self_pay("500000.00", scheme="urban_resident", conditions=frozenset({"transplant_antirejection"})), DAQING, FIRST)
    assert (r.computed, r.paid) == (D("260100.00"), D("200000.00"))


def test_daqing_covers_only_the_three_major_diseases() -> None:
    r = settle_catastrophic(self_pay("150000.00", scheme="urban_resident"), DAQING, FIRST)
    assert (r.rule, r.paid, r.accumulation_increment, r.accumulation_after) == ("not_covered", D("0"), D("0"), D("0"))


# ------------------------------------------- Qinzhou 2015 (F001 L1077-L1087), bounds supplied


def test_qinzhou_out_of_province_worked_example() -> None:
    # seed-rules.md 1.5.3: 20,000 above the 6,000 threshold, out of Guangxi: referred 50% = 10,000.00,
    # not referred 50 - 10 = 40% = 8,000.00 (independent of the supplied bounds)
    referred = settle_catastrophic(self_pay("26000.00", location="out_of_province", referred=True), QINZHOU, FIRST)
    unreferred = settle_catastrophic(self_pay("26000.00", location="out_of_province", referred=False), QINZHOU, FIRST)
    assert (referred.paid, unreferred.paid) == (D("10000.00"), D("8000.00"))


@pytest.mark.parametrize(
    ("categories", "start", "location", "referred", "paid"),
    [
        # the surviving band "60000以上 80%": 66,000 accumulated = 60,000 above 6,000; + 10,000 at 80%
        ({"ordinary"}, "66000.00", "in_pool", False, "8000.00"),
        ({"ordinary"}, "66000.00", "in_province", True, "7500.00"),    # 80 - 5 = 75%
        ({"ordinary"}, "66000.00", "in_province", False, "7000.00"),   # 80 - 10 = 70%
        # rural poor: threshold 3,000, 63,000 = 60,000 above; 80 + 10 = 90%
        ({"poverty_registered"}, "63000.00", "in_pool", False, "9000.00"),
        ({"orphan"}, "63000.00", "in_province", True, "8500.00"),      # 90 - 5 = 85%
        ({"dibao"}, "63000.00", "in_province", False, "8000.00"),      # 90 - 10 = 80%
    ],
)
def test_qinzhou_top_band_poor_and_referral(categories: set[str], start: str, location: str, referred: bool, paid: str) -> None:
    claim = self_pay("10000.00", categories=frozenset(categories), location=location, referred=referred)
    assert settle_catastrophic(claim, QINZHOU, state(start)).paid == D(paid)


def test_qinzhou_class_b_and_c_prepayment() -> None:
    # B 10,000 in policy, C 2,000 outside basic; basic deductible 400, basic paid 3,840.
    # base = (10,000 - 400) - 3,840 + C 2,000 = 7,760; pre-payment 15% x 10,000 + 30% x 2,000 = 2,100;
    # accumulation + 5,660; already 60,000 above 6,000 -> 5,660 x 80% = 4,528.00
    claim = after_basic("10000.00", "400.00", "3840.00", B="10000.00", C="2000.00")
    r = settle_catastrophic(claim, QINZHOU, state("66000.00"))
    assert (r.base, r.prepayment, r.accumulation_increment, r.paid) == (D("7760.00"), D("2100.00"), D("5660.00"), D("4528.00"))
    assert r.residual_received == D("8160.00")          # 10,000 - 3,840 + 2,000
    assert r.residual_in_policy == D("1632.00")         # 10,000 - 3,840 - 4,528


def test_qinzhou_cap_500000() -> None:
    # 490,000 paid, 100,000 accumulated (94,000 above: 80% band); + 20,000 at 80% = 16,000 computed,
    # but only 500,000 - 490,000 = 10,000 is left
    r = settle_catastrophic(self_pay("20000.00"), QINZHOU, state("100000.00", "490000.00"))
    assert (r.computed, r.paid, r.cap_left_after) == (D("16000.00"), D("10000.00"), D("0"))


# ------------------------------------------ Province-X (F001 L175-L177), tender bands supplied


def test_province_x_worked_example() -> None:
    # seed-rules.md 1.5.3: 30,000 - 8,000 = 22,000; at 50%: 11,000.00; at 75%: 16,500.00
    claim = self_pay("30000.00", scheme="ncms")
    assert settle_catastrophic(claim, PROVINCE_X_50, FIRST).paid == D("11000.00")
    assert settle_catastrophic(claim, PROVINCE_X_75, FIRST).paid == D("16500.00")


def test_province_x_cap_220000() -> None:
    # (600,000 - 8,000) x 75% = 444,000 -> capped at 220,000
    r = settle_catastrophic(self_pay("600000.00", scheme="urban_resident"), PROVINCE_X_75, FIRST)
    assert (r.computed, r.paid) == (D("444000.00"), D("220000.00"))


def test_province_x_states_no_out_of_province_rule() -> None:
    r = settle_catastrophic(self_pay("30000.00", scheme="ncms", location="out_of_province"), PROVINCE_X_50, FIRST)
    assert (r.rule, r.paid) == ("bands", D("11000.00"))
    assert r.note is not None and "no rule" in r.note


# ---------------------------------------------------------------------------- refusals


def test_scheme_not_priced() -> None:
    with pytest.raises(NotPricedError):
        settle_catastrophic(self_pay("100.00", scheme="employee"), DEMO, FIRST)
    with pytest.raises(NotPricedError):
        settle_catastrophic(self_pay("100.00", scheme="urban_resident"), load_profile("gz-2009-basic"), FIRST)


@pytest.mark.parametrize(
    "claim",
    [
        after_basic("100.00", "0", "200.00"),                 # basic paid more than in policy
        self_pay("100.00", location="abroad"),
        self_pay("-1.00"),
        self_pay("100.00", categories=frozenset({"nobody"})),
    ],
)
def test_invalid_inputs(claim: CatastrophicClaim) -> None:
    with pytest.raises(InvalidClaimError):
        settle_catastrophic(claim, DEMO, FIRST)
