"""Throughput of the pure one-stop calculation (all three layers, no I/O) on this machine.

    .venv/bin/python bench/calculators.py [--claims 50000]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policy import load_profile
from policy.one_stop import OneStopClaim, OneStopYearState, settle_one_stop
from tools.generate import generate_discharges, generate_population

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--claims", type=int, default=50_000)
    n = ap.parse_args().claims
    profile = load_profile("demo-county")
    providers, persons = generate_population(20_000, 50, seed=1, year=2026)
    levels = {p.provider_id: p.level for p in providers}
    cats = {p.person_id: frozenset(p.categories) for p in persons}
    stream = generate_discharges(n, seed=1, year=2026, providers=providers, persons=persons)
    claims = []
    for d in stream:
        by_class: dict[str, Decimal] = defaultdict(lambda: Decimal(0))
        for line in d.lines:
            by_class[line.catalogue_class] += line.amount
        claims.append((d.person_id, OneStopClaim(claim_id=d.claim_id, scheme="resident",
                                                 hospital_level=levels[d.hospital_id], amounts_by_class=dict(by_class),
                                                 categories=cats[d.person_id], care_location=d.care_location,
                                                 referred=d.referred)))
    years: dict[str, OneStopYearState] = defaultdict(OneStopYearState)
    t0 = time.perf_counter()
    for person, claim in claims:
        result = settle_one_stop(claim, profile, years[person])
        years[person] = result.year_state_after
    dt = time.perf_counter() - t0
    print(f"{n:,} claims through basic + critical illness + assistance in {dt:.2f}s: {n / dt:,.0f} claims/s (one core)")
