"""The what-if's worker processes: the period's person-years are independent, so each worker reads
and prices its own share of the persons (`Shard`: a hash of the person id), the 2 cores of this
machine by default (`--workers`). The command exports one snapshot of each layer database
(`pg_export_snapshot`) and every worker imports it (`SET TRANSACTION SNAPSHOT`), so all of them read
the very same state, as one reader would; no row crosses a process boundary, only the sums.

A worker either prices its claims as they stream in, summing into its own `Aggregate` (one run),
or keeps them to price again under one profile after another (solving: `policy.whatif.Repricer`,
only the layers a parameter affects). The aggregates merge. With 0 or 1 worker everything runs in
the command's own process (`Local`), the same code.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import traceback
from multiprocessing.connection import Connection
from typing import Any, Protocol

from policy.profile import PolicyProfile
from policy.vocabulary import Layer
from policy.whatif import Aggregate, PersonYear, Repricer, WhatIfError, price_year
from tools.operator.whatif import Needs, ReadStats, Shard, Source, read_rows, years_of


class Holding:
    """One worker's claims: what it priced so far (one run) or what it keeps (to solve)."""

    def __init__(self, profile: PolicyProfile, year: int, top: int, hold: bool) -> None:
        self.profile, self.year, self.top, self.hold = profile, year, top, hold
        self.aggregate = Aggregate(top_n=top)
        self.years: list[PersonYear] = []
        self.repricer: Repricer | None = None
        self.stats = ReadStats()

    async def load(self, source: Source, shard: Shard, snapshots: dict[str, str] | None) -> ReadStats:
        async for rows in read_rows(source, self.year, Needs.of(self.profile), self.stats, shard=shard,
                                    snapshots=snapshots):
            built = years_of(rows, self.year)
            if self.hold:
                self.years.extend(built)
                continue
            for py in built:
                self.aggregate.add_year(py, price_year(py, self.profile))
        return self.stats

    def result(self) -> Aggregate:
        return self.aggregate

    def run(self, profile: PolicyProfile, start: Layer) -> Aggregate:
        if self.repricer is None:
            self.repricer = Repricer(self.years, top=self.top)
        return self.repricer.run(profile, start=start)


def _serve(conn: Connection, holding: Holding, source: Source, shard: Shard) -> None:
    """A worker: wait for the snapshots, read and price its shard, then answer until told to stop."""
    while True:
        kind, payload = conn.recv()
        try:
            if kind == "load":
                conn.send(("ok", asyncio.run(holding.load(source, shard, payload))))
            elif kind == "result":
                conn.send(("ok", holding.result()))
            elif kind == "run":
                conn.send(("ok", holding.run(*payload)))
            else:
                return
        except WhatIfError as exc:
            conn.send(("refused", str(exc)))
        except Exception:  # noqa: BLE001 - whatever it is, its reason goes back to the command, which stops with it
            conn.send(("error", traceback.format_exc(limit=6)))


class WorkerError(RuntimeError):
    """A worker process failed; the message holds its reason."""


class Pool(Protocol):
    workers: int

    async def load(self, source: Source) -> ReadStats:
        """Read (and, for one run, price) the period; what the reading saw, summed over the workers."""
        ...

    def result(self) -> Aggregate: ...

    def run(self, profile: PolicyProfile, start: Layer) -> Aggregate: ...

    def close(self) -> None: ...


class Local:
    """Everything in the command's own process."""

    workers = 1

    def __init__(self, source: Source, profile: PolicyProfile, year: int, top: int, hold: bool) -> None:
        self.source = source
        self.holding = Holding(profile, year, top, hold)

    async def load(self, source: Source) -> ReadStats:
        return await self.holding.load(source, Shard(), None)

    def result(self) -> Aggregate:
        return self.holding.result()

    def run(self, profile: PolicyProfile, start: Layer) -> Aggregate:
        return self.holding.run(profile, start)

    def close(self) -> None:
        return


class Processes:
    """`n` worker processes, started before any connection is opened (forked where the platform can,
    so nothing is imported again)."""

    def __init__(self, n: int, source: Source, profile: PolicyProfile, year: int, top: int, hold: bool) -> None:
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        self.workers, self.top = n, top
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        for index in range(n):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(theirs, Holding(profile, year, top, hold), source,
                                                    Shard(index, n)), daemon=True)
            proc.start()
            theirs.close()
            self.conns.append(ours)
            self.procs.append(proc)

    def _answers(self) -> list[Any]:
        answers = []
        for conn in self.conns:
            try:
                status, payload = conn.recv()
            except EOFError:
                raise WorkerError("a worker process ended without an answer") from None
            if status == "refused":
                raise WhatIfError(payload)
            if status != "ok":
                raise WorkerError(payload)
            answers.append(payload)
        return answers

    def _ask(self, message: tuple[str, Any]) -> list[Any]:
        for conn in self.conns:
            conn.send(message)
        return self._answers()

    async def load(self, source: Source) -> ReadStats:
        from tools.operator.whatif import exported_snapshots

        async with exported_snapshots(source) as snapshots:  # held until every worker has read its shard
            for conn in self.conns:
                conn.send(("load", snapshots))
            parts: list[ReadStats] = await asyncio.to_thread(self._answers)
        total = ReadStats()
        for part in parts:
            total.live_profiles.update(part.live_profiles)
            total.claims += part.claims
            total.person_years += part.person_years
            total.seconds = max(total.seconds, part.seconds)
        return total

    def result(self) -> Aggregate:
        total = Aggregate(top_n=self.top)
        for agg in self._ask(("result", None)):
            total.merge(agg)
        return total

    def run(self, profile: PolicyProfile, start: Layer) -> Aggregate:
        total = Aggregate(top_n=self.top)
        for agg in self._ask(("run", (profile, start))):
            total.merge(agg)
        return total

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(BrokenPipeError, OSError):
                conn.send(("stop", None))
            conn.close()
        for proc in self.procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()


def pool(workers: int, source: Source, profile: PolicyProfile, year: int, top: int, *, hold: bool = False) -> Pool:
    """`workers` processes, or the command's own process for 0 or 1."""
    if workers <= 1:
        return Local(source, profile, year, top, hold)
    return Processes(workers, source, profile, year, top, hold)
