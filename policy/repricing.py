"""Re-pricing a person-year (重新结算), pure.

The claims of one person's insurance year are priced in the order they first arrived (their
`position`). Each layer's year state (its accumulators) after a claim depends on every earlier
claim, so when a claim changes — corrected, reversed, or sent again after its reversal — it and
every later claim are priced again, starting from the year state after the last unchanged claim
before it. Each claim whose result changes gets a new revision; claims before the change and
claims of other years are never touched.

`refold` is that fold for any layer: the layer supplies `price` (its pure decision on one claim,
given the year state before it and the current claims before it) and `same` (whether two results
are the same settlement). Every layer service runs it (`runtime.claim_layer`), and so do the
property tests against a clean run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Generic, Literal, TypeVar

S = TypeVar("S")
"""A layer's year state."""
R = TypeVar("R")
"""A layer's result for one claim."""
C = TypeVar("C")
"""Why a claim changed (`contracts.settlement.Cause`)."""

Status = Literal["current", "reversed"]


@dataclass
class Entry(Generic[R, S]):
    """One claim in a layer's person-year: where it stands in the order, whether it counts, its
    latest revision and result, and the year state before and after it."""

    claim_id: str
    position: int
    status: Status
    revision: int
    """0 for a claim never priced yet, then +1 for every revision"""
    input_json: str
    """the layer's latest input for the claim (the contract, as JSON)"""
    result: R | None
    """the latest result (None for a claim never priced yet, and for a reversed claim)"""
    year_before: S
    year_after: S

    @property
    def current(self) -> bool:
        return self.status == "current"


@dataclass(frozen=True)
class Revision(Generic[R, S, C]):
    """A claim whose settlement changed: its entry after the change (a copy), the result it replaces,
    and why."""

    entry: Entry[R, S]
    previous: R | None
    cause: C | None
    """None for a claim's first settlement"""

    @property
    def reversed(self) -> bool:
        return not self.entry.current


Price = Callable[[Entry[R, S], S, Sequence[Entry[R, S]]], tuple[R, S]]
"""(entry, year state before it, the current entries before it) → (result, year state after it)"""


def refold(entries: Sequence[Entry[R, S]], start: int, zero: S, price: Price[R, S],
           same: Callable[[R, R], bool], touched: Mapping[str, C | None]) -> tuple[list[Revision[R, S, C]], S]:
    """Price again, in position order, every entry at or after position `start` (entries before it
    keep their results and year states). `touched` holds the entries whose input or status
    changed, with the cause of the change (None for a new claim). Returns the revisions — a
    touched entry always gets one; any other whose result differs gets one with the cause of the
    latest touched entry before it — and the year state after the last current entry. Entries are
    updated in place."""
    state = zero
    earlier: list[Entry[R, S]] = []
    revisions: list[Revision[R, S, C]] = []
    cause: C | None = None
    for entry in sorted(entries, key=lambda e: (e.position, e.claim_id)):
        if entry.position < start:
            if entry.current:
                state = entry.year_after
                earlier.append(entry)
            continue
        is_touched = entry.claim_id in touched
        if is_touched and touched[entry.claim_id] is not None:
            cause = touched[entry.claim_id]
        previous = entry.result
        entry.year_before = state
        if not entry.current:
            entry.year_after = state
            if is_touched:
                entry.result = None
                entry.revision += 1
                revisions.append(Revision(replace(entry), previous, touched[entry.claim_id]))
            continue
        result, after = price(entry, state, earlier)
        entry.year_after = after
        if is_touched or previous is None or not same(result, previous):
            entry.result = result
            entry.revision += 1
            why = touched[entry.claim_id] if is_touched else cause
            revisions.append(Revision(replace(entry), previous, why))
        state = after
        earlier.append(entry)
    return revisions, state


def next_position(entries: Sequence[Entry[R, S]]) -> int:
    """Where a new claim goes: after every claim of its person-year."""
    return max((e.position for e in entries), default=0) + 1
