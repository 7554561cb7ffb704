"""Policy what-if (政策测算), pure: what would a candidate profile have paid for the claims the
platform settled, for whom, and what would patients have paid.

Input: the period's person-years (`PersonYear`), each with its current claims in the order the
layers priced them (their position), as plain values (`HistoricClaim`) — what settlement knew of
each claim when it priced it (scheme, hospital level, categories, amounts by class, diagnosis
codes) — plus what the platform actually stated for it (`Actual`). Output: a typed
`WhatIfReport`, actual against candidate.

Each person-year is priced again claim by claim with the layers' pure calculators
(`policy.calculators`), threading the three year states exactly as the services do
(`policy.decisions` → `runtime.claim_layer`), so re-pricing under the live profile reproduces the
live statements to the fen. A rejection that does not depend on the policy (eligibility, provider,
a duplicate bill, a malformed claim) is kept; a claim rejected for ``NO_POLICY`` is priced again
(the candidate may price its scheme or level) and any claim may become ``NO_POLICY`` under the
candidate. One approximation: a duplicate-bill rejection is kept even if the candidate would no
longer settle the earlier claim it duplicates.

Definitions (the same as `operator kpis`, services/audit/kpis.py):

* fund spending, total and in-policy cost count the claims **settled** on that side; patients'
  out-of-pocket (个人负担, ``psn_pay``) counts every claim (a rejected claim is paid in full);
* actual compensation ratio (实际补偿比) = funds / total cost; in-policy reimbursement ratio
  (政策范围内报销比例) = funds / in-policy cost; critical-illness actual payment ratio (大病保险实际支付比例,
  F001 L159) = critical-illness payments / the compliant self-pay above the threshold (per claim the
  part of its accumulation above the threshold); fractions to 4 places;
* a person-year **reaches** the basic annual cap when a claim leaves no basic cap (``cap_left`` 0
  after it); **crosses** the critical-illness threshold when its accumulation after a claim exceeds
  the threshold that applied; reaches the critical-illness cap, the assistance cap likewise
  (assistance: only persons with an assisted category);
* out-of-pocket burden: per person-year, the sum of ``psn_pay`` of its claims, counted above 10,000,
  50,000 and 100,000 yuan (report bands, not policy numbers);
* a claim **changes** when its outcome or any of its amounts differ; the claims that change most
  are ranked by the change in what the patient pays, then in what the funds pay.

`Repricer` keeps the person-years so that a parameter can be solved for (`solve`): only the
layers the parameter affects are priced again (basic results are reused when only critical-illness
or assistance parameters change).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Generic, Literal, TypeVar

from contracts.money import ZERO
from policy.calculators.assistance import AssistanceClaim, AssistanceYearState, settle_assistance
from policy.calculators.basic import BasicClaim, BasicYearState, settle_basic
from policy.calculators.catastrophic import CatastrophicClaim, CatastrophicYearState, settle_catastrophic
from policy.errors import InvalidClaimError, NotPricedError
from policy.profile import PolicyProfile
from policy.vocabulary import Layer

RATIO_PLACES = Decimal("0.0001")
BURDEN_BANDS: tuple[Decimal, ...] = (Decimal(10_000), Decimal(50_000), Decimal(100_000))
"""Out-of-pocket burden bands of the report (yuan per person-year): report bands, not policy."""
CATEGORY_ORDER: tuple[str, ...] = ("tekun", "dibao", "poverty_registered", "orphan", "disabled", "youfu",
                                   "family_planning")
"""A claim's assistance category for the report: the first of these the person holds, else ``ordinary``."""
RATIOS = ("compensation", "in_policy", "catastrophic")
"""The ratios a parameter can be solved for."""
LAYERS: tuple[Layer, ...] = ("basic", "catastrophic", "assistance")

T = TypeVar("T")
Outcome = Literal["settled", "rejected"]


class WhatIfError(ValueError):
    """The candidate profile cannot price the period (e.g. its critical-illness scope lacks a class
    its basic layer counts in policy): names the claim and the reason."""


# ------------------------------------------------------------------------------ the input


@dataclass(frozen=True, slots=True)
class Figures:
    """One claim's settlement on one side (actual or candidate): its outcome and amounts, and what
    its layers' year states say about caps and thresholds."""

    outcome: Outcome
    total_cost: Decimal
    in_policy: Decimal
    basic: Decimal
    catastrophic: Decimal
    assistance: Decimal
    patients: Decimal
    """psn_pay: total cost minus the funds (a rejected claim: its total cost)"""
    catastrophic_above: Decimal = ZERO
    """the part of the claim's critical-illness accumulation above the threshold"""
    basic_cap: bool = False
    catastrophic_threshold: bool = False
    catastrophic_cap: bool = False
    assistance_cap: bool = False
    reason: str | None = None
    """the rejection's reason code"""

    @property
    def funds(self) -> Decimal:
        return self.basic + self.catastrophic + self.assistance

    def same_money(self, other: Figures) -> bool:
        return (self.outcome, self.basic, self.catastrophic, self.assistance, self.patients) == (
            other.outcome, other.basic, other.catastrophic, other.assistance, other.patients)


def rejected_figures(total_cost: Decimal, reason: str | None) -> Figures:
    return Figures("rejected", total_cost, ZERO, ZERO, ZERO, ZERO, total_cost, reason=reason)


@dataclass(frozen=True, slots=True)
class HistoricClaim:
    """A claim as settlement priced it, in the calculators' plain values.

    `kept_rejection`: a rejection that does not depend on the policy (kept as it is); None for a
    claim settlement priced or rejected with ``NO_POLICY``, whose `scheme`, `hospital_level`,
    `categories` (as of the admission date) and `disability_grade` are then known."""

    claim_id: str
    hospital_id: str
    discharge_date: date
    total_cost: Decimal
    amounts_by_class: Mapping[str, Decimal]
    scheme: str | None
    hospital_level: str | None
    categories: frozenset[str]
    disability_grade: int | None
    contribution_years: int
    """consecutive contribution years up to the claim's year (the GZ continuity bonus)"""
    care_location: str
    referred: bool
    diagnosis_codes: tuple[str, ...]
    kept_rejection: str | None
    actual: Figures | None
    """what the platform stated (None: no statement yet, the claim is in flight)"""

    @property
    def level_key(self) -> str:
        return self.hospital_level or "unknown"

    @property
    def category_key(self) -> str:
        return next((c for c in CATEGORY_ORDER if c in self.categories), "ordinary")


@dataclass(frozen=True, slots=True)
class PersonYear:
    person_id: str
    year: int
    claims: tuple[HistoricClaim, ...]
    """in the order the layers price them (position, then claim id)"""


# ----------------------------------------------------------------------------- pricing


@dataclass(frozen=True, slots=True)
class _BasicStage:
    """What the later layers need of a claim's basic result (kept to re-price them alone)."""

    paid: Decimal
    deductible: Decimal
    in_policy: Decimal
    residual: Decimal
    amounts: Mapping[str, Decimal]
    classes: frozenset[str]
    cap_hit: bool


@dataclass(frozen=True, slots=True)
class _CatastrophicStage:
    paid: Decimal
    residual: Decimal
    above: Decimal
    threshold_crossed: bool
    cap_hit: bool


_Stage = Figures | _BasicStage
"""A claim after basic: settled (`_BasicStage`) or rejected (`Figures`)."""


def _no_policy(claim: HistoricClaim, profile: PolicyProfile) -> bool:
    assert claim.scheme is not None
    return not profile.prices_scheme(claim.scheme) or claim.discharge_date < profile.effective_from


def _basic(claim: HistoricClaim, profile: PolicyProfile, state: BasicYearState) -> tuple[_Stage, BasicYearState]:
    """The basic decision (`policy.decisions.basic`), from its plain inputs."""
    if claim.kept_rejection is not None:
        return rejected_figures(claim.total_cost, claim.kept_rejection), state
    if claim.scheme is None or claim.hospital_level is None or _no_policy(claim, profile):
        return rejected_figures(claim.total_cost, "NO_POLICY"), state
    try:
        r = settle_basic(BasicClaim(claim.claim_id, claim.scheme, claim.hospital_level, claim.amounts_by_class,
                                    claim.categories, claim.disability_grade, claim.contribution_years), profile, state)
    except NotPricedError:
        return rejected_figures(claim.total_cost, "NO_POLICY"), state
    except InvalidClaimError:
        return rejected_figures(claim.total_cost, "INVALID_CLAIM"), state
    stage = _BasicStage(r.paid, r.deductible, r.in_policy, r.residual_in_policy, r.amounts_by_class,
                        r.in_policy_classes, r.cap_left_after == 0)
    return stage, r.year_state_after


def _catastrophic(claim: HistoricClaim, b: _BasicStage, profile: PolicyProfile, state: CatastrophicYearState
                  ) -> tuple[_CatastrophicStage | None, CatastrophicYearState]:
    """The critical-illness decision (`policy.decisions.catastrophic`); None: the layer does not
    price the scheme."""
    assert claim.scheme is not None
    if not profile.prices_layer("catastrophic", claim.scheme):
        return None, state
    try:
        r = settle_catastrophic(CatastrophicClaim(
            claim_id=claim.claim_id, scheme=claim.scheme, in_policy=b.in_policy, deductible=b.deductible,
            basic_paid=b.paid, amounts_by_class=b.amounts, categories=claim.categories,
            care_location=claim.care_location, referred=claim.referred, basic_in_policy_classes=b.classes,
            condition_groups=profile.condition_groups_of(claim.diagnosis_codes)), profile, state)
    except (NotPricedError, InvalidClaimError) as exc:  # the live layer could not price it either
        raise WhatIfError(f"the candidate cannot price the critical-illness layer of claim {claim.claim_id}: "
                          f"{exc}") from None
    above = (max(r.accumulation_after - r.threshold, ZERO) - max(r.accumulation_before - r.threshold, ZERO))
    return _CatastrophicStage(r.paid, r.residual_in_policy, above, r.accumulation_after > r.threshold,
                              r.cap_left_after == 0), r.year_state_after


def _figures(claim: HistoricClaim, b: _BasicStage, c: _CatastrophicStage | None, profile: PolicyProfile,
             state: AssistanceYearState) -> tuple[Figures, AssistanceYearState]:
    """The assistance decision and the statement (`policy.decisions.assistance`)."""
    assert claim.scheme is not None
    residual = b.residual if c is None else c.residual
    paid, cap_hit = ZERO, False
    if profile.prices_layer("assistance", claim.scheme):
        r = settle_assistance(AssistanceClaim(claim.claim_id, claim.scheme, residual, claim.categories), profile,
                              state)
        paid, cap_hit, state = r.paid, r.cap_left_after == 0, r.year_state_after
    cat = ZERO if c is None else c.paid
    funds = b.paid + cat + paid
    return Figures("settled", claim.total_cost, b.in_policy, b.paid, cat, paid, claim.total_cost - funds,
                   catastrophic_above=ZERO if c is None else c.above, basic_cap=b.cap_hit,
                   catastrophic_threshold=c is not None and c.threshold_crossed,
                   catastrophic_cap=c is not None and c.cap_hit, assistance_cap=cap_hit), state


@dataclass
class _Cache:
    basic: list[_Stage] = field(default_factory=list)
    catastrophic: list[_CatastrophicStage | None] = field(default_factory=list)


def price_year(year: PersonYear, profile: PolicyProfile, *, start: Layer = "basic", cache: _Cache | None = None
               ) -> list[Figures]:
    """The candidate's figures of each claim of a person-year, in order. With `cache`, the stages
    before `start` are taken from it (a previous run) and the stages from `start` on stored in it."""
    b_state, c_state, a_state = BasicYearState(), CatastrophicYearState(), AssistanceYearState()
    out: list[Figures] = []
    fill_basic = cache is not None and start == "basic"
    fill_cat = cache is not None and start in ("basic", "catastrophic")
    if fill_basic:
        assert cache is not None
        cache.basic = []
    if fill_cat:
        assert cache is not None
        cache.catastrophic = []
    for i, claim in enumerate(year.claims):
        if start == "basic":
            stage, b_state = _basic(claim, profile, b_state)
            if fill_basic:
                cache.basic.append(stage)  # type: ignore[union-attr]
        else:
            assert cache is not None
            stage = cache.basic[i]
        if isinstance(stage, Figures):
            if fill_cat:
                cache.catastrophic.append(None)  # type: ignore[union-attr]
            out.append(stage)
            continue
        if start in ("basic", "catastrophic"):
            cat, c_state = _catastrophic(claim, stage, profile, c_state)
            if fill_cat:
                cache.catastrophic.append(cat)  # type: ignore[union-attr]
        else:
            assert cache is not None
            cat = cache.catastrophic[i]
        figures, a_state = _figures(claim, stage, cat, profile, a_state)
        out.append(figures)
    return out


# ------------------------------------------------------------------------- aggregation


@dataclass(frozen=True)
class Pair(Generic[T]):
    actual: T
    candidate: T


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    """numerator / denominator as a fraction to 4 places; None when there is nothing to divide by."""
    if not denominator:
        return None
    return (numerator / denominator).quantize(RATIO_PLACES, rounding=ROUND_HALF_UP)


@dataclass
class Totals:
    """Sums over a set of claims on one side (see the module for what counts where)."""

    claims: int = 0
    settled: int = 0
    rejected: int = 0
    total_cost: Decimal = ZERO
    """settled claims"""
    in_policy: Decimal = ZERO
    basic: Decimal = ZERO
    catastrophic: Decimal = ZERO
    assistance: Decimal = ZERO
    patients: Decimal = ZERO
    """every claim's psn_pay (a rejected claim in full)"""
    rejected_cost: Decimal = ZERO
    catastrophic_above: Decimal = ZERO

    def add(self, f: Figures) -> None:
        self.claims += 1
        self.patients += f.patients
        if f.outcome == "rejected":
            self.rejected += 1
            self.rejected_cost += f.total_cost
            return
        self.settled += 1
        self.total_cost += f.total_cost
        self.in_policy += f.in_policy
        self.basic += f.basic
        self.catastrophic += f.catastrophic
        self.assistance += f.assistance
        self.catastrophic_above += f.catastrophic_above

    def merge(self, other: Totals) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def funds(self) -> Decimal:
        return self.basic + self.catastrophic + self.assistance

    @property
    def compensation_ratio(self) -> Decimal | None:
        """实际补偿比: funds / total cost (settled claims)."""
        return ratio(self.funds, self.total_cost)

    @property
    def in_policy_ratio(self) -> Decimal | None:
        """政策范围内报销比例: funds / in-policy cost."""
        return ratio(self.funds, self.in_policy)

    @property
    def catastrophic_ratio(self) -> Decimal | None:
        """大病保险实际支付比例: critical-illness payments / compliant self-pay above the threshold."""
        return ratio(self.catastrophic, self.catastrophic_above)

    def ratio_of(self, name: str) -> Decimal | None:
        return {"compensation": self.compensation_ratio, "in_policy": self.in_policy_ratio,
                "catastrophic": self.catastrophic_ratio}[name]


@dataclass
class Reached:
    """Person-years reaching each cap or threshold (see the module)."""

    person_years: int = 0
    basic_cap: int = 0
    catastrophic_threshold: int = 0
    catastrophic_cap: int = 0
    assistance_cap: int = 0
    burden_above: dict[Decimal, int] = field(default_factory=lambda: dict.fromkeys(BURDEN_BANDS, 0))
    """person-years whose out-of-pocket burden is above each band"""

    def add(self, figures: Sequence[Figures]) -> None:
        self.person_years += 1
        self.basic_cap += any(f.basic_cap for f in figures)
        self.catastrophic_threshold += any(f.catastrophic_threshold for f in figures)
        self.catastrophic_cap += any(f.catastrophic_cap for f in figures)
        self.assistance_cap += any(f.assistance_cap for f in figures)
        burden = sum((f.patients for f in figures), ZERO)
        for band in BURDEN_BANDS:
            if burden > band:
                self.burden_above[band] += 1

    def merge(self, other: Reached) -> None:
        for name in ("person_years", "basic_cap", "catastrophic_threshold", "catastrophic_cap", "assistance_cap"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for band, n in other.burden_above.items():
            self.burden_above[band] = self.burden_above.get(band, 0) + n


@dataclass(frozen=True, order=True)
class ChangedClaim:
    """A claim whose settlement changes (masked person id: see the tools)."""

    claim_id: str
    person_id: str
    hospital_level: str
    category: str
    actual: Figures = field(compare=False)
    candidate: Figures = field(compare=False)

    @property
    def patients_change(self) -> Decimal:
        return self.candidate.patients - self.actual.patients

    @property
    def funds_change(self) -> Decimal:
        return self.candidate.funds - self.actual.funds

    def rank(self) -> tuple[Decimal, Decimal, str]:
        """Larger is a bigger change (ties: the smaller claim id first)."""
        return abs(self.patients_change), abs(self.funds_change), _inverted(self.claim_id)


def _inverted(text: str) -> str:
    return "".join(chr(0x10FFFF - ord(ch)) for ch in text)


@dataclass
class Aggregate:
    """Mergeable sums of a run (one per shard of person-years, merged into one)."""

    overall: Pair[Totals] = field(default_factory=lambda: Pair(Totals(), Totals()))
    by_level: dict[str, Pair[Totals]] = field(default_factory=dict)
    by_category: dict[str, Pair[Totals]] = field(default_factory=dict)
    reached: Pair[Reached] = field(default_factory=lambda: Pair(Reached(), Reached()))
    changed_claims: int = 0
    in_flight: int = 0
    """claims without a statement yet: priced (they move the accumulators), left out of both sides"""
    top: list[tuple[tuple[Decimal, Decimal, str], ChangedClaim]] = field(default_factory=list)
    top_n: int = 20
    differences: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(
        ("basic", "catastrophic", "assistance", "patients"), ZERO))
    """per fund and for patients, the sum over claims of |candidate - actual| (0.00: identical claim by claim)"""

    def add_year(self, year: PersonYear, candidate: Sequence[Figures]) -> None:
        actual_figs: list[Figures] = []
        candidate_figs: list[Figures] = []
        for claim, cand in zip(year.claims, candidate, strict=True):
            act = claim.actual
            if act is None:
                self.in_flight += 1
                continue
            actual_figs.append(act)
            candidate_figs.append(cand)
            self.overall.actual.add(act)
            self.overall.candidate.add(cand)
            for groups, key in ((self.by_level, claim.level_key), (self.by_category, claim.category_key)):
                pair = groups.get(key)
                if pair is None:
                    pair = groups[key] = Pair(Totals(), Totals())
                pair.actual.add(act)
                pair.candidate.add(cand)
            if not act.same_money(cand):
                self.changed_claims += 1
                for name in self.differences:
                    self.differences[name] += abs(getattr(cand, name) - getattr(act, name))
                self._offer(ChangedClaim(claim.claim_id, year.person_id, claim.level_key, claim.category_key,
                                         act, cand))
        if actual_figs:
            self.reached.actual.add(actual_figs)
            self.reached.candidate.add(candidate_figs)

    def _offer(self, changed: ChangedClaim) -> None:
        item = (changed.rank(), changed)
        if len(self.top) < self.top_n:
            heapq.heappush(self.top, item)
        elif item[0] > self.top[0][0]:
            heapq.heapreplace(self.top, item)

    def merge(self, other: Aggregate) -> None:
        self.overall.actual.merge(other.overall.actual)
        self.overall.candidate.merge(other.overall.candidate)
        for mine, theirs in ((self.by_level, other.by_level), (self.by_category, other.by_category)):
            for key, pair in theirs.items():
                if key not in mine:
                    mine[key] = Pair(Totals(), Totals())
                mine[key].actual.merge(pair.actual)
                mine[key].candidate.merge(pair.candidate)
        self.reached.actual.merge(other.reached.actual)
        self.reached.candidate.merge(other.reached.candidate)
        self.changed_claims += other.changed_claims
        self.in_flight += other.in_flight
        for name, value in other.differences.items():
            self.differences[name] += value
        for _, changed in other.top:
            self._offer(changed)

    def most_changed(self) -> list[ChangedClaim]:
        return [c for _, c in sorted(self.top, key=lambda item: item[0], reverse=True)]


@dataclass(frozen=True)
class WhatIfReport:
    """The what-if of one candidate profile over one insurance year: actual against candidate."""

    year: int
    candidate_id: str
    candidate_version: int
    overrides_applied: tuple[str, ...]
    person_years: int
    claims: int
    overall: Pair[Totals]
    by_level: dict[str, Pair[Totals]]
    by_category: dict[str, Pair[Totals]]
    reached: Pair[Reached]
    changed_claims: int
    most_changed: tuple[ChangedClaim, ...]
    in_flight: int
    differences: dict[str, Decimal]
    """per fund and for patients, the sum over claims of |candidate - actual|"""

    @property
    def identical(self) -> bool:
        """Every claim's outcome and amounts are the same on both sides."""
        return self.changed_claims == 0


def report_of(aggregate: Aggregate, year: int, candidate: PolicyProfile, person_years: int, claims: int
              ) -> WhatIfReport:
    order = {k: i for i, k in enumerate(("1", "2", "3", "community", "unknown"))}
    categories = {k: i for i, k in enumerate((*CATEGORY_ORDER, "ordinary"))}
    return WhatIfReport(
        year=year, candidate_id=candidate.id, candidate_version=candidate.version,
        overrides_applied=candidate.overrides_applied, person_years=person_years, claims=claims,
        overall=aggregate.overall,
        by_level=dict(sorted(aggregate.by_level.items(), key=lambda kv: (order.get(kv[0], 99), kv[0]))),
        by_category=dict(sorted(aggregate.by_category.items(), key=lambda kv: (categories.get(kv[0], 99), kv[0]))),
        reached=aggregate.reached, changed_claims=aggregate.changed_claims,
        most_changed=tuple(aggregate.most_changed()), in_flight=aggregate.in_flight,
        differences=dict(aggregate.differences))


def aggregate_years(years: Iterable[PersonYear], profile: PolicyProfile, *, top: int = 20) -> Aggregate:
    """Price every person-year under `profile` and sum actual against candidate."""
    agg = Aggregate(top_n=top)
    for year in years:
        agg.add_year(year, price_year(year, profile))
    return agg


def what_if(years: Iterable[PersonYear], profile: PolicyProfile, year: int, *, top: int = 20) -> WhatIfReport:
    """The what-if report of `profile` over the person-years of insurance year `year`."""
    counted = _Counted(years)
    agg = aggregate_years(counted, profile, top=top)
    return report_of(agg, year, profile, counted.years, counted.claims)


class _Counted:
    def __init__(self, years: Iterable[PersonYear]) -> None:
        self.source, self.years, self.claims = years, 0, 0

    def __iter__(self) -> Iterator[PersonYear]:
        for year in self.source:
            self.years += 1
            self.claims += len(year.claims)
            yield year


# --------------------------------------------------------------------- re-pricing again


class Repricer:
    """The person-years of a period held in memory, priced again under one profile after another;
    only the layers a change affects are priced again (the earlier layers' results are kept)."""

    def __init__(self, years: Sequence[PersonYear], *, top: int = 20) -> None:
        self.years = list(years)
        self.top = top
        self.claims = sum(len(y.claims) for y in self.years)
        self._caches: list[_Cache] | None = None

    def run(self, profile: PolicyProfile, *, start: Layer = "basic") -> Aggregate:
        """Price under `profile` from layer `start` on (the layers before it as in the last run
        from `basic`: a first run always starts there)."""
        if self._caches is None:
            start = "basic"
            self._caches = [_Cache() for _ in self.years]
        agg = Aggregate(top_n=self.top)
        for year, cache in zip(self.years, self._caches, strict=True):
            agg.add_year(year, price_year(year, profile, start=start, cache=cache))
        return agg

    def report(self, profile: PolicyProfile, year: int, *, start: Layer = "basic") -> WhatIfReport:
        return report_of(self.run(profile, start=start), year, profile, len(self.years), self.claims)


# ------------------------------------------------------------------------------ solving


RATIO_LEAVES = frozenset({"ratio", "poor_bonus", "factor", "step", "max_increase", "referred_adjustment",
                          "not_referred_adjustment", "referred_ratio", "not_referred_ratio", "min", "max"})
RATIO_TABLES = frozenset({"ratio", "class_prepayment"})
MONEY_LEAVES = frozenset({"threshold", "poor_threshold", "annual_cap", "lower"})
MONEY_TABLES = frozenset({"deductible"})
MONEY_STEP = Decimal(1)
"""A money parameter is solved to the whole yuan."""
RATIO_STEP = Decimal("0.001")
"""A ratio parameter is solved to a tenth of a percentage point."""


def parameter_kind(parts: Sequence[str | int]) -> Literal["money", "ratio"]:
    """Whether a profile parameter (its path) is money or a ratio; ValueError if neither."""
    names = [p for p in parts if isinstance(p, str)]
    leaf = names[-1] if names else ""
    parent = names[-2] if len(names) >= 2 else ""
    if leaf in MONEY_LEAVES or parent in MONEY_TABLES:
        return "money"
    if leaf in RATIO_LEAVES or parent in RATIO_TABLES:
        return "ratio"
    raise ValueError(f"{'.'.join(map(str, parts))!r} is not a money amount or a ratio of a profile (e.g. "
                     "catastrophic.threshold, catastrophic.bands[0].ratio, basic.annual_cap, basic.ratio.3)")


def layer_of_parameter(parts: Sequence[str | int]) -> Layer:
    """The first layer a parameter changes: later layers are priced again, earlier ones kept."""
    names = [p for p in parts if isinstance(p, str)]
    if names and names[0] == "condition_groups":
        return "catastrophic"
    if names and names[0] == "scheme_variants":
        names = names[2:]
    if names and names[0] in ("catastrophic", "assistance"):
        return names[0]  # type: ignore[return-value]
    return "basic"


@dataclass(frozen=True)
class Iteration:
    value: Decimal
    ratio: Decimal | None


@dataclass(frozen=True)
class Solution:
    """The value of a parameter at which a ratio reaches its target."""

    parameter: str
    ratio_name: str
    target: Decimal
    step: Decimal
    iterations: tuple[Iteration, ...]
    value: Decimal | None
    """the grid value closest to the boundary whose ratio is at least the target (None: not reached)"""
    achieved: Decimal | None
    message: str


def solve(evaluate: Callable[[Decimal], Decimal | None], *, parameter: str, ratio_name: str, target: Decimal,
          low: Decimal, high: Decimal, step: Decimal,
          on_iteration: Callable[[Iteration], None] | None = None) -> Solution:
    """Bisection over the grid ``low, low + step, ..., high`` for the value at which the ratio
    `evaluate(value)` reaches `target`, assuming the ratio moves one way with the value (a higher
    threshold pays less, a higher ratio pays more). Returns the grid value closest to the boundary
    on the side where the ratio is at least the target; a ratio with nothing to divide by (None)
    does not reach it."""
    iterations: list[Iteration] = []

    def at(k: int) -> Decimal | None:
        value = low + step * k
        result = evaluate(value)
        it = Iteration(value, result)
        iterations.append(it)
        if on_iteration is not None:
            on_iteration(it)
        return result

    def done(value: Decimal | None, achieved: Decimal | None, message: str) -> Solution:
        return Solution(parameter, ratio_name, target, step, tuple(iterations), value, achieved, message)

    n = int((high - low) / step)
    if n < 1:
        return done(None, None, "the range holds one value only")
    def ok(r: Decimal | None) -> bool:
        return r is not None and r >= target  # nothing to divide by (e.g. nobody above the threshold): not reached

    lo_ratio, hi_ratio = at(0), at(n)
    ok_lo, ok_hi = ok(lo_ratio), ok(hi_ratio)
    if ok_lo == ok_hi:
        side = "at least" if ok_lo else "below"
        return done(None, None, f"the {ratio_name} ratio is {side} {target} at both ends ({low}: {lo_ratio}, {high}: "
                                f"{hi_ratio}; none: nothing to divide by); widen the range")
    # invariant: ok(good) and not ok(bad); the answer is `good` once they are neighbours
    good, bad = (0, n) if ok_lo else (n, 0)
    good_ratio = lo_ratio if ok_lo else hi_ratio
    while abs(good - bad) > 1:
        mid = (good + bad) // 2
        r = at(mid)
        if ok(r):
            good, good_ratio = mid, r
        else:
            bad = mid
    value = low + step * good
    return done(value, good_ratio, f"{parameter} = {value}: the {ratio_name} ratio is {good_ratio} (target {target}); "
                                   f"one step further ({low + step * bad}) it falls short")
