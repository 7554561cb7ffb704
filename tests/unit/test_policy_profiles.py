"""Policy profiles as data: every shipped profile loads (with operator inputs where the source lost
them), values are exact Decimals, and a bad profile is refused with the failing field named."""

from __future__ import annotations

import copy
import re
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from policy import (
    POLICIES_DIR,
    NotPricedError,
    PolicyProfile,
    ProfileError,
    available_profiles,
    load_profile,
    parse_profile,
    read_yaml,
)
from policy.vocabulary import CARE_LOCATIONS, CATALOGUE_CLASSES, PERSON_CATEGORIES

# Operator inputs the sources do not give. They are TEST values, not policy numbers:
# Qinzhou lost the lower bounds of its 60% and 70% bands (F001 L1063-L1075);
# Province-X sets its bands by tender inside 50%-75% (F001 L175).
QINZHOU_BOUNDS = {"catastrophic": {"bands": {1: {"lower": "20000"}, 2: {"lower": "40000"}}}}
PROVINCE_X_BANDS = {"catastrophic": {"bands": [{"lower": "0", "ratio": "0.50"}]}}
OPERATOR_INPUTS = {"qinzhou-2015-catastrophic": QINZHOU_BOUNDS, "province-x-catastrophic": PROVINCE_X_BANDS}

SHIPPED = [
    "demo-county", "gz-2009-basic", "zhengzhou-basic", "daqing-2015-catastrophic",
    "qinzhou-2015-catastrophic", "province-x-catastrophic",
]


def demo_data() -> dict[str, Any]:
    return read_yaml((POLICIES_DIR / "demo-county.yaml").read_text(encoding="utf-8"))


def refused(data: dict[str, Any] | None = None, overrides: dict[Any, Any] | None = None) -> ProfileError:
    with pytest.raises(ProfileError) as info:
        parse_profile(data if data is not None else demo_data(), overrides)
    return info.value


# ------------------------------------------------------------------------------- loading


def test_every_shipped_profile_is_available() -> None:
    assert set(SHIPPED) <= set(available_profiles())


@pytest.mark.parametrize("profile_id", SHIPPED)
def test_shipped_profile_loads(profile_id: str) -> None:
    profile = load_profile(profile_id, OPERATOR_INPUTS.get(profile_id))
    assert isinstance(profile, PolicyProfile)
    assert profile.id == profile_id and profile.version >= 1 and profile.source


def test_load_profile_does_not_depend_on_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_profile("demo-county").id == "demo-county"


def test_load_by_path(tmp_path: Path) -> None:
    path = tmp_path / "my-county.yaml"
    path.write_text((POLICIES_DIR / "demo-county.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    assert load_profile(path).id == "demo-county"
    assert load_profile(str(path)).id == "demo-county"


def test_unknown_profile_names_the_available_ones() -> None:
    with pytest.raises(ProfileError, match=r"unknown profile 'atlantis'.*demo-county"):
        load_profile("atlantis")


# ------------------------------------------------------------------- demo-county as data


def test_demo_county_numbers_are_exact_decimals() -> None:
    p = load_profile("demo-county")
    basic = p.basic_for("resident")
    # demo-county.md Layer 1: 40 / 200 / 400 and 60% / 50% / 40%, cap 40,000
    assert basic.deductible == {"1": D("40.00"), "2": D("200.00"), "3": D("400.00")}
    assert basic.ratio == {"1": D("0.60"), "2": D("0.50"), "3": D("0.40")}
    assert basic.annual_cap == D("40000.00")
    assert all(type(v) is D for v in [*basic.deductible.values(), *basic.ratio.values()])
    cat = p.catastrophic_for("resident")
    assert (cat.threshold, cat.poor_threshold, cat.poor_bonus) == (D("6000"), D("3000"), D("0.10"))
    assert [(b.lower, b.ratio) for b in cat.bands or ()] == [
        (D("0"), D("0.50")), (D("20000"), D("0.60")), (D("40000"), D("0.70")), (D("60000"), D("0.80")),
    ]
    assert cat.annual_cap == D("500000")
    assert [(t.category, t.ratio, t.annual_cap) for t in p.assistance_for("resident").tiers] == [
        ("tekun", D("1.00"), D("30000")), ("dibao", D("0.70"), D("30000")),
        ("poverty_registered", D("0.60"), D("30000")),
    ]
    assert p.enrollment is not None and p.enrollment.waiting_period_months == 6
    assert p.audit is not None
    assert p.audit.split_admission_window_days == 15
    assert p.audit.large_out_of_area_invoice == D("20000")
    assert p.audit.manual_review_sample_rate == D("0.05")


def test_demo_county_marks_its_illustrative_numbers() -> None:
    p = load_profile("demo-county")
    assert p.is_illustrative("catastrophic.bands[1].lower")
    assert p.is_illustrative("catastrophic.bands[2].lower")
    assert p.is_illustrative("assistance.tiers[0].ratio")
    assert p.is_illustrative("audit.split_admission_window_days")
    assert p.is_illustrative("audit.reversals_per_hospital_day") and p.is_illustrative("audit.late_reversal_days")
    assert not p.is_illustrative("audit.manual_review_sample_rate")  # 5%, F003 L147
    assert not p.is_illustrative("catastrophic.bands[3].lower")  # 60,000 is in the source
    assert not p.is_illustrative("basic.annual_cap")


def test_every_number_in_demo_county_yaml_has_a_source_comment() -> None:
    number = re.compile(r':\s*(\[?\s*"?-?\d|\{|-\s*\{)|^\s*-\s*\{')
    for line in (POLICIES_DIR / "demo-county.yaml").read_text(encoding="utf-8").splitlines():
        body = line.split("#", 1)[0]
        if number.search(body) and not body.startswith("version:"):
            assert "#" in line, f"no source comment: {line!r}"


def test_yaml_numbers_never_pass_through_float() -> None:
    data = demo_data()
    text = (POLICIES_DIR / "demo-county.yaml").read_text(encoding="utf-8")
    # an unquoted YAML float is read from its text: 0.1 + 0.2 would not be 0.3 as floats
    data = read_yaml(text.replace('poor_bonus: "0.10"', "poor_bonus: 0.1"))
    assert data["catastrophic"]["poor_bonus"] == D("0.1")
    profile = parse_profile(data, {"catastrophic": {"poor_bonus": D("0.1") + D("0.2") - D("0.2")}})
    assert profile.catastrophic_for("resident").poor_bonus == D("0.1")


def test_overrides_are_recorded() -> None:
    p = load_profile("qinzhou-2015-catastrophic", QINZHOU_BOUNDS)
    assert p.overrides_applied == ("catastrophic.bands[1].lower", "catastrophic.bands[2].lower")
    assert load_profile("demo-county").overrides_applied == ()


# ---------------------------------------------------------------- schemes and layers


def test_demo_county_prices_only_resident() -> None:
    p = load_profile("demo-county")
    assert p.prices_scheme("resident")
    assert not p.prices_scheme("employee")
    with pytest.raises(NotPricedError) as info:
        p.basic_for("employee")
    assert info.value.reason_code == "NO_POLICY"


def test_a_profile_with_one_layer_does_not_price_the_others() -> None:
    gz = load_profile("gz-2009-basic")
    assert gz.prices_layer("basic", "urban_resident")
    assert not gz.prices_layer("catastrophic", "urban_resident")
    assert not gz.prices_layer("assistance", "urban_resident")
    with pytest.raises(NotPricedError, match="catastrophic"):
        gz.catastrophic_for("urban_resident")
    qz = load_profile("qinzhou-2015-catastrophic", QINZHOU_BOUNDS)
    assert not qz.prices_layer("basic", "resident") and qz.prices_layer("catastrophic", "resident")


def test_daqing_prices_each_scheme_with_its_own_rules() -> None:
    p = load_profile("daqing-2015-catastrophic")
    urban, ncms = p.catastrophic_for("urban_resident"), p.catastrophic_for("ncms")
    assert urban.threshold == D("18000") and ncms.threshold == D("12443")  # F001 L823, L831
    assert [(b.lower, b.ratio) for b in urban.bands or ()] == [(D("0"), D("0.50")), (D("100000"), D("0.55"))]
    assert [(b.lower, b.ratio) for b in ncms.bands or ()] == [(D("0"), D("0.50"))]
    assert urban.annual_cap == ncms.annual_cap == D("200000")
    assert not p.prices_scheme("resident")


def test_zhengzhou_has_a_community_row_without_a_ratio() -> None:
    basic = load_profile("zhengzhou-basic").basic_for("urban_resident")
    assert basic.levels == ("1", "2", "3", "community")
    assert basic.deductible == {"1": D("300"), "2": D("600"), "3": D("900"), "community": D("200")}
    assert basic.ratio == {"1": D("0.60"), "2": D("0.55"), "3": D("0.50"), "community": None}
    assert basic.annual_cap == D("25000")


# ---------------------------------------------------------------------- bad profiles


def test_required_band_bounds_of_qinzhou_must_be_supplied() -> None:
    with pytest.raises(ProfileError) as info:
        load_profile("qinzhou-2015-catastrophic")
    assert info.value.path == "catastrophic.bands[1].lower"
    assert "catastrophic.bands[1].lower" in str(info.value) and "required operator input" in str(info.value)
    with pytest.raises(ProfileError) as info:
        load_profile("qinzhou-2015-catastrophic", {"catastrophic": {"bands": {1: {"lower": "20000"}}}})
    assert info.value.path == "catastrophic.bands[2].lower"


def test_province_x_bands_set_by_tender_must_be_supplied() -> None:
    with pytest.raises(ProfileError) as info:
        load_profile("province-x-catastrophic")
    assert info.value.path == "catastrophic.bands" and "required operator input" in str(info.value)


def test_province_x_tender_band_outside_50_to_75_percent_is_refused() -> None:
    bands = {"catastrophic": {"bands": [{"lower": "0", "ratio": "0.50"}, {"lower": "50000", "ratio": "0.80"}]}}
    with pytest.raises(ProfileError) as info:
        load_profile("province-x-catastrophic", bands)
    assert info.value.path == "catastrophic.bands[1].ratio" and "tender range" in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "path", "words"),
    [
        ({"basic": {"ratio": {3: "1.20"}}}, "basic.ratio.3", "between 0 and 1"),
        ({"basic": {"ratio": {"3": "40"}}}, "basic.ratio.3", "between 0 and 1"),
        ({"assistance": {"tiers": {1: {"ratio": "-0.10"}}}}, "assistance.tiers[1].ratio", "between 0 and 1"),
        ({"basic": {"deductible": {1: "-40"}}}, "basic.deductible.1", "negative"),
        ({"basic": {"annual_cap": "40000.001"}}, "basic.annual_cap", "two decimal places"),
        ({"catastrophic": {"threshold": "abc"}}, "catastrophic.threshold", "decimal"),
        ({"catastrophic": {"bands": {2: {"lower": "10000"}}}}, "catastrophic.bands[2].lower", "ascending order"),
        ({"catastrophic": {"bands": {2: {"lower": "20000"}}}}, "catastrophic.bands[2].lower", "overlap"),
        ({"catastrophic": {"bands": {0: {"lower": "100"}}}}, "catastrophic.bands[0].lower", "start at 0"),
        ({"catastrophic": {"bands": []}}, "catastrophic.bands", "at least one band"),
        ({"catastrophic": {"bands": {3: {"lower": None}}}}, "catastrophic.bands[3].lower", "required operator input"),
        ({"catastrophic": {"in_province_out_of_pool": {"referred_adjustment": "-5"}}},
         "catastrophic.in_province_out_of_pool.referred_adjustment", "between -1 and 1"),
        ({"catastrophic": {"class_prepayment": {"C": "0.30"}}}, "catastrophic.class_prepayment.C", "not in scope_classes"),
        ({"assistance": {"tiers": {0: {"category": "veteran"}}}}, "assistance.tiers[0].category", ""),
        ({"assistance": {"tiers": {1: {"category": "tekun"}}}}, "assistance.tiers[1]", "duplicate"),
        ({"basic": {"levels": [1, 2, 3, "community"]}}, "basic.deductible.community", "missing level community"),
        ({"basic": {"in_policy_classes": ["A", "SELF"]}}, "basic.in_policy_classes[1]", "never in policy"),
        ({"basic": {"tresholds": "1"}}, "basic.tresholds", "Extra inputs"),
        ({"scheme_variants": {"employee": {"basic": None}}}, "scheme_variants.employee", "not in schemes"),
        ({"illustrative": ["catastrophic.bands[9].lower"]}, "illustrative[0]", "no such field"),
        ({"version": 0}, "version", "greater than or equal to 1"),
        ({"id": "Demo County"}, "id", "lower-case"),
        ({"enrollment": {"waiting_period_months": -1}}, "enrollment.waiting_period_months", ""),
        ({"audit": {"manual_review_sample_rate": "5"}}, "audit.manual_review_sample_rate", "between 0 and 1"),
    ],
)
def test_bad_profile_is_refused_naming_the_field(overrides: dict[str, Any], path: str, words: str) -> None:
    error = refused(overrides=overrides)
    assert error.path == path, str(error)
    assert str(error).startswith(f"{path}: ")
    assert words in str(error)
    assert "demo-county" in str(error)


def test_deductible_table_missing_a_level_is_refused() -> None:
    data = demo_data()
    del data["basic"]["deductible"][3]
    error = refused(data)
    assert error.path == "basic.deductible.3" and "missing level 3" in str(error)
    data = demo_data()
    del data["basic"]["ratio"][1]
    assert refused(data).path == "basic.ratio.1"


def test_a_listed_scheme_that_no_layer_prices_is_refused() -> None:
    data = read_yaml((POLICIES_DIR / "daqing-2015-catastrophic.yaml").read_text(encoding="utf-8"))
    with pytest.raises(ProfileError) as info:
        parse_profile(data, {"schemes": ["urban_resident", "ncms", "resident"]})
    assert info.value.path == "schemes[2]" and "no layer section prices it" in str(info.value)


def test_missing_required_field_is_named() -> None:
    data = demo_data()
    del data["catastrophic"]["threshold"]
    error = refused(data)
    assert error.path == "catastrophic.threshold" and "required" in str(error)


def test_every_problem_is_reported() -> None:
    error = refused(overrides={"basic": {"annual_cap": "-1"}, "audit": {"manual_review_sample_rate": "2"}})
    assert {p for p, _ in error.problems} == {"basic.annual_cap", "audit.manual_review_sample_rate"}


def test_float_in_overrides_is_refused() -> None:
    error = refused(overrides={"catastrophic": {"threshold": 6000.0}})
    assert error.path == "catastrophic.threshold" and "float" in str(error)


def test_override_of_a_missing_list_element_is_refused() -> None:
    error = refused(overrides={"catastrophic": {"bands": {7: {"lower": "1"}}}})
    assert error.path == "catastrophic.bands[7]"


def test_duplicate_yaml_key_is_refused(tmp_path: Path) -> None:
    text = (POLICIES_DIR / "demo-county.yaml").read_text(encoding="utf-8")
    path = tmp_path / "dup.yaml"
    path.write_text(text.replace("version: 1\n", "version: 1\nversion: 2\n"), encoding="utf-8")
    with pytest.raises(ProfileError, match="duplicate key 'version'"):
        load_profile(path)


def test_overrides_do_not_mutate_the_shipped_data() -> None:
    data = demo_data()
    before = copy.deepcopy(data)
    parse_profile(data, {"catastrophic": {"bands": {1: {"lower": "25000"}}}})
    assert data == before


def test_vocabulary_matches_the_wire_contracts() -> None:
    types = pytest.importorskip("contracts.types")
    from typing import get_args

    assert set(get_args(types.CatalogueClass)) == set(CATALOGUE_CLASSES)
    assert set(get_args(types.PersonCategory)) == set(PERSON_CATEGORIES)
    assert set(get_args(types.CareLocation)) == set(CARE_LOCATIONS)
