"""Deterministic synthetic data (for a seed): a county's population and its hospitals' discharges.

    ./medsettle generate population --persons 10000 --providers 50 --seed 7 --year 2026 --out DIR
    ./medsettle generate discharges --count 2000 --seed 7 --year 2026 --population DIR --out FILE.jsonl \\
        [--day 2026-06-15] [--ineligible-share 0.02]

`population` writes `DIR/providers.jsonl` and `DIR/persons.jsonl`, one enrollment command a line:
`{"event_type": "RegisterProvider" | "EnrollPerson", "payload": {...}}`. `discharges` writes one
`DischargeRecorded` payload a line, sorted by discharge date. The same arguments always give the
same bytes. Every random draw comes from `random.Random` seeded with `--seed`; money is built in
integer fen (floats only sample a distribution). The sources of the numbers are in
`tools/generate/population.py` and `tools/generate/discharges.py` (the vocabularies in
`tools/generate/catalogue.py`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

from contracts.claims import DischargeRecorded
from contracts.enrollment import EnrollPerson, RegisterProvider
from contracts.envelope import Contract
from tools.generate.discharges import bucket_of, discharge_chunks, generate_discharges
from tools.generate.population import first_category_counts, generate_population

__all__ = ["discharge_chunks", "discharges_file", "generate_discharges", "generate_population", "population_files", "read_discharges",
           "read_population", "write_discharges", "write_population"]

PROVIDERS_FILE, PERSONS_FILE = "providers.jsonl", "persons.jsonl"


def _command_line(model: Contract) -> str:
    return f'{{"event_type":"{type(model).__name__}","payload":{model.model_dump_json()}}}\n'


def _write(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as out:
        out.writelines(lines)


def write_population(directory: Path, providers: Sequence[RegisterProvider], persons: Sequence[EnrollPerson]) -> None:
    _write(directory / PROVIDERS_FILE, (_command_line(p) for p in providers))
    _write(directory / PERSONS_FILE, (_command_line(p) for p in persons))


def read_population(directory: Path) -> tuple[list[RegisterProvider], list[EnrollPerson]]:
    """The commands written by `write_population` (validated against the contracts)."""
    def read(name: str, model: type[Contract]) -> list:  # type: ignore[type-arg]
        with (directory / name).open(encoding="utf-8") as lines:
            rows = [json.loads(line) for line in lines if line.strip()]
        return [model.model_validate(row["payload"]) for row in rows if row["event_type"] == model.__name__]
    return read(PROVIDERS_FILE, RegisterProvider), read(PERSONS_FILE, EnrollPerson)


def write_discharges(path: Path, discharges: Sequence[DischargeRecorded]) -> None:
    _write(path, (d.model_dump_json() + "\n" for d in discharges))


def read_discharges(path: Path) -> list[DischargeRecorded]:
    with path.open(encoding="utf-8") as lines:
        return [DischargeRecorded.model_validate_json(line) for line in lines if line.strip()]


def population_files(out: Path, persons: int, providers: int, seed: int, year: int) -> str:
    """`generate population`: write the files; returns a one-line summary. ValueError for bad numbers."""
    if persons < 1 or providers < 1:
        raise ValueError("--persons and --providers must be at least 1")
    provider_commands, person_commands = generate_population(persons, providers, seed, year)
    write_population(out, provider_commands, person_commands)
    shares = ", ".join(f"{k} {v}" for k, v in sorted(first_category_counts(person_commands).items()))
    return f"{len(provider_commands)} providers and {len(person_commands)} persons ({shares}) → {out}"


def discharges_file(out: Path, population: Path, count: int, seed: int, year: int, day: date | None,
                    ineligible_share: float) -> str:
    """`generate discharges`: write the file; returns a one-line summary. ValueError for bad numbers."""
    if count < 0:
        raise ValueError("--count must not be negative")
    providers, persons = read_population(population)
    discharges = generate_discharges(count, seed, year, providers, persons, day=day, ineligible_share=ineligible_share)
    write_discharges(out, discharges)
    buckets = {p.provider_id: bucket_of(p) for p in providers}
    mix = {b: sum(buckets[d.hospital_id] == b for d in discharges) for b in ("level1", "level2", "out_of_county")}
    total = sum(d.total_amount for d in discharges)
    return f"{len(discharges)} discharges ({mix}), total {total} yuan → {out}"
