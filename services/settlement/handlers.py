"""Basic insurance handler: a hospital's discharges, corrections and reversals → the person-years
re-priced, accumulators, ledger, `BasicSettled` revisions (and refusals on `claims.refusals`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from contracts import (
    ClaimRequestRefused,
    ClaimSummary,
    Contract,
    DischargeCorrected,
    DischargeRecorded,
    PersonSnapshot,
    ProviderSnapshot,
    ReversalRequested,
)
from contracts.codec import encode_json, parse_payload
from contracts.money import ZERO
from contracts.settlement import BasicSettled, Cause
from contracts.topics import BASIC_SETTLED
from contracts.types import RequestRefusalCode
from policy import PolicyProfile
from policy.calculators.basic import BasicYearState
from policy.decisions.basic import Stay, decide, duplicate_of
from runtime.claim_layer import (
    Change,
    ClaimRef,
    InMemoryLayerUnitOfWork,
    LayerOutcome,
    PostgresLayerUnitOfWork,
    Priced,
    digest_of,
    revised_results,
)
from runtime.db import Connection
from runtime.ledger import ClaimRow, Result
from runtime.unit_of_work import Inbound
from services.settlement import store


class RegistryView(Protocol):
    """The registry as settlement's projections hold it."""

    async def persons(self, ids: Iterable[str]) -> dict[str, PersonSnapshot]: ...

    async def providers(self, ids: Iterable[str]) -> dict[str, ProviderSnapshot]: ...


class PostgresRegistryView:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def persons(self, ids: Iterable[str]) -> dict[str, PersonSnapshot]:
        return await store.load_persons(self.conn, ids)

    async def providers(self, ids: Iterable[str]) -> dict[str, ProviderSnapshot]:
        return await store.load_providers(self.conn, ids)


class InMemoryRegistryView:
    def __init__(self, persons: Iterable[PersonSnapshot] = (), providers: Iterable[ProviderSnapshot] = ()) -> None:
        self.by_person = {p.person_id: p for p in persons}
        self.by_provider = {p.provider_id: p for p in providers}

    async def persons(self, ids: Iterable[str]) -> dict[str, PersonSnapshot]:
        return {i: self.by_person[i] for i in ids if i in self.by_person}

    async def providers(self, ids: Iterable[str]) -> dict[str, ProviderSnapshot]:
        return {i: self.by_provider[i] for i in ids if i in self.by_provider}


class PostgresSettlementUnitOfWork(PostgresLayerUnitOfWork):
    def __init__(self, conn: Connection, topic_prefix: str) -> None:
        super().__init__(conn, topic_prefix, BasicYearState)
        self.registry: RegistryView = PostgresRegistryView(conn)


class InMemorySettlementUnitOfWork(InMemoryLayerUnitOfWork):
    def __init__(self, registry: InMemoryRegistryView, topic_prefix: str = "") -> None:
        super().__init__(BasicYearState, topic_prefix)
        self.registry: RegistryView = registry


def refused(request: Inbound, code: RequestRefusalCode, reason: str) -> ClaimRequestRefused:
    p = request.payload
    return ClaimRequestRefused(request_event_id=str(request.envelope.event_id), request_type=request.envelope.event_type,
                               claim_id=p.claim_id, hospital_claim_id=p.hospital_claim_id, hospital_id=p.hospital_id,
                               person_id=p.person_id, reason_code=code, reason=reason)


def _ref(d: DischargeRecorded) -> ClaimRef:
    return ClaimRef(d.claim_id, d.person_id, d.hospital_id, d.discharge_date.year, d.admission_date, d.discharge_date)


def _stay(row: ClaimRow[Any]) -> Stay:
    return Stay(row.claim_id, row.hospital_id, row.admission_date, row.discharge_date)


class BasicLayer:
    """The basic layer as the shared claim-layer handler sees it: a hospital's discharges,
    corrections and reversals in, `BasicSettled` revisions out (and refusals)."""

    producer = "settlement"
    output_topic = BASIC_SETTLED
    year_state = BasicYearState

    def __init__(self, profile: PolicyProfile) -> None:
        self.profile = profile
        self.persons: dict[str, PersonSnapshot] = {}
        self.providers: dict[str, ProviderSnapshot] = {}

    async def prepare(self, uow: Any, todo: list[Inbound], claims: Sequence[ClaimRow[BasicYearState]]) -> None:
        """Load the registry rows the batch needs from the local projections (every hospital a
        claim of these persons was filed with: their later claims may be priced again)."""
        self.persons = await uow.registry.persons(m.payload.person_id for m in todo)
        self.providers = await uow.registry.providers({*(m.payload.hospital_id for m in todo),
                                                       *(r.hospital_id for r in claims)})

    def person_of(self, msg: Inbound) -> str:
        return str(msg.payload.person_id)

    def parse(self, input_json: str) -> DischargeRecorded:
        return parse_payload(input_json, DischargeRecorded)

    def change(self, msg: Inbound, claims: Mapping[str, ClaimRow[BasicYearState]]
               ) -> Change | ClaimRequestRefused | None:
        p = msg.payload
        event_id = str(msg.envelope.event_id)
        row = claims.get(p.claim_id)
        if isinstance(p, ReversalRequested | DischargeCorrected):
            kind = "reversal" if isinstance(p, ReversalRequested) else "correction"
            if row is None:
                what = "reverse" if kind == "reversal" else "correct"
                return refused(msg, "UNKNOWN_CLAIM", f"claim {p.claim_id} was never settled: there is nothing to {what}")
            if not row.entry.current:
                return refused(msg, "ALREADY_REVERSED", f"claim {p.claim_id} is reversed (send the discharge again "
                                                        "to settle it again)")
            if msg.envelope.producer != f"hospital:{row.hospital_id}":
                return refused(msg, "WRONG_HOSPITAL", f"only hospital {row.hospital_id}, which filed claim "
                                                      f"{p.claim_id}, may request its {kind}")
            if p.person_id != row.person_id:
                return refused(msg, "PERSON_CHANGED", "a correction cannot move a claim to another person: reverse "
                                                      "it and send a new discharge")
            if isinstance(p, ReversalRequested):
                cause = Cause(kind="reversal", claim_id=p.claim_id, reason=p.reason, request_event_id=event_id)
                return Change(ClaimRef(row.claim_id, row.person_id, row.hospital_id, row.insurance_year,
                                       row.admission_date, row.discharge_date), event_id, reverse=True, cause=cause)
            if p.discharge_date.year != row.insurance_year:
                return refused(msg, "YEAR_CHANGED", "a correction cannot move a claim to another insurance year: "
                                                    "reverse it and send a new discharge")
            content = DischargeRecorded.model_validate(p.model_dump(exclude={"correction_reason"}))
            digest = digest_of(content)
            if digest == row.digest:
                return None  # the same content again: nothing to correct
            cause = Cause(kind="correction", claim_id=p.claim_id, reason=p.correction_reason,
                          request_event_id=event_id)
            return Change(_ref(content), event_id, content, content.model_dump_json(), cause=cause, digest=digest)
        dumped = p.model_dump(mode="json")  # one dump for the digest and the stored input
        digest = digest_of(dumped)
        if row is None:
            return Change(_ref(p), event_id, p, encode_json(dumped), digest=digest)
        if row.entry.current:
            if digest == row.digest:
                return None  # sent again (a new event id for the same bill): settled once
            return refused(msg, "CONTENT_MISMATCH", f"claim {p.claim_id} was settled with other content; send a "
                                                    "DischargeCorrected to change it")
        cause = Cause(kind="reinstatement", claim_id=p.claim_id, reason="sent again after its reversal",
                      request_event_id=event_id)
        return Change(_ref(p), event_id, p, encode_json(dumped), cause=cause, digest=digest)

    def price(self, row: ClaimRow[BasicYearState], claim_input: DischargeRecorded, year: BasicYearState,
              earlier: Sequence[ClaimRow[BasicYearState]], others: Sequence[ClaimRow[BasicYearState]],
              at: datetime) -> LayerOutcome[BasicYearState]:
        d = claim_input
        settled = [_stay(r) for r in (*earlier, *others) if r.outcome == "settled"]
        decision = decide(d, row.input_event_id, self.persons.get(d.person_id), self.providers.get(d.hospital_id),
                          self.profile, year, position=row.entry.position, duplicate=duplicate_of(_stay(row), settled))
        event = decision.event
        return LayerOutcome(event, base=event.claim.in_policy, paid=event.basic.paid if event.basic else ZERO,
                            year_after=decision.year_after,
                            detail=event.model_dump(mode="json", include={"basic", "rejection"}))

    async def outputs(self, uow: Any, priced: Sequence[Priced[BasicYearState]], at: datetime) -> list[Contract]:
        return revised_results(priced, reversed_basic)


def reversed_basic(previous: Result, revision: int, cause: Cause | None) -> BasicSettled:
    return BasicSettled(claim=ClaimSummary.model_validate(previous["claim"]), outcome=previous["outcome"],
                        residual_in_policy=ZERO, catastrophic_base=ZERO, revision=revision, reversed=True,
                        cause=cause)
