"""The batch handler every settlement layer shares (basic, critical illness, assistance).

For a batch of inputs it: keeps the inputs never processed (by event id, so a replay or a
redelivery changes nothing), loads the claims of the persons they concern, lets the layer say
what each input does to its claim (`ClaimLayer.change`: a new claim, a new input, a reversal,
nothing, or a refusal), and re-prices every person-year that changed from its earliest changed
position (`policy.repricing.refold`) with the layer's pure decision. Every claim whose result
changes gets a new revision: a ledger row (built here, and only here), its stored state, and the
layer's output (`ClaimLayer.outputs`) with a deterministic id. The accumulators are the fold of
each year's current claims. All in the batch's unit of work.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

from contracts import Contract, derived_event_id, make_envelope
from contracts.codec import canonical_json, parse_payload
from contracts.envelope import now
from contracts.settlement import Cause, LayerResult
from contracts.topics import REFUSALS
from policy.repricing import Entry, Revision, next_position, refold
from runtime.db import Connection
from runtime.ledger import (
    ClaimRow,
    InMemoryLedger,
    LedgerRow,
    LedgerStore,
    PostgresLedger,
    Result,
    YearKey,
    YearRow,
    state_values,
)
from runtime.logging import bound_claim, get_logger
from runtime.unit_of_work import Inbound, InMemoryUnitOfWork, PostgresUnitOfWork, UnitOfWork

S = TypeVar("S")

log = get_logger("runtime.claim_layer")

VOLATILE = frozenset({"revision", "cause", "reversed", "settled_at"})
"""Result fields that do not make a different settlement (compared without them)."""


@dataclass(frozen=True)
class ClaimRef:
    """What identifies a claim and its stay."""

    claim_id: str
    person_id: str
    hospital_id: str
    insurance_year: int
    admission_date: date
    discharge_date: date
    position: int | None = None
    """its place in its person-year when an upstream layer assigned it"""


@dataclass(frozen=True)
class Change:
    """What one input does to one claim: a new claim or new input (`input_json`), a reversal, or a
    reinstatement; `cause` is why (None for a claim's first arrival)."""

    ref: ClaimRef
    event_id: str
    input: Contract | None = None
    """the claim's new input (None: keep the current one)"""
    input_json: str | None = None
    reverse: bool = False
    cause: Cause | None = None
    digest: str | None = None


@dataclass(frozen=True)
class LayerOutcome(Generic[S]):
    """A layer's pricing of one claim, as the shared handler stores and publishes it."""

    event: LayerResult
    """the layer's result for the claim"""
    base: Decimal
    """what the layer priced"""
    paid: Decimal
    """what the layer's fund paid"""
    year_after: S | None
    """None: the claim did not change the year state (e.g. a rejected claim)"""
    detail: dict[str, Any] = field(default_factory=dict)
    """the ledger row's detail"""


@dataclass(frozen=True)
class Priced(Generic[S]):
    """A claim's revision as the layer publishes it: the revision, the claim as stored after it, and
    the pricing (None for a reversal)."""

    revision: Revision[Result, S, Cause]
    row: ClaimRow[S]
    outcome: LayerOutcome[S] | None


class ClaimLayer(Protocol[S]):
    """What a layer service supplies: how to read its inputs, its pure decision, and its outputs."""

    producer: str
    output_topic: str
    year_state: type[S]
    """the calculator's year state: the accumulator's columns"""
    profile: Any

    def person_of(self, msg: Inbound) -> str: ...

    def change(self, msg: Inbound, claims: Mapping[str, ClaimRow[S]]) -> Change | Contract | None:
        """What the input does to its claim, given the claims of its person (a contract: a refusal to
        publish instead; None: nothing, e.g. a duplicate)."""
        ...

    def price(self, row: ClaimRow[S], claim_input: Any, year: S, earlier: Sequence[ClaimRow[S]],
              others: Sequence[ClaimRow[S]], at: datetime) -> LayerOutcome[S]:
        """The pure decision on one claim, given its input, the year state before it, the current
        claims before it in its person-year and the person's current claims of other years, and the
        time the batch is handled (read once by the handler, so the decision itself stays pure)."""
        ...

    def parse(self, input_json: str) -> Any:
        """The claim's stored input as its contract."""
        ...

    async def outputs(self, uow: Any, priced: Sequence[Priced[S]], at: datetime) -> list[Contract]:
        """What to publish for the batch's revisions (in order)."""
        ...


class LayerUnitOfWork(UnitOfWork, Protocol):
    """A layer's unit of work: the runtime's plus the layer's ledger."""

    @property
    def ledger(self) -> LedgerStore[Any]: ...


class PostgresLayerUnitOfWork(PostgresUnitOfWork):
    def __init__(self, conn: Connection, topic_prefix: str, year_state: type[Any]) -> None:
        super().__init__(conn, topic_prefix)
        self.ledger: LedgerStore[Any] = PostgresLedger(conn, year_state)


class InMemoryLayerUnitOfWork(InMemoryUnitOfWork):
    def __init__(self, year_state: type[Any], topic_prefix: str = "") -> None:
        super().__init__(topic_prefix)
        self.ledger: InMemoryLedger[Any] = InMemoryLedger(year_state)


def postgres_unit_of_work(layer: ClaimLayer[Any]) -> Callable[[Connection, str], PostgresLayerUnitOfWork]:
    """The unit-of-work factory of a layer service (for its `Subscription`)."""
    return lambda conn, prefix: PostgresLayerUnitOfWork(conn, prefix, layer.year_state)


def comparable(result: Result) -> Result:
    return {k: v for k, v in result.items() if k not in VOLATILE}


def same_result(a: Result, b: Result) -> bool:
    """Whether two results are the same settlement (revision, cause and time aside)."""
    return comparable(a) == comparable(b)


def digest_of(payload: Contract | dict[str, Any], *, exclude: set[str] | None = None) -> str:
    """A digest of a contract's content (what a duplicate and a correction are told apart by): of
    its JSON-mode dump (or of that dump, when the caller has it already), as sorted compact ASCII
    JSON (`contracts.codec.canonical_json`, the bytes every stored digest was taken of)."""
    content = payload if isinstance(payload, dict) else payload.model_dump(mode="json", exclude=exclude)
    return hashlib.sha256(canonical_json(content)).hexdigest()


def revision_event_id(event_type: str, claim_id: str, revision: int) -> Any:
    """Revision 1 keeps the id a claim's first result always had; later ones add the revision."""
    return derived_event_id(event_type, claim_id if revision == 1 else f"{claim_id}:{revision}")


Hook = Callable[[Any, list[Inbound], list[ClaimRow[Any]]], Awaitable[None]]
"""Awaited with the batch's new inputs and the claims of their persons, before anything is priced."""


class ClaimLayerHandler(Generic[S]):
    def __init__(self, layer: ClaimLayer[S], *, prepare: Hook | None = None,
                 clock: Callable[[], datetime] = now) -> None:
        self.layer = layer
        self.prepare = prepare
        self.clock = clock

    async def __call__(self, uow: LayerUnitOfWork, batch: list[Inbound]) -> None:
        fresh = await uow.new_only(batch, lambda m: f"event:{m.envelope.event_id}")
        if not fresh:
            return
        rows = await uow.ledger.load_claims(self.layer.person_of(m) for m in fresh)
        if self.prepare is not None:
            await self.prepare(uow, fresh, rows)
        run = _Run(self.layer, {r.claim_id: r for r in rows}, self.clock())
        for msg in fresh:
            change = self.layer.change(msg, run.claims)
            if change is None:
                continue
            if not isinstance(change, Change):  # a refusal
                with bound_claim(getattr(change, "claim_id", None)):
                    log.debug("request refused", reason_code=getattr(change, "reason_code", None),
                              layer=self.layer.producer)
                uow.emit(REFUSALS, make_envelope(
                    change, correlation_id=getattr(change, "claim_id", ""), producer=self.layer.producer,
                    causation_id=msg.envelope.event_id,
                    event_id=derived_event_id(type(change).__name__, str(msg.envelope.event_id))))
                continue
            run.apply(change)
        run.reprice_all()
        if not run.priced:
            return
        await uow.ledger.save_claims(run.changed.values())
        await uow.ledger.save_years(run.years)
        await uow.ledger.add_ledger(self._ledger_row(p) for p in run.priced)
        for event in await self.layer.outputs(uow, run.priced, run.at):
            uow.emit(self.layer.output_topic, make_envelope(
                event, correlation_id=str(getattr(event, "claim_id", None) or event.message_key()),
                producer=self.layer.producer, event_id=self._event_id(event)))

    @staticmethod
    def _event_id(event: Contract) -> Any:
        claim = getattr(event, "claim", None)
        claim_id = claim.claim_id if claim is not None else getattr(event, "claim_id")  # noqa: B009
        return revision_event_id(type(event).__name__, claim_id, getattr(event, "revision", 1))

    def _ledger_row(self, p: Priced[S]) -> LedgerRow:
        """The one place a ledger row is built from a layer's decision."""
        profile, entry, row, outcome = self.layer.profile, p.revision.entry, p.row, p.outcome
        cause = p.revision.cause
        result = outcome.event.model_dump(mode="json") if outcome else (p.revision.previous or {})
        return LedgerRow(
            claim_id=entry.claim_id, revision=entry.revision, person_id=row.person_id, hospital_id=row.hospital_id,
            insurance_year=row.insurance_year, outcome=str(result.get("outcome", "settled")),
            reversed=p.revision.reversed, base=outcome.base if outcome else Decimal("0.00"),
            paid=outcome.paid if outcome else Decimal("0.00"), year_before=state_values(entry.year_before),
            year_after=state_values(entry.year_after), profile_id=profile.id, profile_version=profile.version,
            cause=cause.model_dump(mode="json") if cause is not None else None,
            detail=outcome.detail if outcome else {"reversed": True})


class _Run(Generic[S]):
    """One batch's changes and their re-pricing. Changes are applied in order; a change to a claim
    that an earlier change of the same batch already touched first re-prices what is pending (so a
    claim settled and reversed in one batch gets both revisions)."""

    def __init__(self, layer: ClaimLayer[S], claims: dict[str, ClaimRow[S]], at: datetime) -> None:
        self.layer = layer
        self.claims = claims
        self.at = at
        self.inputs: dict[str, Any] = {}
        self.touched: dict[YearKey, dict[str, Cause | None]] = {}
        self.start: dict[YearKey, int] = {}
        self.priced: list[Priced[S]] = []
        self.years: dict[YearKey, YearRow[S]] = {}
        self.changed: dict[str, ClaimRow[S]] = {}
        self.of_person: dict[str, dict[str, ClaimRow[S]]] = {}
        """the claims by person, in the order of `claims` (a claim's person and year never change)"""
        for r in claims.values():
            self.of_person.setdefault(r.person_id, {})[r.claim_id] = r

    def _year(self, key: YearKey) -> list[ClaimRow[S]]:
        return [r for r in self.of_person.get(key[0], {}).values() if r.insurance_year == key[1]]

    def apply(self, change: Change) -> None:
        existing = self.claims.get(change.ref.claim_id)
        if existing is not None and existing.claim_id in self.touched.get(existing.key, {}):
            self.reprice(existing.key)
        row = self._apply(change)
        if change.input is not None:
            self.inputs[row.claim_id] = change.input
        self.touched.setdefault(row.key, {})[row.claim_id] = change.cause
        self.start[row.key] = min(self.start.get(row.key, row.entry.position), row.entry.position)

    def reprice_all(self) -> None:
        for key in list(self.touched):
            self.reprice(key)

    def reprice(self, key: YearKey) -> None:
        """Fold the person-year again from its earliest pending change."""
        causes, start = self.touched.pop(key), self.start.pop(key)
        year_rows = sorted(self._year(key), key=lambda r: (r.entry.position, r.claim_id))
        by_id = {r.claim_id: r for r in year_rows}
        others = [r for r in self.of_person.get(key[0], {}).values() if r.key != key and r.entry.current]
        outcomes: dict[str, LayerOutcome[S]] = {}

        def price(entry: Entry[Result, S], state: S, earlier: Sequence[Entry[Result, S]]) -> tuple[Result, S]:
            row = by_id[entry.claim_id]
            claim_input = self.inputs.get(entry.claim_id) or self.layer.parse(entry.input_json)
            outcome = self.layer.price(row, claim_input, state, [by_id[e.claim_id] for e in earlier], others, self.at)
            outcomes[entry.claim_id] = outcome
            return outcome.event.model_dump(mode="json"), outcome.year_after or state

        revisions, final = refold([r.entry for r in year_rows], start, self.layer.year_state(), price, same_result,
                                  causes)
        self.years[key] = YearRow(final, sum(1 for r in year_rows if r.entry.current))
        self.changed.update((r.claim_id, r) for r in year_rows if r.entry.position >= start)
        for rev in revisions:
            row = by_id[rev.entry.claim_id]
            self.priced.append(Priced(rev, replace(row, entry=rev.entry),
                                      outcomes.get(rev.entry.claim_id) if rev.entry.current else None))

    def _apply(self, change: Change) -> ClaimRow[S]:
        """Apply a change to the claims (in place); returns the claim's row."""
        ref = change.ref
        row = self.claims.get(ref.claim_id)
        if row is None:
            siblings = [r.entry for r in self._year((ref.person_id, ref.insurance_year))]
            zero = self.layer.year_state()
            entry: Entry[Result, S] = Entry(ref.claim_id, ref.position or next_position(siblings), "current", 0,
                                            change.input_json or "{}", None, zero, zero)
            row = ClaimRow(entry, ref.person_id, ref.insurance_year, ref.hospital_id, ref.admission_date,
                           ref.discharge_date, change.event_id, change.digest)
            self.claims[ref.claim_id] = row
            self.of_person.setdefault(row.person_id, {})[row.claim_id] = row
            return row
        if change.input_json is not None:
            row.entry.input_json = change.input_json
            row.hospital_id, row.admission_date, row.discharge_date = ref.hospital_id, ref.admission_date, \
                ref.discharge_date
            row.digest = change.digest or row.digest
        row.entry.status = "reversed" if change.reverse else "current"
        row.input_event_id = change.event_id
        return row


def revised_results(priced: Sequence[Priced[Any]], reversed_result: Callable[[Result, int, Cause | None], Contract]
                    ) -> list[Contract]:
    """The outputs of a layer whose results are its events (basic, critical illness): each revision
    as priced, with its revision and cause; a reversal as the layer's reversed result."""
    out: list[Contract] = []
    for p in priced:
        rev = p.revision
        if p.outcome is None:
            out.append(reversed_result(rev.previous or {}, rev.entry.revision, rev.cause))
        else:
            out.append(p.outcome.event.model_copy(update={"revision": rev.entry.revision, "cause": rev.cause}))
    return out


def claim_ref_of_summary(payload: Any) -> ClaimRef:
    """The ref of a layer event that carries a `ClaimSummary` as `claim`."""
    c = payload.claim
    return ClaimRef(c.claim_id, c.person_id, c.hospital_id, c.insurance_year, c.admission_date, c.discharge_date,
                    c.position)


class SummaryLayer:
    """Base of the layers after basic insurance: their input is the previous layer's result (it
    carries the `ClaimSummary` as `claim`, with its position, and every revision of it)."""

    input_type: type[Contract]

    def __init__(self, profile: Any) -> None:
        self.profile = profile

    def person_of(self, msg: Inbound) -> str:
        return str(msg.payload.claim.person_id)

    def parse(self, input_json: str) -> Any:
        return parse_payload(input_json, self.input_type)

    def change(self, msg: Inbound, claims: Mapping[str, ClaimRow[Any]]) -> Change | None:
        """A result of the previous layer: a claim's first result makes a new claim; a later
        revision replaces the input (or reverses the claim) unless it is older than the one held
        or changes nothing."""
        upstream = msg.payload
        ref = claim_ref_of_summary(upstream)
        row = claims.get(ref.claim_id)
        if row is None:
            if upstream.reversed:
                return None
            return Change(ref, str(msg.envelope.event_id), upstream, upstream.model_dump_json(), cause=upstream.cause)
        held = json.loads(row.entry.input_json)
        if upstream.revision <= held.get("revision", 1):
            return None  # an older or the same revision: already applied
        if upstream.reversed:
            return Change(ref, str(msg.envelope.event_id), reverse=True, cause=upstream.cause,
                          input_json=upstream.model_dump_json())
        new_json = upstream.model_dump_json()
        if row.entry.current and comparable(json.loads(new_json)) == comparable(held):
            return None  # the same input again (a revision that changed nothing here)
        return Change(ref, str(msg.envelope.event_id), upstream, new_json, cause=upstream.cause)
