"""Deterministic synthetic data (for a seed): a county's population and its hospitals' discharges.

    python -m tools.generate population --persons 10000 --providers 50 --seed 7 --year 2026 --out DIR
    python -m tools.generate discharges --count 2000 --seed 7 --year 2026 --population DIR --out FILE.jsonl \\
        [--day 2026-06-15] [--ineligible-share 0.02]

`population` writes `DIR/providers.jsonl` and `DIR/persons.jsonl`, one enrollment command a line:
`{"event_type": "RegisterProvider" | "EnrollPerson", "payload": {...}}`. `discharges` writes one
`DischargeRecorded` payload a line, sorted by discharge date. The same arguments always give the
same bytes. Every random draw comes from `random.Random` seeded with `--seed`; money is built in
integer fen (floats only sample a distribution). The sources of the numbers are in
`tools/generate_population.py` and `tools/generate_discharges.py`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

from contracts.claims import DischargeRecorded
from contracts.enrollment import EnrollPerson, RegisterProvider
from contracts.envelope import Contract
from tools.generate_discharges import bucket_of, generate_discharges
from tools.generate_population import first_category_counts, generate_population

__all__ = ["generate_discharges", "generate_population", "main", "read_discharges", "read_population",
           "write_discharges", "write_population"]

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tools.generate", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    pop = sub.add_parser("population", help="providers.jsonl and persons.jsonl (enrollment commands)")
    pop.add_argument("--persons", type=int, default=10_000)
    pop.add_argument("--providers", type=int, default=50)
    pop.add_argument("--seed", type=int, default=7)
    pop.add_argument("--year", type=int, default=2026, help="coverage year")
    pop.add_argument("--out", type=Path, required=True, help="output directory")
    dis = sub.add_parser("discharges", help="DischargeRecorded payloads, one a line")
    dis.add_argument("--count", type=int, default=2_000)
    dis.add_argument("--seed", type=int, default=7)
    dis.add_argument("--year", type=int, default=2026)
    dis.add_argument("--population", type=Path, required=True, help="directory written by `population`")
    dis.add_argument("--out", type=Path, required=True, help="output .jsonl file")
    dis.add_argument("--day", type=date.fromisoformat, default=None, help="all discharges on this day (YYYY-MM-DD)")
    dis.add_argument("--ineligible-share", type=float, default=0.0,
                     help="share of discharges for unknown persons or persons whose benefits have not started")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "population":
            if args.persons < 1 or args.providers < 1:
                raise ValueError("--persons and --providers must be at least 1")
            providers, persons = generate_population(args.persons, args.providers, args.seed, args.year)
            write_population(args.out, providers, persons)
            shares = ", ".join(f"{k} {v}" for k, v in sorted(first_category_counts(persons).items()))
            print(f"{len(providers)} providers and {len(persons)} persons ({shares}) → {args.out}", file=sys.stderr)
        else:
            if args.count < 0:
                raise ValueError("--count must not be negative")
            providers, persons = read_population(args.population)
            discharges = generate_discharges(args.count, args.seed, args.year, providers, persons, day=args.day,
                                             ineligible_share=args.ineligible_share)
            write_discharges(args.out, discharges)
            buckets = {p.provider_id: bucket_of(p) for p in providers}
            mix = {b: sum(buckets[d.hospital_id] == b for d in discharges)
                   for b in ("level1", "level2", "out_of_county")}
            total = sum(d.total_amount for d in discharges)
            print(f"{len(discharges)} discharges ({mix}), total {total} yuan → {args.out}", file=sys.stderr)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
