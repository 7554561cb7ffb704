"""The synthetic data generator: deterministic, valid per the contracts, faithful to the seed statistics.

Expected figures come from the seeds: category partition F000 L7, in-county cost per stay 2,163
yuan F000 L27, hospital mix 49% / 41% / 9.8% F002 L175.
"""

import itertools
from collections import Counter
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from contracts import DischargeRecorded, EnrollPerson, RegisterProvider
from contracts.identity import birth_date_of, validate_identity_number
from policy.eligibility import Eligible, eligibility
from services.enrollment.domain import Accepted, Registry
from tools import cli
from tools.generate import (
    discharge_chunks,
    generate_discharges,
    generate_population,
    read_discharges,
    read_population,
)

YEAR = 2026
TODAY = date(2026, 11, 22)
F000 = {"ordinary": 424_886, "dibao": 21_494, "disabled": 7_608, "tekun": 1_231, "youfu": 1_990,
        "family_planning": 4_634}
F000_TOTAL = 461_843


def main(args: list[str]) -> int:
    """`medsettle generate ARGS` (the command line, in this process)."""
    return cli.main(["generate", *args])


@pytest.fixture(scope="module")
def population() -> tuple[list[RegisterProvider], list[EnrollPerson]]:
    return generate_population(10_000, 50, seed=7, year=YEAR)


@pytest.fixture(scope="module")
def registry(population) -> Registry:
    reg = Registry()
    providers, persons = population
    for i, command in enumerate([*providers, *persons]):
        assert isinstance(reg.handle(command, f"e{i}", today=TODAY), Accepted)
    return reg


@pytest.fixture(scope="module")
def discharges(population) -> list[DischargeRecorded]:
    providers, persons = population
    return generate_discharges(8_000, seed=7, year=YEAR, providers=providers, persons=persons)


def bucket(provider: RegisterProvider) -> str:
    return "out_of_county" if provider.level == 3 or provider.location != "in_pool" else f"level{provider.level}"


# ------------------------------------------------------------ determinism and the CLI


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    for run in ("a", "b"):
        assert main(["population", "--persons", "500", "--providers", "12", "--seed", "3", "--year", "2026",
                     "--out", str(tmp_path / run)]) == 0
        assert main(["discharges", "--count", "150", "--seed", "3", "--year", "2026", "--population",
                     str(tmp_path / run), "--out", str(tmp_path / run / "d.jsonl"), "--day", "2026-06-15"]) == 0
    for name in ("providers.jsonl", "persons.jsonl", "d.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert main(["population", "--persons", "500", "--providers", "12", "--seed", "4", "--year", "2026",
                 "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "persons.jsonl").read_bytes() != (tmp_path / "a" / "persons.jsonl").read_bytes()


def test_files_round_trip(tmp_path: Path) -> None:
    assert main(["population", "--persons", "300", "--providers", "8", "--seed", "1", "--out", str(tmp_path)]) == 0
    first = (tmp_path / "persons.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith('{"event_type":"EnrollPerson","payload":{"person_id":')
    providers, persons = read_population(tmp_path)
    assert (len(providers), len(persons)) == (8, 300)
    assert main(["discharges", "--count", "40", "--population", str(tmp_path), "--out", str(tmp_path / "d.jsonl"),
                 "--day", "2026-03-02"]) == 0
    assert {d.discharge_date for d in read_discharges(tmp_path / "d.jsonl")} == {date(2026, 3, 2)}


def test_a_day_outside_the_year_is_an_error(tmp_path: Path, capsys) -> None:
    main(["population", "--persons", "50", "--providers", "5", "--out", str(tmp_path)])
    assert main(["discharges", "--count", "5", "--year", "2026", "--population", str(tmp_path),
                 "--out", str(tmp_path / "d.jsonl"), "--day", "2027-01-05"]) == 2
    assert "not in year 2026" in capsys.readouterr().err


# ------------------------------------------------------------ population


def test_category_shares_follow_f000(population) -> None:
    _, persons = population
    counts = Counter(p.categories[0] for p in persons)
    assert sum(counts.values()) == 10_000
    for category, count in F000.items():
        assert abs(counts[category] / 10_000 - count / F000_TOTAL) <= 1 / 10_000, category


def test_illustrative_extra_categories_are_sprinkled(population) -> None:
    _, persons = population
    extra = Counter(c for p in persons for c in p.categories[1:])
    poor = sum(p.categories[0] in ("dibao", "tekun", "disabled") for p in persons)
    assert abs(extra["poverty_registered"] - 0.30 * poor) < 50  # illustrative 30% of them (generate_population)
    assert all(p.categories[0] in ("dibao", "tekun", "disabled")
               for p in persons if "poverty_registered" in p.categories)
    assert extra["orphan"] > 0
    assert all(YEAR - birth_date_of(p.person_id).year <= 18 for p in persons if "orphan" in p.categories)


def test_disability_grades(population) -> None:
    _, persons = population
    for p in persons:
        if "disabled" in p.categories:
            assert p.disability_grade in (1, 2, 3, 4)
        else:
            assert p.disability_grade is None


def test_identity_numbers_valid_unique_one_county(population) -> None:
    _, persons = population
    ids = [p.person_id for p in persons]
    assert len(set(ids)) == len(ids)
    assert all(validate_identity_number(i, today=TODAY) is None for i in ids)
    assert {i[:6] for i in ids} == {"500240"}
    ages = [YEAR - birth_date_of(i).year for i in ids]
    assert min(ages) <= 2 and max(ages) >= 80


def test_payments_mostly_before_the_year(population, registry) -> None:
    _, persons = population
    before = sum(p.payment_date < date(YEAR, 1, 1) for p in persons) / len(persons)
    assert 0.7 < before < 0.95
    assert all(p.coverage_year == YEAR and p.payment_date <= date(YEAR, 12, 31) for p in persons)
    waiting = sum(s.coverage[0].waiting_period for s in registry.persons.values())
    assert 0 < waiting < 0.2 * len(persons)


def test_providers(population, registry) -> None:
    providers, _ = population
    assert len({p.provider_id for p in providers}) == len(providers) == len(registry.providers)
    levels = Counter(p.level for p in providers)
    assert levels[1] > len(providers) / 2 and levels[2] >= 1 and levels[3] >= 1
    locations = Counter(p.location for p in providers)
    assert locations["in_pool"] > len(providers) / 2 and locations["in_province"] >= 1
    assert locations["out_of_province"] >= 1
    for p in providers:
        assert p.agreement_valid_from <= date(YEAR, 1, 1)
        assert p.agreement_valid_to is None or p.agreement_valid_to >= date(YEAR, 12, 31)
        assert p.licensed_beds > 0


# ------------------------------------------------------------ discharges


def test_every_discharge_validates(discharges) -> None:
    for d in discharges:
        assert DischargeRecorded.model_validate_json(d.model_dump_json()) == d
        assert d.admission_date <= d.discharge_date and d.discharge_date.year == YEAR
        assert d.total_amount == sum(line.amount for line in d.lines)
        for line in d.lines:
            assert line.amount == (line.quantity * line.unit_price).quantize(Decimal("0.01"), ROUND_HALF_UP)
            assert d.admission_date <= line.service_date <= d.discharge_date


def test_claim_ids_unique_per_hospital(discharges) -> None:
    assert len({d.claim_id for d in discharges}) == len(discharges)


def test_every_discharge_is_for_a_person_entitled_on_admission(discharges, registry) -> None:
    for d in discharges:
        assert isinstance(eligibility(registry.persons.get(d.person_id), d.admission_date), Eligible)


def test_stays_of_one_person_do_not_overlap_and_some_repeat(discharges) -> None:
    by_person: dict[str, list[DischargeRecorded]] = {}
    for d in discharges:
        by_person.setdefault(d.person_id, []).append(d)
    assert any(len(stays) >= 3 for stays in by_person.values())
    for stays in by_person.values():
        stays.sort(key=lambda d: d.admission_date)
        for a, b in itertools.pairwise(stays):
            assert a.discharge_date < b.admission_date


def test_chunks_are_a_deterministic_stream_without_overlaps_or_repeated_claims() -> None:
    providers, persons = generate_population(300, 10, seed=3, year=YEAR)

    def stream() -> list[list[DischargeRecorded]]:
        return list(discharge_chunks(650, 3, YEAR, providers, persons, chunk=200))
    chunks = stream()
    assert [len(c) for c in chunks] == [200, 200, 200, 50]
    assert chunks == stream()
    assert chunks[1] == generate_discharges(200, 300_001, YEAR, providers, persons, stays={
        d.person_id: [(s.admission_date, s.discharge_date) for s in chunks[0] if s.person_id == d.person_id]
        for d in chunks[0]})
    discharges = [d for c in chunks for d in c]
    assert len({d.claim_id for d in discharges}) == len(discharges)
    by_person: dict[str, list[DischargeRecorded]] = {}
    for d in discharges:
        by_person.setdefault(d.person_id, []).append(d)
    for stays in by_person.values():
        stays.sort(key=lambda d: d.admission_date)
        for a, b in itertools.pairwise(stays):
            assert a.discharge_date < b.admission_date


def test_hospital_mix_follows_fugu(population, discharges) -> None:
    providers = {p.provider_id: p for p in population[0]}
    mix = Counter(bucket(providers[d.hospital_id]) for d in discharges)
    for name, share in (("level1", 49 / 99.8), ("level2", 41 / 99.8), ("out_of_county", 9.8 / 99.8)):
        assert abs(mix[name] / len(discharges) - share) < 0.01, name


def test_care_location_and_referral(population, discharges) -> None:
    providers = {p.provider_id: p for p in population[0]}
    assert all(d.care_location == providers[d.hospital_id].location for d in discharges)
    away = [d for d in discharges if d.care_location != "in_pool"]
    assert away and sum(d.referred for d in away) / len(away) > 0.6
    home = [d for d in discharges if providers[d.hospital_id].level < 3]
    assert sum(d.referred for d in home) / len(home) < 0.15


def test_mean_cost_in_county_and_the_long_tail(population, discharges) -> None:
    providers = {p.provider_id: p for p in population[0]}
    county = [d.total_amount for d in discharges if bucket(providers[d.hospital_id]) != "out_of_county"]
    mean = sum(county) / len(county)
    assert abs(mean - 2163) / 2163 < 0.06, mean
    totals = [d.total_amount for d in discharges]
    over_50k = sum(t > 50_000 for t in totals) / len(totals)
    assert 0 < over_50k < 0.03
    assert sum(t > 200_000 for t in totals) / len(totals) < 0.005


def test_catalogue_classes(discharges) -> None:
    amounts: Counter[str] = Counter()
    for d in discharges:
        for line in d.lines:
            amounts[line.catalogue_class] += line.amount
    total = sum(amounts.values())
    assert all(amounts[c] > 0 for c in ("A", "B", "C", "SELF"))
    assert (amounts["A"] + amounts["B"]) / total > Decimal("0.85")
    assert all(d.diagnosis_codes and all(len(c) >= 3 for c in d.diagnosis_codes) for d in discharges)


def test_generated_day_and_ineligible_share(population, registry) -> None:
    providers, persons = population
    day = date(YEAR, 6, 15)
    batch = generate_discharges(400, seed=11, year=YEAR, providers=providers, persons=persons, day=day,
                                ineligible_share=0.1)
    assert {d.discharge_date for d in batch} == {day}
    verdicts = Counter(type(eligibility(registry.persons.get(d.person_id), d.admission_date)).__name__
                       for d in batch)
    assert verdicts["Ineligible"] == 40
    unknown = sum(d.person_id not in registry.persons for d in batch)
    assert 0 < unknown < 40
    assert all(validate_identity_number(d.person_id, today=TODAY) is None for d in batch)
