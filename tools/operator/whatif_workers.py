"""The what-if's worker processes: the period's person-years are independent, so they are priced in
parallel, one shard per process (the 2 cores of this machine; `--workers`). The reader (main
process) sends batches of rows as they stream from the databases, round-robin; each worker builds
its claims (`tools.operator.whatif.years_of`) and either prices them at once, summing into its own
`Aggregate` (one run), or keeps them to price again under one profile after another (solving:
`policy.whatif.Repricer`, only the layers a parameter affects). The aggregates merge.

With 0 or 1 worker everything runs in the main process (`Local`), the same code.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import traceback
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any, Protocol

from policy.profile import PolicyProfile
from policy.vocabulary import Layer
from policy.whatif import Aggregate, PersonYear, Repricer, price_year
from tools.operator.whatif import Row, years_of


class Shard:
    """One worker's share: what it priced so far (one run) or what it holds (to solve)."""

    def __init__(self, profile: PolicyProfile, year: int, top: int, hold: bool) -> None:
        self.profile, self.year, self.top, self.hold = profile, year, top, hold
        self.aggregate = Aggregate(top_n=top)
        self.years: list[PersonYear] = []
        self.claims = self.person_years = 0
        self.repricer: Repricer | None = None

    def rows(self, rows: Sequence[Row]) -> None:
        built = years_of(rows, self.year)
        self.claims += sum(len(py.claims) for py in built)
        self.person_years += len(built)
        if self.hold:
            self.years.extend(built)
            return
        for py in built:
            self.aggregate.add_year(py, price_year(py, self.profile))

    def result(self) -> tuple[Aggregate, int, int]:
        """The aggregate of one run, the person-years and the claims seen."""
        return self.aggregate, self.person_years, self.claims

    def run(self, profile: PolicyProfile, start: Layer) -> Aggregate:
        if self.repricer is None:
            self.repricer = Repricer(self.years, top=self.top)
        return self.repricer.run(profile, start=start)


def _serve(conn: Connection, shard: Shard) -> None:
    while True:
        kind, payload = conn.recv()
        try:
            if kind == "rows":
                shard.rows(payload)
                continue
            if kind == "result":
                conn.send(("ok", shard.result()))
            elif kind == "run":
                conn.send(("ok", shard.run(*payload)))
            elif kind == "stop":
                return
        except Exception:  # noqa: BLE001 - whatever it is, its reason goes back to the command, which stops with it
            conn.send(("error", traceback.format_exc(limit=5)))
            if kind == "rows":
                return


class WorkerError(RuntimeError):
    """A worker process failed; the message holds its reason."""


class Pool(Protocol):
    def send(self, rows: Sequence[Row]) -> None: ...

    def result(self) -> tuple[Aggregate, int, int]: ...

    def run(self, profile: PolicyProfile, start: Layer) -> Aggregate: ...

    def close(self) -> None: ...


class Local:
    """Everything in this process."""

    def __init__(self, profile: PolicyProfile, year: int, top: int, hold: bool) -> None:
        self.shard = Shard(profile, year, top, hold)

    def send(self, rows: Sequence[Row]) -> None:
        self.shard.rows(rows)

    def result(self) -> tuple[Aggregate, int, int]:
        return self.shard.result()

    def run(self, profile: PolicyProfile, start: Layer) -> Aggregate:
        return self.shard.run(profile, start)

    def close(self) -> None:
        return


class Processes:
    """`n` worker processes (forked where the platform can, so nothing is imported again)."""

    def __init__(self, n: int, profile: PolicyProfile, year: int, top: int, hold: bool) -> None:
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        self.top = top
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        for _ in range(n):
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(theirs, Shard(profile, year, top, hold)), daemon=True)
            proc.start()
            theirs.close()
            self.conns.append(ours)
            self.procs.append(proc)
        self.next = 0

    def send(self, rows: Sequence[Row]) -> None:
        """To the next worker (blocks while it is busy with its previous batch: the reading waits)."""
        conn = self.conns[self.next]
        self.next = (self.next + 1) % len(self.conns)
        try:
            conn.send(("rows", list(rows)))
        except (BrokenPipeError, EOFError):
            raise WorkerError(self._failure(conn)) from None

    def _ask(self, message: tuple[str, Any]) -> list[Any]:
        for conn in self.conns:
            conn.send(message)
        answers = []
        for conn in self.conns:
            try:
                status, payload = conn.recv()
            except EOFError:
                raise WorkerError("a worker process ended without an answer") from None
            if status != "ok":
                raise WorkerError(payload)
            answers.append(payload)
        return answers

    def _failure(self, conn: Connection) -> str:
        try:
            if conn.poll(5):
                _, payload = conn.recv()
                return str(payload)
        except (EOFError, OSError):
            pass
        return "a worker process ended"

    def result(self) -> tuple[Aggregate, int, int]:
        total, years, claims = Aggregate(top_n=self.top), 0, 0
        for agg, n_years, n_claims in self._ask(("result", None)):
            total.merge(agg)
            years += n_years
            claims += n_claims
        return total, years, claims

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


def pool(workers: int, profile: PolicyProfile, year: int, top: int, *, hold: bool = False) -> Pool:
    """`workers` processes, or this process alone for 0 or 1."""
    if workers <= 1:
        return Local(profile, year, top, hold)
    return Processes(workers, profile, year, top, hold)
