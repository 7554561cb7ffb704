"""The what-if engine (政策测算, policy/whatif.py), pure: under the live profile it gives exactly what the
one-stop chain gives, claim by claim; parts add up, nothing is negative, no cap is exceeded; a
replay is identical; re-pricing only the later layers equals a full run; raising the basic cap
changes only the claims of persons who reached it; the solver finds the boundary. Worked figures
are demo-county.md's."""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.money import ZERO
from policy import load_profile, operator_overrides
from policy.one_stop import OneStopClaim, OneStopResult, settle_year
from policy.profile import PolicyProfile
from policy.whatif import (
    BURDEN_BANDS,
    Figures,
    HistoricClaim,
    Iteration,
    PersonYear,
    Repricer,
    WhatIfError,
    aggregate_years,
    layer_of_parameter,
    parameter_kind,
    price_year,
    solve,
    what_if,
)

DEMO = load_profile("demo-county")
OVERLAY = Path(__file__).resolve().parents[1] / "data" / "employee-test-inputs.yaml"
CATEGORIES = ("ordinary", "dibao", "tekun", "poverty_registered", "disabled", "orphan")


def historic(claim_id: str, amounts: dict[str, D], *, level: str = "3", categories: frozenset[str] = frozenset({"ordinary"}),
             scheme: str | None = "resident", location: str = "in_pool", referred: bool = False, grade: int | None = None,
             kept: str | None = None, discharged: date = date(2026, 6, 1), actual: Figures | None = None,
             codes: tuple[str, ...] = ("I10",)) -> HistoricClaim:
    return HistoricClaim(claim_id=claim_id, hospital_id="H1", discharge_date=discharged,
                         total_cost=sum(amounts.values(), ZERO), amounts_by_class=amounts, scheme=scheme,
                         hospital_level=level, categories=categories, disability_grade=grade, contribution_years=1,
                         care_location=location, referred=referred, diagnosis_codes=codes, kept_rejection=kept,
                         actual=actual)


def figures_of(r: OneStopResult) -> Figures:
    """The one-stop chain's result as the what-if's figures (the independent "actual")."""
    cat, assist = r.catastrophic, r.assistance
    above = ZERO if cat is None else (max(cat.accumulation_after - cat.threshold, ZERO)
                                      - max(cat.accumulation_before - cat.threshold, ZERO))
    return Figures("settled", r.total_cost, r.in_policy, r.basic_paid, r.catastrophic_paid, r.assistance_paid,
                   r.patient_pays, catastrophic_above=above, basic_cap=r.basic.cap_left_after == 0,
                   catastrophic_threshold=cat is not None and cat.accumulation_after > cat.threshold,
                   catastrophic_cap=cat is not None and cat.cap_left_after == 0,
                   assistance_cap=assist is not None and assist.cap_left_after == 0)


def with_actuals(years: list[PersonYear], profile: PolicyProfile = DEMO) -> list[PersonYear]:
    """The person-years with their actual figures from the one-stop chain under `profile`."""
    out = []
    for py in years:
        chain = settle_year([OneStopClaim(c.claim_id, c.scheme or "", c.hospital_level or "", c.amounts_by_class,
                                          c.categories, c.disability_grade, c.contribution_years, c.care_location,
                                          c.referred) for c in py.claims], profile)
        out.append(PersonYear(py.person_id, py.year, tuple(
            HistoricClaim(**{**{f: getattr(c, f) for f in HistoricClaim.__slots__}, "actual": figures_of(r)})  # type: ignore[attr-defined]
            for c, r in zip(py.claims, chain, strict=True))))
    return out


fen = st.integers(min_value=0, max_value=15_000_000).map(lambda n: D(n) / 100)


@st.composite
def claims(draw: st.DrawFn, person: str, n: int) -> HistoricClaim:
    amounts = {k: draw(fen) for k in draw(st.sets(st.sampled_from(("A", "B", "C", "SELF")), min_size=1))}
    cats = frozenset(draw(st.sets(st.sampled_from(CATEGORIES), min_size=1, max_size=2)))
    return historic(f"H1:{person}-{n}", amounts, level=draw(st.sampled_from(("1", "2", "3"))), categories=cats,
                    location=draw(st.sampled_from(("in_pool", "in_province", "out_of_province"))),
                    referred=draw(st.booleans()), grade=draw(st.sampled_from((None, 1, 3))) if "disabled" in cats else None)


@st.composite
def person_years(draw: st.DrawFn) -> list[PersonYear]:
    years = []
    for p in range(draw(st.integers(1, 6))):
        person = f"P{p:03d}"
        years.append(PersonYear(person, 2026, tuple(draw(claims(person, i)) for i in range(draw(st.integers(1, 5))))))
    return with_actuals(years)


FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------- the live profile


def test_demo_county_example_3_through_the_engine() -> None:
    # demo-county.md example 3: dibao, level 3, A 50,000: basic 19,920.00, critical illness 16,816.00,
    # assistance 9,284.80, patient 3,979.20; 26,880 of the accumulation is above the 3,000 threshold
    py = PersonYear("P1", 2026, (historic("H1:1", {"A": D("50000.00")}, categories=frozenset({"dibao"})),))
    [f] = price_year(py, DEMO)
    assert (f.basic, f.catastrophic, f.assistance, f.patients) == (D("19920.00"), D("16816.00"), D("9284.80"),
                                                                   D("3979.20"))
    assert (f.catastrophic_above, f.catastrophic_threshold, f.basic_cap) == (D("26880.00"), True, False)


@FAST
@given(person_years())
def test_the_live_profile_reproduces_the_chain_claim_by_claim(years: list[PersonYear]) -> None:
    for py in years:
        assert price_year(py, DEMO) == [c.actual for c in py.claims]
    report = what_if(years, DEMO, 2026)
    assert report.identical and report.changed_claims == 0 and not report.most_changed
    assert set(report.differences.values()) == {ZERO}
    assert report.overall.actual == report.overall.candidate
    assert report.reached.actual == report.reached.candidate


@FAST
@given(person_years(), st.sampled_from(["basic.annual_cap=10000.00", "catastrophic.threshold=1000.00",
                                        "catastrophic.annual_cap=5000.00", "assistance.tiers[0].annual_cap=100.00"]))
def test_parts_add_up_nothing_negative_no_cap_exceeded(years: list[PersonYear], change: str) -> None:
    profile = load_profile("demo-county", operator_overrides(None, [change]))
    basic_cap = profile.basic_for("resident").annual_cap
    cat_cap = profile.catastrophic_for("resident").annual_cap
    assist_caps = {t.category: t.annual_cap for t in profile.assistance_for("resident").tiers}
    for py in years:
        figures = price_year(py, profile)
        for claim, f in zip(py.claims, figures, strict=True):
            assert f.basic + f.catastrophic + f.assistance + f.patients == claim.total_cost
            assert min(f.basic, f.catastrophic, f.assistance, f.patients, f.catastrophic_above) >= 0
        assert sum(f.basic for f in figures) <= basic_cap
        assert sum(f.catastrophic for f in figures) <= cat_cap
        assert sum(f.assistance for f in figures) <= max(assist_caps.values())


@FAST
@given(person_years())
def test_a_replay_gives_identical_results(years: list[PersonYear]) -> None:
    candidate = load_profile("demo-county", operator_overrides(None, ["catastrophic.threshold=2000.00"]))
    assert what_if(years, candidate, 2026) == what_if(years, candidate, 2026)


@FAST
@given(person_years())
def test_shards_merge_to_the_whole(years: list[PersonYear]) -> None:
    candidate = load_profile("demo-county", operator_overrides(None, ["basic.ratio.3=0.55"]))
    whole = aggregate_years(years, candidate)
    merged = aggregate_years(years[: len(years) // 2], candidate)
    merged.merge(aggregate_years(years[len(years) // 2:], candidate))
    assert (merged.overall, merged.by_level, merged.by_category, merged.reached, merged.changed_claims,
            merged.differences, merged.most_changed()) == (
        whole.overall, whole.by_level, whole.by_category, whole.reached, whole.changed_claims, whole.differences,
        whole.most_changed())


@FAST
@given(person_years(), st.sampled_from([("catastrophic", "catastrophic.bands[0].ratio=0.70"),
                                        ("catastrophic", "catastrophic.poor_threshold=500.00"),
                                        ("assistance", "assistance.tiers[1].ratio=0.90")]))
def test_re_pricing_only_the_later_layers_equals_a_full_run(years: list[PersonYear], change: tuple[str, str]) -> None:
    layer, assignment = change
    candidate = load_profile("demo-county", operator_overrides(None, [assignment]))
    repricer = Repricer(years)
    repricer.run(DEMO)
    partial = repricer.run(candidate, start=layer)  # type: ignore[arg-type]
    full = aggregate_years(years, candidate)
    assert (partial.overall, partial.reached, partial.changed_claims, partial.differences) == (
        full.overall, full.reached, full.changed_claims, full.differences)


big = st.integers(min_value=5_000_000, max_value=25_000_000).map(lambda n: D(n) / 100)


@FAST
@given(st.lists(st.lists(big, min_size=1, max_size=4), min_size=1, max_size=6))
def test_raising_the_basic_cap_changes_only_persons_who_reached_it(bills: list[list[D]]) -> None:
    years = with_actuals([PersonYear(f"P{p}", 2026, tuple(historic(f"H1:{p}-{i}", {"A": a}) for i, a in enumerate(bs)))
                          for p, bs in enumerate(bills)])
    candidate = load_profile("demo-county", operator_overrides(None, ["basic.annual_cap=80000.00"]))
    report = what_if(years, candidate, 2026, top=1000)
    reached = {py.person_id for py in years if any(c.actual is not None and c.actual.basic_cap for c in py.claims)}
    changed = {c.person_id for c in report.most_changed}
    assert changed <= reached
    # a person whose year computed more than the old cap (40,000) is paid more: (a - 400) x 40% per claim
    limited = {py.person_id for py in years
               if sum(((c.total_cost - 400) * D("0.40")).quantize(D("0.01")) for c in py.claims) > 40_000}
    assert limited <= changed
    assert report.reached.actual.basic_cap == len(reached)


# --------------------------------------------------------------------------- rejections


def test_a_policy_independent_rejection_is_kept() -> None:
    claim = historic("H1:1", {"A": D("900.00")}, kept="NOT_ENROLLED", scheme=None, level=None)
    [f] = price_year(PersonYear("P1", 2026, (claim,)), DEMO)
    assert (f.outcome, f.reason, f.patients, f.funds) == ("rejected", "NOT_ENROLLED", D("900.00"), ZERO)


def test_a_no_policy_claim_is_priced_by_a_candidate_that_prices_its_scheme() -> None:
    actual = Figures("rejected", D("30000.00"), ZERO, ZERO, ZERO, ZERO, D("30000.00"), reason="NO_POLICY")
    claim = historic("H1:1", {"A": D("30000.00")}, scheme="employee", actual=actual)
    py = PersonYear("P1", 2026, (claim,))
    assert price_year(py, DEMO) == [actual]  # demo-county does not price the employee scheme
    employee = load_profile("demo-county-employee", operator_overrides(OVERLAY))
    [f] = price_year(py, employee)
    assert (f.outcome, f.basic, f.patients) == ("settled", D("23520.00"), D("6480.00"))  # TEST inputs: 80% above 600
    report = what_if([py], employee, 2026)
    assert (report.overall.actual.rejected, report.overall.candidate.settled) == (1, 1)
    assert report.changed_claims == 1 and report.most_changed[0].actual.outcome == "rejected"


def test_a_claim_before_the_candidate_takes_effect_is_not_priced() -> None:
    later = load_profile("demo-county", operator_overrides(None, ["effective_from=2026-07-01"]))
    py = PersonYear("P1", 2026, (historic("H1:1", {"A": D("1000.00")}, discharged=date(2026, 6, 30)),
                                 historic("H1:2", {"A": D("1000.00")}, discharged=date(2026, 7, 1))))
    assert [(f.outcome, f.reason) for f in price_year(py, later)] == [("rejected", "NO_POLICY"), ("settled", None)]


def test_a_level_the_candidate_does_not_price_is_no_policy() -> None:
    candidate = load_profile("demo-county", operator_overrides(None, ["basic.ratio.1=null"]))
    [f] = price_year(PersonYear("P1", 2026, (historic("H1:1", {"A": D("1000.00")}, level="1"),)), candidate)
    assert (f.outcome, f.reason) == ("rejected", "NO_POLICY")


def test_a_candidate_that_cannot_price_a_layer_is_refused_naming_the_claim() -> None:
    candidate = load_profile("demo-county", operator_overrides(None, ["basic.in_policy_classes=[A, B, C]"]))
    with pytest.raises(WhatIfError, match=r"claim H1:1: .*scope_classes lacks basic in-policy class C"):
        price_year(PersonYear("P1", 2026, (historic("H1:1", {"A": D("1000.00")}),)), candidate)


def test_claims_in_flight_are_priced_but_left_out() -> None:
    a, b = historic("H1:1", {"A": D("100000.00")}), historic("H1:2", {"A": D("50000.00")})
    [py] = with_actuals([PersonYear("P1", 2026, (a, b))])
    first = py.claims[0]
    in_flight = PersonYear("P1", 2026, (HistoricClaim(**{**{f: getattr(first, f) for f in HistoricClaim.__slots__},  # type: ignore[attr-defined]
                                                          "actual": None}), py.claims[1]))
    report = what_if([in_flight], DEMO, 2026)
    assert report.in_flight == 1 and report.overall.actual.claims == 1
    assert report.identical  # the second claim still gets the year state after the first


def test_burden_bands_and_groups() -> None:
    years = with_actuals([PersonYear("P1", 2026, (historic("H1:1", {"A": D("200000.00"), "SELF": D("60000.00")}),)),
                          PersonYear("P2", 2026, (historic("H1:2", {"SELF": D("20000.00")}, level="1",
                                                           categories=frozenset({"dibao", "disabled"})),))])
    report = what_if(years, DEMO, 2026)
    # P1: basic capped at 40,000; critical illness on 159,600 - 6,000 = 153,600: 10,000 + 12,000 + 14,000 +
    # 93,600 x 80% = 110,880; the patient pays 260,000 - 150,880 = 109,120. P2 pays its 20,000 SELF lines.
    assert report.reached.actual.burden_above == {BURDEN_BANDS[0]: 2, BURDEN_BANDS[1]: 1, BURDEN_BANDS[2]: 1}
    assert list(report.by_level) == ["1", "3"] and list(report.by_category) == ["dibao", "ordinary"]


# ------------------------------------------------------------------------------ solving


def test_solve_finds_the_highest_value_meeting_the_target_of_a_falling_ratio() -> None:
    seen: list[Iteration] = []
    # ratio falls with the value: 0.80 at 0, 0.40 at 10,000; 0.50 is reached up to 7,500
    sol = solve(lambda v: D("0.80") - v * D("0.00004"), parameter="x", ratio_name="compensation", target=D("0.50"),
                low=D(0), high=D(10_000), step=D(1), on_iteration=seen.append)
    assert sol.value == D(7500) and sol.achieved == D("0.50")
    assert len(sol.iterations) == len(seen) <= 2 + 14  # bisection over 10,001 values


def test_solve_finds_the_lowest_value_meeting_the_target_of_a_rising_ratio() -> None:
    sol = solve(lambda v: (v * D("0.9")).quantize(D("0.0001")), parameter="r", ratio_name="catastrophic",
                target=D("0.45"), low=D(0), high=D(1), step=D("0.001"))
    assert sol.value == D("0.500")


def test_solve_says_when_the_target_is_out_of_range() -> None:
    sol = solve(lambda v: D("0.30"), parameter="x", ratio_name="compensation", target=D("0.50"), low=D(0),
                high=D(100), step=D(1))
    assert sol.value is None and "below 0.50 at both ends" in sol.message


def test_solve_on_real_claims_reaches_the_target() -> None:
    years = with_actuals([PersonYear(f"P{p}", 2026, (historic(f"H1:{p}", {"A": D(5000 * (p + 1))}),)) for p in range(8)])
    repricer = Repricer(years)
    repricer.run(DEMO)

    def ratio_at(value: D) -> D | None:
        profile = load_profile("demo-county", operator_overrides(None, [f"catastrophic.threshold={value}"]))
        return repricer.run(profile, start="catastrophic").overall.candidate.compensation_ratio

    high, low = ratio_at(D(0)), ratio_at(D(40_000))
    assert high is not None and low is not None and high > low  # a higher threshold pays less
    target = ((high + low) / 2).quantize(D("0.0001"))
    sol = solve(ratio_at, parameter="catastrophic.threshold", ratio_name="compensation", target=target,
                low=D(0), high=D(40_000), step=D(1))
    assert sol.value is not None and sol.achieved is not None and sol.achieved >= target
    assert (ratio_at(sol.value + 1) or D(0)) < target  # one yuan more and the target is missed


@pytest.mark.parametrize(("path", "kind", "layer"), [
    (["catastrophic", "threshold"], "money", "catastrophic"),
    (["catastrophic", "bands", 0, "ratio"], "ratio", "catastrophic"),
    (["basic", "ratio", "3"], "ratio", "basic"),
    (["basic", "deductible", "1"], "money", "basic"),
    (["basic", "annual_cap"], "money", "basic"),
    (["scheme_variants", "ncms", "catastrophic", "threshold"], "money", "catastrophic"),
    (["assistance", "tiers", 1, "ratio"], "ratio", "assistance"),
    (["catastrophic", "class_prepayment", "B"], "ratio", "catastrophic"),
])
def test_parameters(path: list[str | int], kind: str, layer: str) -> None:
    assert (parameter_kind(path), layer_of_parameter(path)) == (kind, layer)


def test_a_parameter_that_is_no_amount_or_ratio_is_refused() -> None:
    with pytest.raises(ValueError, match="not a money amount or a ratio"):
        parameter_kind(["catastrophic", "band_base"])


# ------------------------------------------------------------------------------- as CSV


def test_the_report_as_csv_masks_identity_numbers() -> None:
    from contracts.identity import make_identity_number
    from tools.operator.whatif import CSV_HEADER, write_csv

    pid = make_identity_number("500242", date(1970, 5, 5), 12)
    years = with_actuals([PersonYear(pid, 2026, (historic("H1:1", {"A": D("60000.00")}),
                                                 historic("H1:2", {"A": D("60000.00")})))])
    report = what_if(years, load_profile("demo-county", operator_overrides(None, ["basic.annual_cap=60000.00"])), 2026)
    out = io.StringIO()
    rows = write_csv(report, out)
    text = out.getvalue()
    assert text.splitlines()[0] == ",".join(CSV_HEADER) and len(text.splitlines()) == rows + 1
    assert pid not in text and pid[:6] + "********" + pid[-4:] in text
    sections: dict[str, int] = defaultdict(int)
    for line in text.splitlines()[1:]:
        sections[line.split(",")[0]] += 1
    assert set(sections) == {"overall", "hospital_level", "assistance_category", "person_years",
                             "out_of_pocket_burden", "claims_changed", "difference"}
    # two claims of (60,000 - 400) x 40% = 23,840: the second gets 16,160 under the 40,000 cap, 23,840 under 60,000
    assert "overall,all,basic,40000.00,47680.00,7680.00" in text
    shown = io.StringIO()
    write_csv(report, shown, show_identity=True)
    assert pid in shown.getvalue()


def test_consecutive_contribution_years_as_settlement_counts_them() -> None:
    from tools.operator.whatif import consecutive_years

    assert consecutive_years([2024, 2025, 2026], 2026) == 3
    assert consecutive_years([2023, 2025, 2026, 2027], 2026) == 2  # a gap in 2024; a later year does not count
    assert consecutive_years([], 2026) == consecutive_years(None, 2026) == 0
