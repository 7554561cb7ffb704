"""The regional policy profile (政策参数): one versioned profile per region and effective date.

Conventions (checked on load):

* **Money** is yuan as an exact `Decimal` with at most two places (fen), never negative. In YAML it
  is written as a quoted string (``"400.00"``); plain YAML numbers are read exactly too.
* **Ratios** are `Decimal` **fractions between 0 and 1** (``"0.40"`` is 40%). A ratio adjustment in
  percentage points is a fraction as well (``"-0.05"`` is minus 5 points) between -1 and 1.
* A layer section that is absent (or ``null``) means *this profile does not price that layer*.
  ``scheme_variants`` replaces a layer section for one scheme (Daqing prices 城镇居民 and 新农合
  with different critical-illness rules). :meth:`PolicyProfile.prices_scheme` answers "do you
  price scheme X"; a claim under any other scheme is rejected with ``NO_POLICY``.
* A value the sources do not give is never invented: either it is marked illustrative
  (``illustrative`` lists the field paths) or it is ``null`` and must be supplied by the operator
  (critical-illness band bounds lost in the Qinzhou source, Province-X bands set by tender), in
  which case loading without it fails naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from contracts.money import FEN, is_fen, parse_decimal
from policy.errors import NotPricedError
from policy.vocabulary import CatalogueClass, Layer, LevelKey, PersonCategory, level_key


class FieldProblem(ValueError):
    """Raised inside a model validator to name a field below the model being validated."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


def _amount(value: Any) -> Decimal:
    amount = parse_decimal(value)
    if amount < 0:
        raise ValueError(f"money must not be negative (got {amount})")
    if not is_fen(amount):
        raise ValueError(f"money has more than two decimal places (fen): {amount}")
    return amount.quantize(FEN)


def _fraction(value: Any) -> Decimal:
    ratio = parse_decimal(value)
    if not Decimal(0) <= ratio <= Decimal(1):
        raise ValueError(f"ratio must be a fraction between 0 and 1 (got {ratio}); write 40% as \"0.40\"")
    return ratio


def _adjustment(value: Any) -> Decimal:
    points = parse_decimal(value)
    if not Decimal(-1) <= points <= Decimal(1):
        raise ValueError(f"a ratio adjustment is a fraction between -1 and 1 (got {points}); -5 points is \"-0.05\"")
    return points


def _level(value: Any) -> str:
    return level_key(value)


Amount = Annotated[Decimal, BeforeValidator(_amount)]
"""Money in a profile: yuan, non-negative, at most two decimals."""
Fraction = Annotated[Decimal, BeforeValidator(_fraction)]
"""A ratio in a profile: a fraction 0..1 ("0.40" is 40%)."""
Adjustment = Annotated[Decimal, BeforeValidator(_adjustment)]
Level = Annotated[LevelKey, BeforeValidator(_level)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _unique(values: tuple[Any, ...], what: str) -> None:
    seen: set[Any] = set()
    for i, value in enumerate(values):
        if value in seen:
            raise FieldProblem(f"{what}[{i}]", f"duplicate entry {value!r}")
        seen.add(value)


# --------------------------------------------------------------------------- basic 基本医保


class DeductibleReduction(_Model):
    """Tilt (倾斜): the deductible is multiplied by `factor` for the listed categories."""

    factor: Fraction
    categories: tuple[PersonCategory, ...] = ()
    disabled_grades: tuple[Annotated[int, Field(ge=1, le=4)], ...] = Field(
        default=(), description="grades of the `disabled` category that qualify (1–2 = severe)"
    )


class ContinuityBonus(_Model):
    """GZ continuity bonus (连续缴费奖励): after `first_step_after_years` consecutive contribution
    years the ratio and the annual cap rise by `step`, and by another `step` per further year, up to
    `max_increase` of the original standard. `mode` says whether a step multiplies the ratio
    (``relative``: 0.40 → 0.408) or adds percentage points (``points``: 0.40 → 0.42); the cap
    always rises relatively."""

    first_step_after_years: Annotated[int, Field(ge=1)]
    step: Fraction
    max_increase: Fraction
    mode: Literal["relative", "points"]
    applies_to_cap: bool = True


class BasicPolicy(_Model):
    """Basic insurance (基本医保), inpatient: deductible (起付线) and fund ratio (报销比例) by hospital
    level, annual cap (封顶线) per person-year."""

    in_policy_classes: tuple[CatalogueClass, ...]
    deductible_basis: Literal["per_admission", "per_year"]
    levels: tuple[Level, ...]
    deductible: dict[Level, Amount]
    ratio: dict[Level, Fraction | None] = Field(description="null: the source gives no ratio, claims at that level are not priced")
    deductible_reduction: DeductibleReduction | None = None
    annual_cap: Amount
    continuity_bonus: ContinuityBonus | None = None

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if not self.levels:
            raise FieldProblem("levels", "at least one hospital level is required")
        _unique(self.levels, "levels")
        _check_classes(self.in_policy_classes, "in_policy_classes")
        listed = ", ".join(self.levels)
        for table in ("deductible", "ratio"):
            values: dict[LevelKey, Any] = getattr(self, table)
            for level in self.levels:
                if level not in values:
                    raise FieldProblem(f"{table}.{level}", f"missing level {level} (basic.levels lists {listed})")
            for level in values:
                if level not in self.levels:
                    raise FieldProblem(f"{table}.{level}", f"level {level} is not in basic.levels ({listed})")
        return self


def _check_classes(classes: tuple[str, ...], what: str) -> None:
    if not classes:
        raise FieldProblem(what, "at least one catalogue class is required")
    _unique(classes, what)
    if "SELF" in classes:
        raise FieldProblem(f"{what}[{classes.index('SELF')}]", "SELF (全自费) lines are never in policy")


# ---------------------------------------------------------------- condition groups 病种组

_GROUP_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_DIAGNOSIS_PREFIX = re.compile(r"^[A-Za-z](\d{1,2}(\.?[0-9A-Za-z]{0,8})?)?$")


def normalise_code(code: str) -> str:
    """A diagnosis code (ICD-10, as the discharge carries it) compared without case or dots:
    ``"c34.9"`` and ``"C349"`` are the same code."""
    return code.replace(".", "").upper()


def _prefix(value: Any) -> str:
    if not isinstance(value, str) or not _DIAGNOSIS_PREFIX.match(value):
        raise ValueError(f"{value!r} is not an ICD-10 code prefix (a letter, then up to two digits, then more "
                         "characters after an optional dot: \"C\", \"N18\", \"Z51.1\")")
    return value


DiagnosisPrefix = Annotated[str, BeforeValidator(_prefix)]


class ConditionGroup(_Model):
    """A condition group (病种组): the diseases a rule names, as diagnosis code prefixes (ICD-10). A
    claim is in the group when one of its diagnosis codes starts with one of the prefixes (case
    and dots aside). Daqing's critical-illness insurance covers three groups only (三种大病, F001
    L811)."""

    name: str = Field(min_length=1, description="what the source calls it, e.g. 恶性肿瘤放化疗")
    diagnosis_prefixes: tuple[DiagnosisPrefix, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_prefixes(self) -> Self:
        _unique(tuple(normalise_code(p) for p in self.diagnosis_prefixes), "diagnosis_prefixes")
        return self


@lru_cache(maxsize=64)
def _group_index(groups: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[tuple[str, str], ...]:
    """(normalised prefix, group id) pairs, longest prefix first."""
    pairs = [(normalise_code(p), gid) for gid, prefixes in groups for p in prefixes]
    return tuple(sorted(pairs, key=lambda pair: (-len(pair[0]), pair)))


def groups_of_codes(groups: Mapping[str, ConditionGroup], diagnosis_codes: Iterable[str]) -> frozenset[str]:
    """The condition groups (ids) that any of the diagnosis codes falls in."""
    if not groups:
        return frozenset()
    index = _group_index(tuple((gid, g.diagnosis_prefixes) for gid, g in groups.items()))
    found: set[str] = set()
    for code in diagnosis_codes:
        norm = normalise_code(code)
        found.update(gid for prefix, gid in index if norm.startswith(prefix))
    return frozenset(found)


# ------------------------------------------------------------------ catastrophic 大病保险


class Band(_Model):
    """A band (分段) from `lower` up to the next band's lower bound, paid at `ratio`.

    ``lower: null`` marks a bound the source lost; it is a required operator input."""

    lower: Amount | None
    ratio: Fraction


class RatioRange(_Model):
    min: Fraction
    max: Fraction

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min > self.max:
            raise FieldProblem("min", f"min {self.min} is above max {self.max}")
        return self


class OutOfPoolRule(_Model):
    """Care in another pool of the same province: points added to every band (after the poor bonus)."""

    referred_adjustment: Adjustment
    not_referred_adjustment: Adjustment


class OutOfProvinceRule(_Model):
    """Care outside the province: a flat ratio instead of the bands."""

    referred_ratio: Fraction
    not_referred_ratio: Fraction
    poor_bonus_applies: bool = False


class CatastrophicPolicy(_Model):
    """Critical-illness insurance (大病保险): a share of each person-year's accumulated compliant
    self-pay above a threshold (起付线), paid by bands (分段), up to an annual cap (封顶线)."""

    scope_classes: tuple[CatalogueClass, ...]
    excludes_basic_deductible: bool = Field(
        description="the personal part below the basic deductible does not accumulate (Province-X F001 L175)"
    )
    covered_conditions: tuple[str, ...] | None = Field(
        default=None, description=(
            "only claims with a diagnosis in one of these condition groups (the profile's `condition_groups`) "
            "accumulate and are paid (Daqing 三种大病); null = any disease"))
    threshold: Amount
    poor_threshold: Amount | None = None
    poor_categories: tuple[PersonCategory, ...] = ()
    poor_bonus: Fraction = Decimal(0)
    band_base: Literal["above_threshold", "cumulative"]
    bands: tuple[Band, ...] | None
    tender_ratio_range: RatioRange | None = None
    in_province_out_of_pool: OutOfPoolRule | None = None
    out_of_province: OutOfProvinceRule | None = None
    class_prepayment: dict[CatalogueClass, Fraction] = Field(default_factory=dict)
    annual_cap: Amount

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_classes(self.scope_classes, "scope_classes")
        for cls in self.class_prepayment:
            if cls not in self.scope_classes:
                raise FieldProblem(f"class_prepayment.{cls}", f"class {cls} is not in scope_classes")
        if (self.poor_threshold is not None or self.poor_bonus > 0) and not self.poor_categories:
            raise FieldProblem("poor_categories", "a poor threshold or bonus needs the categories it applies to")
        if self.covered_conditions is not None and not self.covered_conditions:
            raise FieldProblem("covered_conditions", "list at least one condition group, or null for any disease")
        self._check_bands()
        return self

    def _check_bands(self) -> None:
        if self.bands is None:
            raise FieldProblem(
                "bands",
                "required operator input not supplied: the source gives no band table (set by tender or lost "
                "in extraction); pass it in load_profile(..., overrides={'catastrophic': {'bands': [...]}})",
            )
        if not self.bands:
            raise FieldProblem("bands", "at least one band is required")
        for i, band in enumerate(self.bands):
            if band.lower is None:
                raise FieldProblem(
                    f"bands[{i}].lower",
                    "band boundary lost in the source and not supplied; it is a required operator input "
                    f"(overrides={{'catastrophic': {{'bands': {{{i}: {{'lower': '...'}}}}}}}})",
                )
        if self.bands[0].lower != 0:
            raise FieldProblem("bands[0].lower", "the first band must start at 0")
        for i in range(1, len(self.bands)):
            lower, previous = self.bands[i].lower, self.bands[i - 1].lower
            assert lower is not None and previous is not None
            if lower == previous:
                raise FieldProblem(f"bands[{i}].lower", f"bands overlap: bands[{i - 1}] also starts at {lower}")
            if lower < previous:
                raise FieldProblem(f"bands[{i}].lower", f"bands must be in ascending order ({lower} < {previous})")
        if self.tender_ratio_range is not None:
            low, high = self.tender_ratio_range.min, self.tender_ratio_range.max
            for i, band in enumerate(self.bands):
                if not low <= band.ratio <= high:
                    raise FieldProblem(f"bands[{i}].ratio", f"ratio {band.ratio} is outside the tender range {low}–{high}")


# ----------------------------------------------------------------- assistance 医疗救助


class AssistanceTier(_Model):
    category: PersonCategory
    ratio: Fraction
    annual_cap: Amount


class AssistancePolicy(_Model):
    """Medical assistance (医疗救助): a ratio of the residual compliant self-pay by category; a person
    in several categories gets the most generous tier; anyone without a tier gets nothing."""

    tiers: tuple[AssistanceTier, ...]

    @model_validator(mode="after")
    def _unique_categories(self) -> Self:
        _unique(tuple(t.category for t in self.tiers), "tiers")
        return self


# ------------------------------------------------------------- enrollment and audit


class EnrollmentPolicy(_Model):
    """When benefits start (待遇享受) and the waiting period (等待期)."""

    insurance_year: Literal["calendar"]
    benefits_start: Literal["next_month_after_payment", "same_month"]
    waiting_period_months: Annotated[int, Field(ge=0)]
    waiting_period_min_gap_months: Annotated[int, Field(ge=1)]
    waiting_period_if_paid_after: Literal["coverage_year_start"] | date


class AuditPolicy(_Model):
    """Parameters of the audit (稽核) rules."""

    split_admission_window_days: Annotated[int, Field(ge=1)]
    overlap_min_nights: Annotated[int, Field(ge=1)]
    max_time_billed_hours_per_day: Annotated[int, Field(ge=1, le=24)]
    duplicate_line_min_count: Annotated[int, Field(ge=2)]
    large_out_of_area_invoice: Amount
    flag_claims_after_death_or_suspension: bool
    flag_concurrent_inpatients_over_beds: bool
    manual_review_sample_rate: Fraction
    reversals_per_hospital_day: Annotated[int, Field(ge=2, description=(
        "so many reversals (冲正) by one hospital in one day (Beijing time) raise an alert"))]
    late_reversal_days: Annotated[int, Field(ge=1, description=(
        "a reversal requested more than so many days after the claim's discharge date raises an alert"))]


# ----------------------------------------------------------------------------- profile


class SchemeVariant(_Model):
    """Layer sections that replace the profile's for one scheme."""

    basic: BasicPolicy | None = None
    catastrophic: CatastrophicPolicy | None = None
    assistance: AssistancePolicy | None = None


LayerPolicy = BasicPolicy | CatastrophicPolicy | AssistancePolicy
_T = TypeVar("_T", BasicPolicy, CatastrophicPolicy, AssistancePolicy)

_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class PolicyProfile(_Model):
    """A validated regional policy profile. Load it with :func:`policy.load_profile`."""

    id: str
    version: Annotated[int, Field(ge=1)]
    region: str = Field(min_length=1)
    effective_from: date
    source: tuple[str, ...] = Field(min_length=1)
    illustrative: tuple[str, ...] = Field(default=(), description="field paths whose values are not in the sources")
    schemes: tuple[str, ...] = Field(min_length=1)
    basic: BasicPolicy | None = None
    catastrophic: CatastrophicPolicy | None = None
    assistance: AssistancePolicy | None = None
    enrollment: EnrollmentPolicy | None = None
    audit: AuditPolicy | None = None
    scheme_variants: dict[str, SchemeVariant] = Field(default_factory=dict)
    condition_groups: dict[str, ConditionGroup] = Field(
        default_factory=dict, description="condition groups (病种组) by id, named by rules such as "
                                          "`catastrophic.covered_conditions`")
    overrides_applied: tuple[str, ...] = Field(default=(), description="paths an operator override set (loader)")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not _ID.match(self.id):
            raise FieldProblem("id", f"{self.id!r} must be lower-case letters, digits and dashes")
        _unique(self.schemes, "schemes")
        for scheme in self.scheme_variants:
            if scheme not in self.schemes:
                raise FieldProblem(f"scheme_variants.{scheme}", f"scheme {scheme!r} is not in schemes")
        for i, scheme in enumerate(self.schemes):
            if not any(self.layer_policy(layer, scheme) for layer in ("basic", "catastrophic", "assistance")):
                raise FieldProblem(f"schemes[{i}]", f"scheme {scheme!r} is listed but no layer section prices it")
        self._check_condition_groups()
        dumped = self.model_dump(mode="python")
        for i, path in enumerate(self.illustrative):
            if not _path_exists(dumped, path):
                raise FieldProblem(f"illustrative[{i}]", f"no such field {path!r}")
        return self

    def _check_condition_groups(self) -> None:
        for gid in self.condition_groups:
            if not _GROUP_ID.match(gid):
                raise FieldProblem(f"condition_groups.{gid}", f"{gid!r} must be lower-case letters, digits and _")
        sections = [("catastrophic", self.catastrophic)] + [
            (f"scheme_variants.{scheme}.catastrophic", variant.catastrophic)
            for scheme, variant in self.scheme_variants.items()]
        defined = ", ".join(self.condition_groups) or "none"
        for where, section in sections:
            for i, gid in enumerate(section.covered_conditions or () if section is not None else ()):
                if gid not in self.condition_groups:
                    raise FieldProblem(f"{where}.covered_conditions[{i}]",
                                       f"no condition group {gid!r} (condition_groups defines: {defined})")

    # -- questions the services ask ------------------------------------------------------

    def condition_groups_of(self, diagnosis_codes: Iterable[str]) -> frozenset[str]:
        """The condition groups (ids) a claim with these diagnosis codes is in."""
        return groups_of_codes(self.condition_groups, diagnosis_codes)

    def prices_scheme(self, scheme: str) -> bool:
        """Does this profile price claims under `scheme` (e.g. ``resident``)? If not: ``NO_POLICY``."""
        return scheme in self.schemes

    def layer_policy(self, layer: Layer, scheme: str) -> LayerPolicy | None:
        """The section pricing `layer` for `scheme`, or None if this profile does not price it."""
        if scheme not in self.schemes:
            return None
        variant = self.scheme_variants.get(scheme)
        if variant is not None and getattr(variant, layer) is not None:
            return getattr(variant, layer)  # type: ignore[no-any-return]
        return getattr(self, layer)  # type: ignore[no-any-return]

    def prices_layer(self, layer: Layer, scheme: str) -> bool:
        return self.layer_policy(layer, scheme) is not None

    def basic_for(self, scheme: str) -> BasicPolicy:
        return self._require("basic", scheme, BasicPolicy)

    def catastrophic_for(self, scheme: str) -> CatastrophicPolicy:
        return self._require("catastrophic", scheme, CatastrophicPolicy)

    def assistance_for(self, scheme: str) -> AssistancePolicy:
        return self._require("assistance", scheme, AssistancePolicy)

    def _require(self, layer: Layer, scheme: str, kind: type[_T]) -> _T:
        if not self.prices_scheme(scheme):
            raise NotPricedError(self.id, f"scheme {scheme!r} is not priced (priced: {', '.join(self.schemes)})")
        section = self.layer_policy(layer, scheme)
        if section is None:
            raise NotPricedError(self.id, f"layer {layer!r} is not priced for scheme {scheme!r}")
        assert isinstance(section, kind)
        return section

    def is_illustrative(self, path: str) -> bool:
        """True if `path` (or a section containing it) is marked illustrative."""
        return any(path == p or path.startswith((p + ".", p + "[")) for p in self.illustrative)


def _path_exists(data: Any, path: str) -> bool:
    node = data
    for name, index in _PATH_PART.findall(path):
        if index:
            if not isinstance(node, (list, tuple)) or int(index) >= len(node):
                return False
            node = node[int(index)]
        elif isinstance(node, dict):
            matches = [k for k in node if str(k) == name]
            if not matches:
                return False
            node = node[matches[0]]
        else:
            return False
    return bool(path)
