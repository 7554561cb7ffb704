"""Synthetic discharges (出院结算申请) in the hospitals' format, valid per `contracts/claims.py`.

Where the numbers come from:

* Hospital mix: 49% township (level 1), 41% county (level 2), 9.8% out of the county (F002 L175,
  Fugu 2009), normalised. "Out of the county" is any level-3 provider or one outside the pool.
* Cost per stay: lognormal. In-county stays average 2,163 yuan (F000 L27, 县内次均住院费用); the
  level-1 mean of 1,300 is **illustrative** and the level-2 mean is derived so that the 49:41 mix
  averages 2,163. Out-of-county stays average 15,000 (**illustrative**) with a longer tail, so a
  few stays exceed 50,000 and rare ones 200,000.
* Length of stay: cost / bed-day cost, 264 yuan in county (F000 L27); 900 out of county (illustrative).
* In-policy (A+B) share of the bill: 92.27% in county (F000 L27, 符合补偿比例), 85% out of county
  (illustrative); the rest is C and SELF lines.
* Repeat stays: persons are drawn with a skewed weight (age × a Pareto frailty; illustrative).
  A person's stays never overlap, so the data carries no false audit signals.
* Referred (转诊): 85% of stays outside the pool, 50% at in-pool level 3, 5% otherwise (illustrative).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from contracts.claims import BillLine, DischargeRecorded
from contracts.enrollment import EnrollPerson, RegisterProvider
from contracts.identity import birth_date_of, make_identity_number
from contracts.money import FEN, from_fen
from services.enrollment.domain import EnrollmentRules, coverage_period
from tools.generate.catalogue import (
    ANAESTHESIA,
    BED,
    BED_FEN,
    DIAGNOSES_COMMON,
    DIAGNOSES_MEDIUM,
    DIAGNOSES_SECONDARY,
    DIAGNOSES_SEVERE,
    DRUGS,
    EXAMS,
    HOURLY,
    MATERIALS_IN_POLICY,
    NURSING,
    NURSING_FEN,
    OUT_OF_POLICY,
    REGION_CODE,
    SURGERIES,
    TREATMENTS,
    Item,
)
from tools.generate.population import apportion

HOSPITAL_MIX = {"level1": 49.0, "level2": 41.0, "out_of_county": 9.8}  # F002 L175
COUNTY_MEAN_YUAN = 2_163  # F000 L27
LEVEL1_MEAN_YUAN = 1_300  # illustrative
LEVEL2_MEAN_YUAN = (COUNTY_MEAN_YUAN * 90 - LEVEL1_MEAN_YUAN * 49) / 41  # [DERIVED] ≈ 3,194
OUT_OF_COUNTY_MEAN_YUAN = 15_000  # illustrative
SIGMA = {"level1": 0.9, "level2": 1.0, "out_of_county": 1.25}  # illustrative lognormal spread
MEAN = {"level1": LEVEL1_MEAN_YUAN, "level2": LEVEL2_MEAN_YUAN, "out_of_county": OUT_OF_COUNTY_MEAN_YUAN}
BED_DAY_YUAN = {"level1": 264, "level2": 264, "out_of_county": 900}  # F000 L27; out of county illustrative
IN_POLICY_SHARE = {"level1": 0.9227, "level2": 0.9227, "out_of_county": 0.85}  # F000 L27; illustrative
MIN_STAY_FEN = 15_000  # a stay costs at least 150 yuan (illustrative floor)
MAX_TRIES = 200


def bucket_of(provider: RegisterProvider) -> str:
    """`level1`, `level2` (in the pool) or `out_of_county` (level 3 or outside the pool)."""
    if provider.level == 3 or provider.location != "in_pool":
        return "out_of_county"
    return f"level{provider.level}"


@dataclass
class _Bill:
    """Bill lines under construction: one line per item and day (never a duplicate-billing signal)."""

    admission: date
    discharge: date
    entries: dict[tuple[Item, date], tuple[Decimal, int]] = field(default_factory=dict)

    def day(self, rng: random.Random) -> date:
        return self.admission + timedelta(days=rng.randrange((self.discharge - self.admission).days + 1))

    def add(self, item: Item, quantity: Decimal, when: date, price_fen: int | None = None) -> int:
        """Add `quantity` of `item` on day `when` (merged into that day's line); returns the fen added."""
        old_quantity, price = self.entries.get((item, when), (Decimal(0), price_fen or item.price_fen))
        before = _amount(old_quantity, price)
        self.entries[(item, when)] = (old_quantity + quantity, price)
        return int(_amount(old_quantity + quantity, price) * 100) - int(before * 100)

    def lines(self) -> list[BillLine]:
        return [BillLine(item_code=item.code, item_name=item.name, catalogue_class=item.catalogue_class,
                         quantity=quantity, unit=item.unit, unit_price=from_fen(price),
                         amount=_amount(quantity, price), service_date=when)
                for (item, when), (quantity, price) in sorted(self.entries.items(),
                                                              key=lambda e: (e[0][1], e[0][0].code))]


def _amount(quantity: Decimal, price_fen: int) -> Decimal:
    """quantity × unit price, rounded half-up to the fen (as the contract checks it)."""
    return (quantity * from_fen(price_fen)).quantize(FEN, rounding=ROUND_HALF_UP)


def _spend(rng: random.Random, bill: _Bill, budget: int, items: Sequence[Item], lines: int) -> int:
    """Spend about `budget` fen on `lines` lines of `items`; returns the fen spent."""
    spent = 0
    for left in range(lines, 0, -1):
        remaining = budget - spent
        affordable = [it for it in items if it.price_fen <= remaining]
        if not affordable:
            break
        share = remaining if left == 1 else remaining // left
        sensible = ([it for it in affordable if share // it.price_fen <= 60]
                    or [max(affordable, key=lambda it: it.price_fen)])
        item = rng.choice(sensible)
        quantity = Decimal(max(1, share // item.price_fen))
        if quantity >= 2 and item.kind == "drug" and rng.random() < 0.1:
            quantity -= Decimal("0.5")  # a half dose: exercises rounding half-up to the fen
        spent += bill.add(item, quantity, bill.day(rng))
    return spent


def _bill_lines(rng: random.Random, bucket: str, level: int, total_fen: int, admission: date,
                discharge: date) -> list[BillLine]:
    bill = _Bill(admission, discharge)
    nights = (discharge - admission).days
    spent = bill.add(NURSING, Decimal(max(nights, 1)), admission, NURSING_FEN[level])
    for n in range(max(nights, 1)):  # one bed-day line per night (a same-day stay is billed one day)
        spent += bill.add(BED, Decimal(1), admission + timedelta(days=n), BED_FEN[level])
    out_of_policy = int(total_fen * (1 - IN_POLICY_SHARE[bucket]) * rng.uniform(0.3, 1.7))
    in_policy = max(total_fen - out_of_policy - spent, 0)
    if total_fen >= 800_000 and rng.random() < 0.7:
        surgery = rng.choice([s for s in SURGERIES if s.price_fen * 2 <= in_policy] or [SURGERIES[0]])
        when = min(admission + timedelta(days=1), discharge)
        in_policy -= bill.add(surgery, Decimal(1), when) + bill.add(ANAESTHESIA, Decimal(1), when)
        material = rng.choice(MATERIALS_IN_POLICY)
        if material.price_fen * 3 <= in_policy:
            in_policy -= bill.add(material, Decimal(1), when)
    for hour_item in rng.sample(HOURLY, rng.randint(0, 2)):
        for n in range(min(nights, 3)):
            in_policy -= bill.add(hour_item, Decimal(rng.randint(4, 24)), admission + timedelta(days=n))
    size = max(2, int(math.log10(max(in_policy, 100))) * 2 - 2)
    in_policy -= _spend(rng, bill, in_policy // 4, EXAMS, max(2, size // 3))
    in_policy -= _spend(rng, bill, in_policy // 5, TREATMENTS, 2)
    _spend(rng, bill, in_policy, DRUGS, size)
    _spend(rng, bill, out_of_policy, OUT_OF_POLICY, max(1, size // 4))
    return bill.lines()


def _diagnoses(rng: random.Random, total_fen: int) -> tuple[str, ...]:
    pool = DIAGNOSES_COMMON if total_fen < 300_000 else DIAGNOSES_MEDIUM if total_fen < 2_000_000 else DIAGNOSES_SEVERE
    primary = rng.choice(pool)
    extra = [c for c in rng.sample(DIAGNOSES_SECONDARY, rng.choice((0, 0, 1, 2))) if c != primary]
    return (primary, *extra)


def _total_fen(rng: random.Random, bucket: str) -> int:
    sigma = SIGMA[bucket]
    yuan = rng.lognormvariate(math.log(MEAN[bucket]) - sigma * sigma / 2, sigma)
    return max(MIN_STAY_FEN, min(round(yuan * 100), 300_000_000))


def _person_weight(rng: random.Random, person_id: str, year: int) -> float:
    age = year - birth_date_of(person_id).year
    factor = 1.5 if age < 5 else 0.6 if age < 45 else 1.2 if age < 65 else 2.5
    return factor * rng.paretovariate(2.0)


@dataclass(frozen=True)
class _Person:
    person_id: str
    benefits_from: date


Stay = tuple[str, date, date]
"""(person id, admission date, discharge date)"""


def generate_discharges(count: int, seed: int, year: int, providers: Sequence[RegisterProvider],
                        persons: Sequence[EnrollPerson], *, day: date | None = None, ineligible_share: float = 0.0,
                        rules: EnrollmentRules | None = None,
                        stays: dict[str, list[tuple[date, date]]] | None = None) -> list[DischargeRecorded]:
    """`count` discharges of `year` (all on `day` if given), deterministic for `seed`.

    By default every discharge is for an enrolled person entitled to benefits on the admission date
    (judged with the enrollment `rules`). `ineligible_share` of them are instead for unknown persons
    (valid identity numbers not in the population) or for persons whose benefits have not started.
    `stays`: the persons' stays placed by earlier calls (updated with these), which none of these
    overlaps (see `discharge_chunks`).
    """
    if day is not None and day.year != year:
        raise ValueError(f"day {day.isoformat()} is not in year {year}")
    if not 0.0 <= ineligible_share <= 1.0:
        raise ValueError("ineligible_share must be between 0 and 1")
    rng = random.Random(f"discharges:{seed}")
    rules = rules or EnrollmentRules()
    last_day = day or date(year, 12, 31)
    enrolled = [
        _Person(p.person_id, coverage_period(year, p.payment_date, p.previous_coverage_end, rules).benefits_from)
        for p in persons if p.coverage_year == year]
    weights = [_person_weight(rng, p.person_id, year) for p in enrolled]
    eligible = [(p, w) for p, w in zip(enrolled, weights, strict=True) if p.benefits_from <= last_day]
    cumulative = _cumulative([w for _, w in eligible])
    late = [p for p in enrolled if p.benefits_from > max(date(year, 1, 1), day or date.min)]
    known_ids = {p.person_id for p in persons}
    buckets: dict[str, list[RegisterProvider]] = {}
    for provider in providers:
        buckets.setdefault(bucket_of(provider), []).append(provider)
    if not buckets:
        raise ValueError("the population has no providers")
    labels = [b for b, n in apportion(count, {b: w for b, w in HOSPITAL_MIX.items() if b in buckets}).items()
              for _ in range(n)]
    rng.shuffle(labels)
    bad = set(rng.sample(range(count), round(count * ineligible_share)))
    stays = {} if stays is None else stays
    counters: dict[tuple[str, date], int] = {}
    out = []
    for index, bucket in enumerate(labels):
        provider = rng.choices(buckets[bucket], weights=[p.licensed_beds + 1 for p in buckets[bucket]])[0]
        total = _total_fen(rng, bucket)
        nights = max(1, min(round(total / 100 / BED_DAY_YUAN[bucket] * rng.uniform(0.75, 1.25)), 90))
        for _ in range(MAX_TRIES):
            if index in bad:
                stay = _ineligible_stay(rng, late, known_ids, year, day, nights)
            else:
                stay = _eligible_stay(rng, eligible, cumulative, year, day, nights)
            if stay is not None and not any(a <= stay[2] and stay[1] <= d for a, d in stays.get(stay[0], ())):
                break
        else:
            raise ValueError(f"cannot place discharge {index + 1}: the population is too small for {count} "
                             f"non-overlapping stays{' on ' + day.isoformat() if day else ''}")
        person_id, admission, discharge = stay
        stays.setdefault(person_id, []).append((admission, discharge))
        number = counters[(provider.provider_id, discharge)] = counters.get((provider.provider_id, discharge), 0) + 1
        lines = _bill_lines(rng, bucket, provider.level, total, admission, discharge)
        referred = rng.random() < (0.85 if provider.location != "in_pool" else 0.5 if provider.level == 3 else 0.05)
        out.append(DischargeRecorded(
            hospital_claim_id=f"ZY{discharge:%Y%m%d}-{seed}-{number:05d}", hospital_id=provider.provider_id,
            person_id=person_id, admission_date=admission, discharge_date=discharge, care_location=provider.location,
            referred=referred, diagnosis_codes=_diagnoses(rng, total), lines=tuple(lines),
            total_amount=sum((ln.amount for ln in lines), start=Decimal("0.00"))))
    return sorted(out, key=lambda d: (d.discharge_date, d.hospital_id, d.hospital_claim_id))


def discharge_chunks(count: int, seed: int, year: int, providers: Sequence[RegisterProvider],
                     persons: Sequence[EnrollPerson], *, chunk: int = 10_000,
                     ineligible_share: float = 0.0) -> Iterator[list[DischargeRecorded]]:
    """`count` discharges of `year` as a stream of lists of at most `chunk`, deterministic for `seed`
    (the same arguments always give the same chunks): for a year too large to hold, e.g. a million
    discharges of 5-7 KB each. Chunk `i` is `generate_discharges` with the seed `seed * 100_000 + i`
    (so claim ids never repeat across chunks); only the persons' stays so far are carried from chunk
    to chunk (two dates a stay), so no stay overlaps another of the same person in any chunk."""
    if chunk < 1:
        raise ValueError("chunk must be at least 1")
    stays: dict[str, list[tuple[date, date]]] = {}
    for i, start in enumerate(range(0, count, chunk)):
        yield generate_discharges(min(chunk, count - start), seed * 100_000 + i, year, providers, persons,
                                  ineligible_share=ineligible_share, stays=stays)


def _cumulative(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def _stay(rng: random.Random, first: date, last: date, day: date | None, nights: int) -> tuple[date, date] | None:
    """(admission, discharge) with the admission in [first, last]; discharged on `day` if given."""
    if first > last:
        return None
    if day is not None:
        return day - timedelta(days=min(nights, (day - first).days)), day
    admission = first + timedelta(days=rng.randrange((last - first).days + 1))
    return admission, min(admission + timedelta(days=nights), date(admission.year, 12, 31))


def _eligible_stay(rng: random.Random, eligible: Sequence[tuple[_Person, float]], cumulative: Sequence[float],
                   year: int, day: date | None, nights: int) -> Stay | None:
    if not eligible:
        raise ValueError("no person of the population is entitled to benefits in that period")
    person = rng.choices(eligible, cum_weights=cumulative)[0][0]
    last = day or date(year, 12, 31) - timedelta(days=nights)
    window = _stay(rng, max(person.benefits_from, date(year, 1, 1)), last, day, nights)
    return (person.person_id, *window) if window else None


def _ineligible_stay(rng: random.Random, late: Sequence[_Person], known: set[str], year: int, day: date | None,
                     nights: int) -> Stay | None:
    """An unknown person, or (half the time, when there are any) one whose benefits have not started."""
    first = date(year, 1, 1)
    if late and rng.random() < 0.5:
        person = rng.choice(late)
        last = min(day or date(year, 12, 31), person.benefits_from - timedelta(days=1))
        window = _stay(rng, first, last, day, nights)
        return (person.person_id, *window) if window else None
    birth = date(year - 1, 6, 30) - timedelta(days=rng.randrange(90 * 365))
    person_id = make_identity_number(REGION_CODE, birth, rng.randrange(1000))
    window = _stay(rng, first, day or date(year, 12, 31), day, nights)
    return (person_id, *window) if window and person_id not in known else None
