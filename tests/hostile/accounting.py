"""What became of every hostile record: dead-lettered, rejected, accepted, or UNACCOUNTED.

After a run, for each record published (topic, partition, offset), first match wins:

1. **dead-lettered** — a letter on `<topic>.dlt` whose `dlt.original.topic/partition/offset`
   headers point at it, read as `operator dlt list` reads them (`tools.operator.dlt.list_letters`).
   More than one letter for a record is counted too (`twice`): each bad record is one letter.
2. on `enrollment.commands`: **rejected** if a `CommandRejected` on `enrollment.rejections` has
   its event id as `command_event_id`; **accepted** if a snapshot was derived from it (its
   `causation_id`).
3. on `claims.discharges`, `claims.basic-settled`, `claims.catastrophic-settled`: a statement
   from the assistance service for its claim id — **rejected** if the statement is, else
   **accepted**; also **accepted** if a later layer dead-lettered what was derived from it (a
   letter for the same claim id: each hostile record has a claim id of its own).
4. on the topics the audit owns or observes only (`enrollment.persons`, `enrollment.providers`,
   `claims.statements`, `enrollment.rejections`, `audit.alerts`): **accepted** if the audit's
   `event_store` holds it (topic, partition, offset) without `error`.
5. anything else is **UNACCOUNTED**, with what was seen of it (e.g. stored by the audit with an
   error but dead-lettered by nobody; never seen at all).

Records this run did not publish (the services' own output) are the evidence, never the subject;
identifiers are read from the record's bytes when they parse, else from the base it was made from.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import asyncpg

from contracts import ContractError, decode_envelope
from contracts.topics import (
    BASIC_SETTLED,
    CATASTROPHIC_SETTLED,
    DISCHARGES,
    ENROLLMENT_COMMANDS,
    ENROLLMENT_REJECTIONS,
    PERSONS,
    PROVIDERS,
    STATEMENTS,
)
from runtime.kafka_access import KafkaAccess
from runtime.logging import mask_identity_numbers
from tests.hostile.catalogue import ACCEPTED, DEAD, REJECTED, Case
from tests.hostile.fuzz import identifiers
from tests.hostile.world import OWNER, claim_of
from tools.operator.dlt import Letter, list_letters, read_all

UNACCOUNTED = "UNACCOUNTED"
OUTCOMES = (DEAD, REJECTED, ACCEPTED, UNACCOUNTED)
CLAIM_TOPICS = (DISCHARGES, BASIC_SETTLED, CATASTROPHIC_SETTLED)

Origin = tuple[str, int, int]
"""(topic without prefix, partition, offset)"""


@dataclass(frozen=True)
class Published:
    """One hostile record as the broker stored it."""

    label: str
    """`catalogue:<topic>/<name>` or `fuzz:<index>:<mutations>`"""
    topic: str
    partition: int
    offset: int
    key: bytes | None = field(repr=False)  # identity numbers stay out of printed output
    value: bytes | None = field(repr=False)
    event_id: str | None = None
    claim_id: str | None = None
    case: Case | None = None

    @property
    def origin(self) -> Origin:
        return self.topic, self.partition, self.offset


@dataclass
class Evidence:
    letters: dict[Origin, list[Letter]] = field(default_factory=lambda: defaultdict(list))
    other_letters: list[Letter] = field(default_factory=list)
    """letters that point at no record of this run (the services' own output, dead-lettered downstream)"""
    rejections: dict[str, str] = field(default_factory=dict)
    """command event id → reason and field of its `CommandRejected`"""
    applied: set[str] = field(default_factory=set)
    """command event ids a snapshot was derived from"""
    statements: dict[str, set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))
    """claim id → {(statement event id, outcome)} published by the assistance service"""
    stored: dict[Origin, str | None] = field(default_factory=dict)
    """what the audit's event_store holds: origin → its error (None: decoded and valid)"""
    letter_claims: set[str] = field(default_factory=set)
    """claim ids of letters for records this run did not publish"""


@dataclass(frozen=True)
class Verdict:
    outcome: str
    detail: str = ""
    letters: tuple[Letter, ...] = field(default=(), repr=False)
    reason: str = ""
    """dead letter: `dlt.reason` and `dlt.field`; rejection: reason and field (identity numbers masked)"""


def letter_reason(letter: Letter) -> str:
    return mask_identity_numbers(f"{letter.reason} [{letter.field}]" if letter.field else letter.reason)


def classify(rec: Published, ev: Evidence) -> Verdict:
    letters = ev.letters.get(rec.origin, [])
    if letters:
        return Verdict(DEAD, f"{len(letters)} letter(s)", tuple(letters), letter_reason(letters[0]))
    event_id, claim_id = identifiers(rec.topic, rec.value)
    event_id, claim_id = event_id or rec.event_id, claim_id or rec.claim_id
    stored = ev.stored.get(rec.origin, "<not stored>")
    seen = ("never stored by the audit" if stored == "<not stored>" else
            f"stored by the audit with error: {mask_identity_numbers(stored)[:200]}" if stored else
            "stored by the audit as valid")
    if rec.topic == ENROLLMENT_COMMANDS:
        if event_id in ev.rejections:
            return Verdict(REJECTED, "CommandRejected", reason=ev.rejections[event_id])
        if event_id in ev.applied:
            return Verdict(ACCEPTED, "a snapshot was derived from it")
        return Verdict(UNACCOUNTED, f"neither dead-lettered, rejected nor applied; {seen}")
    if rec.topic in CLAIM_TOPICS:
        statements = ev.statements.get(claim_id or "", set())
        if statements:
            outcomes = {o for _, o in statements}
            return Verdict(REJECTED if outcomes == {"rejected"} else ACCEPTED, f"{len(statements)} statement(s)")
        if claim_id and claim_id in ev.letter_claims:
            return Verdict(ACCEPTED, "processed; a later layer dead-lettered what was derived from it")
        return Verdict(UNACCOUNTED, f"no dead letter, no statement for its claim; {seen}")
    if stored is None:
        return Verdict(ACCEPTED, seen)
    return Verdict(UNACCOUNTED, f"not dead-lettered; {seen}")


def reason_matches(case: Case, verdict: Verdict) -> bool:
    return re.search(case.hint, verdict.reason, re.IGNORECASE) is not None


# ------------------------------------------------------------------ gathering the evidence


async def gather(kafka: KafkaAccess, prefix: str, audit_dsn: str, published: Sequence[Published]) -> Evidence:
    """Read the dead-letter topics, the services' output topics and the audit's event store."""
    ev = Evidence()
    mine = {rec.origin for rec in published}
    for topic in OWNER:
        for letter in await list_letters(kafka, prefix, topic):
            original = letter.original
            origin = (original[0].removeprefix(prefix), original[1], original[2]) if original else None
            if origin in mine:
                ev.letters[origin].append(letter)
            else:
                ev.other_letters.append(letter)
                try:
                    env = decode_envelope(letter.value or b"")
                except ContractError:
                    continue
                claim = claim_of(letter.topic.removeprefix(prefix).removesuffix(".dlt"), env.payload)
                if claim:
                    ev.letter_claims.add(claim)
    for topic in (STATEMENTS, ENROLLMENT_REJECTIONS, PERSONS, PROVIDERS):
        for r in await read_all(kafka, prefix + topic):
            if (topic, r.partition, r.offset) in mine:
                continue
            try:
                env = decode_envelope(r.value or b"")
            except ContractError:
                continue
            p = env.payload
            if topic == STATEMENTS and env.producer == "assistance" and isinstance(p.get("claim_id"), str):
                ev.statements[p["claim_id"]].add((str(env.event_id), str(p.get("outcome"))))
            elif topic == ENROLLMENT_REJECTIONS and env.producer == "enrollment":
                reason = f"{p.get('reason', '')} [{p.get('field')}]" if p.get("field") else str(p.get("reason", ""))
                ev.rejections[str(p.get("command_event_id"))] = mask_identity_numbers(reason)
            elif topic in (PERSONS, PROVIDERS) and env.producer == "enrollment" and env.causation_id:
                ev.applied.add(str(env.causation_id))
    conn = await asyncpg.connect(audit_dsn)
    try:
        rows = await conn.fetch('SELECT topic, partition, "offset", error FROM event_store')
    finally:
        await conn.close()
    ev.stored = {(r["topic"], r["partition"], r["offset"]): r["error"] for r in rows}
    return ev


# ------------------------------------------------------------------ the tally


@dataclass
class Tally:
    verdicts: list[tuple[Published, Verdict]]

    @property
    def counts(self) -> Counter[str]:
        return Counter(v.outcome for _, v in self.verdicts)

    @property
    def twice(self) -> list[Published]:
        """Records with more than one dead letter."""
        return [rec for rec, v in self.verdicts if len(v.letters) > 1]

    def unaccounted(self) -> list[tuple[Published, Verdict]]:
        return [(rec, v) for rec, v in self.verdicts if v.outcome == UNACCOUNTED]

    def case_failures(self) -> list[tuple[Published, Verdict, str]]:
        """Catalogue cases whose outcome or reason is not what the case says."""
        out = []
        for rec, v in self.verdicts:
            case = rec.case
            if case is None:
                continue
            problem = case_problem(rec, v)
            if problem:
                out.append((rec, v, problem))
        return out

    def line(self) -> str:
        c = self.counts
        return (f"hostile records {len(self.verdicts)}: dead-lettered {c[DEAD]}, rejected {c[REJECTED]}, "
                f"accepted {c[ACCEPTED]}, unaccounted {c[UNACCOUNTED]}; dead-lettered twice {len(self.twice)}; "
                f"catalogue cases not as specified {len(self.case_failures())}/"
                f"{sum(1 for rec, _ in self.verdicts if rec.case)}")


def case_problem(rec: Published, v: Verdict) -> str:
    """Why a catalogue case's fate breaks its specification ('' when it does not)."""
    case = rec.case
    assert case is not None
    if v.outcome not in case.expect:
        return f"expected {' or '.join(sorted(case.expect))}, got {v.outcome} ({v.detail})"
    if len(v.letters) > 1:
        return f"{len(v.letters)} dead letters for one record"
    if v.outcome in (DEAD, REJECTED) and not reason_matches(case, v):
        return f"the reason does not name the problem (/{case.hint}/): {v.reason[:300]!r}"
    if v.outcome == DEAD:
        return letter_problem(rec, v.letters[0])
    return ""


def letter_problem(rec: Published, letter: Letter) -> str:
    """A dead letter carries the original key and bytes (a bounded prefix when they cannot fit) and says where from."""
    case = rec.case
    assert case is not None
    if letter.service != OWNER[rec.topic]:
        return f"dead-lettered by {letter.service!r}, not by the topic's owner {OWNER[rec.topic]!r}"
    if letter.key != rec.key:
        return "the letter does not carry the original key"
    value = rec.value or b""
    if case.truncated:
        h = letter.headers
        if h.get("dlt.truncated") != "true":
            return f"a {len(value):,}-byte record's letter is not marked dlt.truncated"
        if h.get("dlt.original.length") != str(len(value)):
            return f"dlt.original.length {h.get('dlt.original.length')!r} is not {len(value)}"
        if h.get("dlt.original.sha256") != hashlib.sha256(value).hexdigest():
            return "dlt.original.sha256 is not the SHA-256 (hex) of the original value"
        if not value.startswith(letter.value or b"") or len(letter.value or b"") >= len(value):
            return "the truncated letter is not a shorter prefix of the original value"
        return ""
    if (letter.value or b"") != value:
        return "the letter does not carry the original bytes"
    return ""


def tally(published: Iterable[Published], ev: Evidence) -> Tally:
    return Tally([(rec, classify(rec, ev)) for rec in published])


__all__ = ["OUTCOMES", "UNACCOUNTED", "Evidence", "Published", "Tally", "Verdict", "classify", "gather",
           "tally"]
