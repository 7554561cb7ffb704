"""`./medsettle operator what-if`: the command — load the candidate, run (or solve for a parameter),
print actual against candidate, write the CSV. Reading and pricing: `tools.operator.whatif` and
`policy.whatif`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from contracts.identity import mask_identity_number
from policy import PolicyProfile, ProfileError, load_profile, operator_overrides
from policy.loader import nest, path_parts
from policy.whatif import (
    BURDEN_BANDS,
    MONEY_STEP,
    RATIO_STEP,
    RATIOS,
    Iteration,
    Pair,
    Solution,
    Totals,
    WhatIfError,
    WhatIfReport,
    layer_of_parameter,
    parameter_kind,
    report_of,
    solve,
)
from tools.operator.commands import console, errors
from tools.operator.whatif import DEFAULT_WORKERS, Source, load_shards, run_what_if, write_csv


def _m(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _r(value: Decimal | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _points(a: Decimal | None, c: Decimal | None) -> str:
    return "-" if a is None or c is None else f"{(c - a) * 100:+.2f} pts"


def _signed(value: Decimal) -> str:
    return f"{value:+,.2f}"


def overall_table(report: WhatIfReport) -> Table:
    a, c = report.overall.actual, report.overall.candidate
    t = Table(title=f"insurance year {report.year}: actual against candidate {report.candidate_id} "
                    f"v{report.candidate_version}")
    for col in ("", "actual", "candidate", "difference"):
        t.add_column(col, justify="left" if not col else "right")
    for label, fa, fc in (("claims", a.claims, c.claims), ("  settled", a.settled, c.settled),
                          ("  rejected", a.rejected, c.rejected)):
        t.add_row(label, f"{fa:,}", f"{fc:,}", f"{fc - fa:+,}")
    for label, name in (("total cost (settled claims)", "total_cost"), ("in-policy cost", "in_policy"),
                        ("basic insurance 基本医保", "basic"), ("critical illness 大病保险", "catastrophic"),
                        ("medical assistance 医疗救助", "assistance"), ("funds together", "funds"),
                        ("patients' out-of-pocket 个人负担", "patients"),
                        ("  of which rejected claims, in full", "rejected_cost")):
        va, vc = getattr(a, name), getattr(c, name)
        t.add_row(label, _m(va), _m(vc), _signed(vc - va))
    for label, name in (("actual compensation ratio 实际补偿比", "compensation_ratio"),
                        ("in-policy reimbursement ratio 政策范围内报销比例", "in_policy_ratio"),
                        ("critical-illness payment ratio 大病保险实际支付比例", "catastrophic_ratio")):
        va, vc = getattr(a, name), getattr(c, name)
        t.add_row(label, _r(va), _r(vc), _points(va, vc))
    return t


def groups_table(title: str, key: str, groups: dict[str, Pair[Totals]]) -> Table:
    t = Table(title=title)
    for col in (key, "settled (a / c)", "total cost (c)", "funds actual", "funds candidate", "compensation a",
                "compensation c", "in-policy a", "in-policy c"):
        t.add_column(col, justify="left" if col == key else "right")
    for name, pair in groups.items():
        a, c = pair.actual, pair.candidate
        t.add_row(name, f"{a.settled:,} / {c.settled:,}", _m(c.total_cost), _m(a.funds), _m(c.funds),
                  _r(a.compensation_ratio), _r(c.compensation_ratio), _r(a.in_policy_ratio), _r(c.in_policy_ratio))
    return t


def reached_table(report: WhatIfReport) -> Table:
    a, c = report.reached.actual, report.reached.candidate
    t = Table(title=f"persons (person-years of {report.year}) reaching caps and thresholds; out-of-pocket burden")
    for col in ("", "actual", "candidate", "difference"):
        t.add_column(col, justify="left" if not col else "right")
    rows: list[tuple[str, int, int]] = [
        ("persons with claims", a.person_years, c.person_years),
        ("basic annual cap reached", a.basic_cap, c.basic_cap),
        ("critical-illness threshold crossed", a.catastrophic_threshold, c.catastrophic_threshold),
        ("critical-illness annual cap reached", a.catastrophic_cap, c.catastrophic_cap),
        ("assistance annual cap reached", a.assistance_cap, c.assistance_cap)]
    rows += [(f"paying more than {band:,} yuan themselves", a.burden_above[band], c.burden_above[band])
             for band in BURDEN_BANDS]
    for label, va, vc in rows:
        t.add_row(label, f"{va:,}", f"{vc:,}", f"{vc - va:+,}")
    return t


def changed_table(report: WhatIfReport, show_identity: bool) -> Table:
    t = Table(title=f"the claims that change most ({report.changed_claims:,} of {report.claims:,} change)")
    for col in ("claim", "person", "level", "category", "outcome", "funds actual", "funds candidate",
                "patient actual", "patient candidate", "patient change"):
        t.add_column(col, justify="left" if col in ("claim", "person", "level", "category", "outcome") else "right",
                     overflow="fold")
    for ch in report.most_changed:
        a, c = ch.actual, ch.candidate
        outcome = a.outcome if a.outcome == c.outcome else f"{a.outcome} → {c.outcome}"
        who = ch.person_id if show_identity else mask_identity_number(ch.person_id)
        t.add_row(escape(ch.claim_id), who, ch.hospital_level, ch.category, outcome, _m(a.funds), _m(c.funds),
                  _m(a.patients), _m(c.patients), _signed(ch.patients_change))
    return t


def print_report(report: WhatIfReport, live_profiles: dict[str, int], show_identity: bool) -> None:
    live = ", ".join(f"{name} ({n:,} claims)" for name, n in sorted(live_profiles.items())) or "-"
    overrides = ", ".join(report.overrides_applied) or "none"
    console.print(escape(f"what-if over insurance year {report.year}: {report.claims:,} claims of "
                         f"{report.person_years:,} persons; actual priced by {live}; candidate "
                         f"{report.candidate_id} v{report.candidate_version} (operator inputs: {overrides})"))
    console.print(overall_table(report))
    console.print(groups_table("by hospital level (医院级别)", "level", report.by_level))
    console.print(groups_table("by assistance category (the first of tekun, dibao, poverty_registered, orphan, "
                               "disabled, youfu, family_planning; else ordinary)", "category", report.by_category))
    console.print(reached_table(report))
    if report.most_changed:
        console.print(changed_table(report, show_identity))
    diffs = ", ".join(f"{name} {value:,.2f}" for name, value in report.differences.items())
    console.print(f"difference per fund, the sum over claims of |candidate - actual|: {diffs}; "
                  f"{report.changed_claims:,} claim(s) change")
    if report.in_flight:
        console.print(f"{report.in_flight:,} claim(s) had no statement yet (in flight): priced, left out of both sides")


def _timing(claims: int, seconds: float, read_seconds: float, workers: int) -> str:
    rate = claims / seconds if seconds else 0.0
    return (f"re-priced {claims:,} claims in {seconds:.1f}s wall time ({rate:,.0f} claims/s; reading the databases "
            f"{read_seconds:.1f}s, pricing in {workers} process(es) alongside); nothing was written")


def _candidate(profile: str, overlay: str | None, sets: Sequence[str]) -> tuple[PolicyProfile, list[Any]]:
    try:
        layers = operator_overrides(overlay, sets)
        return load_profile(profile, layers), layers
    except ProfileError as exc:
        raise click.UsageError(str(exc)) from None


def parse_target(text: str) -> tuple[str, Decimal]:
    name, sep, value = text.partition("=")
    if not sep or name not in RATIOS:
        raise click.UsageError(f"--target {text!r}: give RATIO=VALUE with RATIO one of {', '.join(RATIOS)} (e.g. "
                               "catastrophic=0.50)")
    try:
        target = Decimal(value)
    except InvalidOperation:
        raise click.UsageError(f"--target {text!r}: {value!r} is not a fraction (0.50 is 50%)") from None
    if not target.is_finite() or not 0 < target <= 1:
        raise click.UsageError(f"--target {text!r}: the ratio is a fraction above 0 and at most 1 (0.50 is 50%)")
    return name, target


def _current(profile: PolicyProfile, parts: list[str | int]) -> Any:
    node: Any = profile.model_dump(mode="python")
    for part in parts:
        if isinstance(part, int):
            node = node[part] if isinstance(node, (list, tuple)) and part < len(node) else None
        elif isinstance(node, dict):
            node = next((v for k, v in node.items() if str(k) == part), None)
        else:
            node = None
        if node is None:
            return None
    return node


async def command(*args: Any, **kwargs: Any) -> int:
    """`operator what-if` (see tools/cli.py); a candidate that cannot price the period is a usage error."""
    try:
        return await _command(*args, **kwargs)
    except WhatIfError as exc:
        raise click.UsageError(str(exc)) from None


async def _command(profile: str, year: int, overlay: str | None, sets: Sequence[str], csv_path: Path | None, top: int,
                  solve_for: str | None, target: str | None, between: tuple[Decimal, Decimal] | None,
                  show_identity: bool, prefix: str, workers: int = DEFAULT_WORKERS) -> int:
    candidate, layers = _candidate(profile, overlay, sets)
    source = Source(prefix)
    if solve_for is None:
        if target is not None or between is not None:
            raise click.UsageError("--target and --between go with --solve")
        run = await run_what_if(source, candidate, year, top=top, workers=workers)
        if not run.report.claims:
            errors.print(f"no claim of insurance year {year} in settlement's database")
            return 1
        print_report(run.report, run.live_profiles, show_identity)
        console.print(_timing(run.report.claims, run.seconds, run.read_seconds, run.workers))
        _write(run.report, csv_path, show_identity)
        return 0
    return await _solve(profile, candidate, layers, source, year, top, solve_for, target, between, csv_path,
                        show_identity, workers)


def _write(report: WhatIfReport, csv_path: Path | None, show_identity: bool) -> None:
    if csv_path is None:
        return
    with csv_path.open("w", encoding="utf-8", newline="") as out:
        rows = write_csv(report, out, show_identity=show_identity)
    console.print(f"wrote {rows:,} rows to {csv_path}")


async def _solve(profile: str, candidate: PolicyProfile, layers: list[Any], source: Source, year: int, top: int,
                 parameter: str, target: str | None, between: tuple[Decimal, Decimal] | None, csv_path: Path | None,
                 show_identity: bool, workers: int) -> int:
    if target is None:
        raise click.UsageError("--solve needs --target RATIO=VALUE (e.g. --target catastrophic=0.50)")
    ratio_name, goal = parse_target(target)
    try:
        parts = path_parts(parameter)
        kind = parameter_kind(parts)
    except ValueError as exc:
        raise click.UsageError(f"--solve: {exc}") from None
    current = _current(candidate, parts)
    step = MONEY_STEP if kind == "money" else RATIO_STEP
    if between is not None:
        low, high = sorted(between)
    elif kind == "money":
        low, high = Decimal(0), max(Decimal(current or 0) * 4, Decimal(10_000)).quantize(step)
    else:
        low, high = Decimal(0), Decimal(1)
    layer = layer_of_parameter(parts)

    def profile_at(value: Decimal) -> PolicyProfile:
        try:
            return load_profile(profile, [*layers, nest(parts, value)])
        except ProfileError as exc:
            raise click.UsageError(f"--solve {parameter} = {value}: the profile refuses it: {exc}") from None

    profile_at(low), profile_at(high)  # both ends are values the profile accepts
    t0 = time.perf_counter()
    shards, stats = await load_shards(source, candidate, year, top=top, workers=workers)
    try:
        if not stats.claims:
            errors.print(f"no claim of insurance year {year} in settlement's database")
            return 1
        shards.run(candidate, "basic")  # the first run prices every layer; later runs keep those before `layer`
        unit = "whole yuan" if kind == "money" else "a tenth of a percentage point (0.001)"
        console.print(escape(f"solving {parameter} (now {current if current is not None else 'unset'}) for the "
                             f"{ratio_name} ratio ≥ {goal} over {low} … {high}, to {unit}; re-pricing the {layer} "
                             "layer and after on each iteration"))

        def evaluate(value: Decimal) -> Decimal | None:
            return shards.run(profile_at(value), layer).overall.candidate.ratio_of(ratio_name)

        def show(it: Iteration) -> None:
            console.print(f"  {parameter} = {it.value}: {ratio_name} ratio {_r(it.ratio)}")

        solution: Solution = solve(evaluate, parameter=parameter, ratio_name=ratio_name, target=goal, low=low,
                                   high=high, step=step, on_iteration=show)
        answer = None if solution.value is None else profile_at(solution.value)
        report = None if answer is None else report_of(shards.run(answer, layer), year, answer, stats.person_years,
                                                       stats.claims)
    finally:
        shards.close()
    seconds = time.perf_counter() - t0
    runs = f"{len(solution.iterations) + 1 + (report is not None)} runs over {stats.claims:,} claims"
    timing = (f"{runs} in {seconds:.1f}s wall time (reading the databases once, {stats.seconds:.1f}s; "
              f"{max(workers, 1)} process(es)); nothing was written")
    if report is None:
        errors.print(escape(f"not solved: {solution.message}"))
        console.print(timing)
        return 1
    console.print(escape(f"answer: {solution.message} ({len(solution.iterations)} iterations, {unit})"))
    print_report(report, dict(stats.live_profiles), show_identity)
    console.print(timing)
    _write(report, csv_path, show_identity)
    return 0
