"""Synthetic population of one county: designated providers and enrolled residents (参保登记).

Where the numbers come from:

* Category shares: the exact partition of F000 L7 (461,843 insured residents: 424,886 ordinary,
  21,494 dibao, 7,608 disabled, 1,231 tekun (五保), 1,990 youfu, 4,634 family planning), scaled to
  `--persons` by largest remainder, so each share is exact to one person. The F000 category is the
  first of a person's categories.
* Disability grades: 345 of the 7,608 disabled are urban grade 1–2, the rest rural grade 1–4
  (F000 L7); grades are uniform within those ranges (illustrative).
* `poverty_registered` and `orphan` are not in F000: **illustrative**, 30% of the dibao, tekun and
  disabled also hold `poverty_registered`, and 10% of the tekun are orphans under 18 (孤儿 are
  usually supported as 特困).
* Ages, payment timing (88% of continuing enrollees pay in Sep–Dec before the year, the rest and
  half of the new or lapsed enrollees during the year), continuity (92% continuous, 4% lapsed, 4%
  new), provider levels, beds and pools: **illustrative**.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import TypeVar

from contracts.enrollment import EnrollPerson, RegisterProvider
from contracts.identity import make_identity_number
from contracts.types import CareLocation, PersonCategory
from tools.generate.catalogue import (
    COUNTY_HOSPITALS,
    GIVEN_FEMALE,
    GIVEN_MALE,
    OTHER_POOLS,
    REGION_CODE,
    STREETS,
    SURNAMES,
    TOWNS,
)

K = TypeVar("K")

F000_CATEGORY_COUNTS: dict[PersonCategory, int] = {
    "ordinary": 424_886, "dibao": 21_494, "disabled": 7_608, "tekun": 1_231, "youfu": 1_990, "family_planning": 4_634,
}
"""F000 L7: insured residents by category, an exact partition of 461,843."""
DISABLED_URBAN_SEVERE, DISABLED_TOTAL = 345, 7_608  # F000 L7: urban grade 1–2 among all disabled
POVERTY_REGISTERED_SHARE = 0.30  # illustrative: of dibao, tekun and disabled
ORPHAN_SHARE_OF_TEKUN = 0.10  # illustrative

AGE_BANDS = ((0, 6, 0.07), (7, 17, 0.13), (18, 44, 0.32), (45, 59, 0.24), (60, 74, 0.17), (75, 95, 0.07))
"""(from age, to age, share): illustrative, an ageing rural county."""

PROVIDER_LEVEL_SHARES = {1: 0.70, 2: 0.16, 3: 0.14}  # illustrative; level 1 = township/community centres
LEVEL3_LOCATION_SHARES: dict[CareLocation, float] = {"in_pool": 0.4, "in_province": 0.35, "out_of_province": 0.25}
BEDS = {1: (20, 99), 2: (150, 600), 3: (800, 3000)}  # illustrative licensed beds by level


def apportion(total: int, weights: Mapping[K, float | int]) -> dict[K, int]:
    """Split `total` in proportion to `weights` by largest remainder (ties in key order)."""
    whole = sum(weights.values())
    exact = {k: total * w / whole for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    order = sorted(weights, key=lambda k: -(exact[k] - counts[k]))
    for k in order[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


def _labels(rng: random.Random, counts: Mapping[K, int]) -> list[K]:
    labels = [k for k, n in counts.items() for _ in range(n)]
    rng.shuffle(labels)
    return labels


def _age(rng: random.Random, minor: bool) -> int:
    bands = [b for b in AGE_BANDS if b[1] < 18] if minor else list(AGE_BANDS)
    low, high, _ = rng.choices(bands, weights=[b[2] for b in bands])[0]
    return rng.randint(low, high)


def _birth(rng: random.Random, year: int, age: int) -> date:
    """A birth date giving `age` on 30 June of the year before `year` (so before any payment)."""
    reference = date(year - 1, 6, 30)
    return reference - timedelta(days=rng.randrange(int(age * 365.25), int((age + 1) * 365.25)))


def _name(rng: random.Random, male: bool) -> str:
    chars = GIVEN_MALE if male else GIVEN_FEMALE
    return rng.choice(SURNAMES) + "".join(rng.choice(chars) for _ in range(rng.choice((1, 2, 2))))


def _payment(rng: random.Random, year: int) -> tuple[date, date | None]:
    """(payment date, previous coverage end): continuity and timing are illustrative."""
    draw = rng.random()
    previous: date | None
    if draw < 0.92:
        previous, before_year = date(year - 1, 12, 31), 0.88
    elif draw < 0.96:  # lapsed: last covered until the end of a month in the first half of last year
        previous, before_year = date(year - 1, rng.randint(2, 7), 1) - timedelta(days=1), 0.5
    else:
        previous, before_year = None, 0.5
    if rng.random() < before_year:
        start, days = date(year - 1, 9, 1), 122  # 1 Sep .. 31 Dec
    else:
        start, days = date(year, 1, 2), 303  # 2 Jan .. 31 Oct
    return start + timedelta(days=rng.randrange(days)), previous


def generate_persons(rng: random.Random, count: int, year: int) -> list[EnrollPerson]:
    """`count` EnrollPerson commands for `year`, with unique valid identity numbers."""
    primaries = _labels(rng, apportion(count, F000_CATEGORY_COUNTS))
    seen: set[str] = set()
    persons = []
    for primary in primaries:
        orphan = primary == "tekun" and rng.random() < ORPHAN_SHARE_OF_TEKUN
        birth = _birth(rng, year, _age(rng, minor=orphan))
        person_id = make_identity_number(REGION_CODE, birth, rng.randrange(1000))
        while person_id in seen:
            person_id = make_identity_number(REGION_CODE, birth, rng.randrange(1000))
        seen.add(person_id)
        categories: list[PersonCategory] = [primary]
        if primary in ("dibao", "tekun", "disabled") and rng.random() < POVERTY_REGISTERED_SHARE:
            categories.append("poverty_registered")
        if orphan:
            categories.append("orphan")
        grade = None
        if primary == "disabled":
            grade = rng.randint(1, 2) if rng.random() < DISABLED_URBAN_SEVERE / DISABLED_TOTAL else rng.randint(1, 4)
        paid, previous = _payment(rng, year)
        persons.append(EnrollPerson(
            person_id=person_id, name=_name(rng, male=int(person_id[16]) % 2 == 1), scheme="resident",
            categories=tuple(categories), disability_grade=grade, payment_date=paid, coverage_year=year,
            previous_coverage_end=previous))
    return persons


def _provider_name(level: int, location: CareLocation, index: int, place: str) -> str:
    if level == 1:
        if index < len(TOWNS):
            return f"{TOWNS[index]}{'中心' if index % 4 == 2 else ''}卫生院"
        street = STREETS[(index - len(TOWNS)) % len(STREETS)]
        return f"{street}第{(index - len(TOWNS)) // len(STREETS) + 1}社区卫生服务中心"
    if level == 2:
        return COUNTY_HOSPITALS[index] if index < len(COUNTY_HOSPITALS) else f"县第{index - 1}人民医院"
    return f"{'市' if location == 'in_pool' else place}第{index + 1}人民医院"


def generate_providers(rng: random.Random, count: int, year: int) -> list[RegisterProvider]:
    """`count` designated providers; with 5 or more there is at least one of each level and location."""
    levels = apportion(count, PROVIDER_LEVEL_SHARES)
    if count >= 5:
        for level in (3, 2):
            while levels[level] < (3 if level == 3 else 1):
                levels[level] += 1
                levels[1] -= 1
    locations = apportion(levels[3], LEVEL3_LOCATION_SHARES)
    in_pool: CareLocation = "in_pool"
    slots: list[tuple[int, CareLocation]] = [(1, in_pool)] * levels[1] + [(2, in_pool)] * levels[2]
    slots += [(3, loc) for loc, n in locations.items() for _ in range(n)]
    providers: list[RegisterProvider] = []
    per_kind: dict[tuple[int, CareLocation], int] = {}
    for seq, (level, location) in enumerate(slots, start=1):
        index = per_kind.get((level, location), 0)
        per_kind[(level, location)] = index + 1
        pool, place = (REGION_CODE, "") if location == "in_pool" else OTHER_POOLS[location][index % 3]
        low, high = BEDS[level]
        providers.append(RegisterProvider(
            provider_id=f"H{pool}{seq:05d}", name=_provider_name(level, location, index, place), level=level,
            location=location, pool_code=pool, licensed_beds=rng.randint(low, high),
            agreement_valid_from=date(year - rng.randint(1, 5), 1, 1),
            agreement_valid_to=rng.choice((date(year, 12, 31), date(year + 1, 12, 31), None))))
    return providers


def generate_population(persons: int, providers: int, seed: int, year: int) -> tuple[list[RegisterProvider],
                                                                                     list[EnrollPerson]]:
    """Providers and persons for `year`, deterministic for `seed`."""
    rng = random.Random(f"population:{seed}")
    return generate_providers(rng, providers, year), generate_persons(rng, persons, year)


def first_category_counts(persons: Sequence[EnrollPerson]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in persons:
        counts[p.categories[0]] = counts.get(p.categories[0], 0) + 1
    return counts
