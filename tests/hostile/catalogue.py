"""Named hostile records for every consumed topic, each a real valid envelope broken in one way.

`catalogue()` lists every `Case`: topic, name, key bytes, value bytes, headers, what must become
of it (`expect`: dead-lettered, or — only on `enrollment.commands`, for a payload that decodes but
is invalid — rejected; a few cases are valid and must be accepted), and a pattern the reason
(dead letter `dlt.reason` + `dlt.field`, or the rejection's reason + field) must match so that it
names the problem. Every case has its own event id (and its own claim id on claim topics), so no
case is deduplicated against another; `REGISTRY` lists the enrollment commands the run must
publish first so that the valid bases are eligible (the discharge base is then settled, not
rejected).

Sizes are set against Kafka's defaults: the broker takes a record batch of up to
`BROKER_MAX_MESSAGE_BYTES`; the services' producer (FastStream, like aiokafka) refuses one larger
than `PRODUCER_MAX_REQUEST_SIZE` (estimated uncompressed). `oversize_1mb` fits the first but its
dead-letter copy plus `dlt.*` headers cannot fit the second.
"""

from __future__ import annotations

import copy
import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatchBuilder

from contracts import Contract
from contracts.enrollment import RecordDeath, ResumePerson, SuspendPerson
from contracts.topics import (
    ALERTS,
    BASIC_SETTLED,
    BY_NAME,
    CATASTROPHIC_SETTLED,
    DISCHARGES,
    ENROLLMENT_COMMANDS,
    ENROLLMENT_REJECTIONS,
    PERSONS,
    PROVIDERS,
    REFUSALS,
    STATEMENTS,
    TOPICS,
)
from tests.hostile.jsonbytes import Raw, del_path, dumps, get_path, set_path
from tests.hostile.world import Base, Chain, claim_of
from tests.integration.platform import discharge, enroll, person_id, provider

BROKER_MAX_MESSAGE_BYTES = 1_048_588  # Kafka's message.max.bytes default
PRODUCER_MAX_REQUEST_SIZE = 1_048_576  # aiokafka's and FastStream's max_request_size default

DEAD, REJECTED, ACCEPTED = "dead-lettered", "rejected", "accepted"

NS = uuid.UUID("a3f1d0c4-6b7e-4c55-9e0f-5d1c2b3a4e10")

# the catalogue's own registry: nobody else uses these identities
P_CLAIMS = person_id(901)  # enrolled for real: the claim-topic bases are settled
P_SNAPSHOT = person_id(902)  # enrolled, suspended, resumed (in the pure registry only): the persons base
P_OTHER = person_id(903)  # a valid identity number that is not the subject (key mismatch)
P_UNKNOWN = person_id(904)  # never enrolled: the subject of the rejections base
H_CLAIMS, H_SNAPSHOT = "HXA", "HXB"
REGISTRY: tuple[Contract, ...] = (provider(H_CLAIMS, 2), enroll(P_CLAIMS))
"""What the run enrolls before publishing the catalogue."""


@dataclass(frozen=True)
class Case:
    topic: str
    name: str
    key: bytes | None = field(repr=False)  # identity numbers stay out of printed output
    value: bytes | None = field(repr=False)
    headers: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)
    expect: frozenset[str] = frozenset({DEAD})
    hint: str = ""
    """regular expression (case-insensitive) the reason plus field must match"""
    event_id: str | None = None
    claim_id: str | None = None
    compress: bool = False
    """publish gzip-compressed: the record is larger than the broker takes uncompressed"""
    truncated: bool = False
    """its dead-letter copy cannot fit the producer's limit: the letter is a truncated prefix"""
    note: str = ""
    base: bytes = field(default=b"", repr=False)
    """the valid envelope the case was made from"""

    @property
    def id(self) -> str:
        return f"{self.topic}/{self.name}"


def record_size(key: bytes | None, value: bytes | None, headers: tuple[tuple[str, bytes], ...]) -> int:
    """Size of a one-record batch as the producer estimates it (what its max_request_size is checked against)."""
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, list(headers)))


# ------------------------------------------------------------------ per-topic fields


@dataclass(frozen=True)
class Fields:
    string: str
    """a string field (huge string, NUL)"""
    date: str
    """a date field, or a datetime one (Feb 30, year 9999)"""
    container: str
    """an array field (becomes an object), or an object field (becomes an array)"""
    money: Callable[[dict[str, Any], str], None] | None = None
    """sets the amounts of a case (`negative`, `nan`, `huge`), keeping every sum consistent"""


def _plus(tree: dict[str, Any], paths: tuple[str, ...], amount: Decimal) -> None:
    for p in paths:
        set_path(tree, p, str(Decimal(get_path(tree, p)) + amount))


def _discharge_money(tree: dict[str, Any], how: str) -> None:
    line = "payload.lines.0"
    if how == "nan":
        set_path(tree, f"{line}.amount", "NaN")
        return
    old = Decimal(get_path(tree, f"{line}.amount"))
    new = Decimal("-500.00") if how == "negative" else Decimal("1000000000000.00")
    set_path(tree, f"{line}.quantity", "1")
    set_path(tree, f"{line}.unit_price", str(new))
    set_path(tree, f"{line}.amount", str(new))
    _plus(tree, ("payload.total_amount",), new - old)


def _money(nan: str, negative: str, *huge: str) -> Callable[[dict[str, Any], str], None]:
    """`nan`: that amount is NaN; `negative`: that one is -1.00; `huge`: 1e12 more on each of those
    (chosen so that every sum the payload states still adds up)."""
    def edit(tree: dict[str, Any], how: str) -> None:
        if how == "nan":
            set_path(tree, nan, "NaN")
        elif how == "negative":
            set_path(tree, negative, "-1.00")
        else:
            _plus(tree, huge, Decimal("1000000000000.00"))
    return edit


_layer_money = _money("payload.residual_in_policy", "payload.basic.paid",
                      "payload.claim.total_cost", "payload.claim.out_of_policy")  # a bill 1e12 larger, out of policy
_statement_money = _money("payload.hifp_pay", "payload.maf_pay",
                          "payload.total_cost", "payload.out_of_policy", "payload.psn_pay")  # the patient pays it


FIELDS: dict[str, Fields] = {
    ENROLLMENT_COMMANDS: Fields("payload.name", "payload.payment_date", "payload.categories"),
    PERSONS: Fields("payload.suspensions.0.reason", "payload.coverage.0.benefits_from", "payload.categories"),
    PROVIDERS: Fields("payload.name", "payload.agreement_valid_from", "payload"),
    ENROLLMENT_REJECTIONS: Fields("payload.reason", "occurred_at", "payload"),
    DISCHARGES: Fields("payload.diagnosis_codes.0", "payload.discharge_date", "payload.lines", _discharge_money),
    BASIC_SETTLED: Fields("payload.basic.note", "payload.claim.discharge_date", "payload.claim.categories",
                          _layer_money),
    CATASTROPHIC_SETTLED: Fields("payload.basic.note", "payload.claim.discharge_date", "payload.claim.categories",
                                 _layer_money),
    STATEMENTS: Fields("payload.details.0.note", "payload.discharge_date", "payload.details", _statement_money),
    ALERTS: Fields("payload.evidence.sample_rate", "payload.detected_at", "payload.evidence"),
    REFUSALS: Fields("payload.reason", "occurred_at", "payload"),
}


# ------------------------------------------------------------------ valid bases, one per case


class _Bases:
    """A fresh valid base per (topic, case): own event id, own claim id, own command subject."""

    def __init__(self) -> None:
        self.chain = Chain()
        for cmd in (*REGISTRY, provider(H_SNAPSHOT, 1)):
            self.chain.command(cmd)
        self.chain.command(enroll(P_SNAPSHOT))
        self.chain.command(SuspendPerson(person_id=P_SNAPSHOT, effective_date=date(2026, 2, 1), reason="外出务工"))
        _, self.person = self.chain.command(ResumePerson(person_id=P_SNAPSHOT, effective_date=date(2026, 4, 1)))
        self.provider = self.chain.command(provider(H_SNAPSHOT, 3, "in_province", 800))[1]  # version 2
        self.n = 0

    def __call__(self, topic: str, name: str) -> Base:
        self.n += 1
        base = self._base(topic, self.n)
        tree = copy.deepcopy(base.envelope)
        tree["event_id"] = str(uuid.uuid5(NS, f"{topic}:{name}"))
        return Base(topic, base.key, tree, base.headers)

    def _base(self, topic: str, n: int) -> Base:
        if topic == ENROLLMENT_COMMANDS:
            pid = person_id(910 + n % 90)
            return Chain().command(enroll(pid))[0]
        if topic == PERSONS:
            return self.person
        if topic == PROVIDERS:
            return self.provider
        if topic == ENROLLMENT_REJECTIONS:
            death = RecordDeath(person_id=P_UNKNOWN, date_of_death=date(2026, 1, 1) + timedelta(days=n))
            return Chain().command(death)[1]  # UNKNOWN_PERSON
        d = discharge(f"HOSTILE{n:04d}", H_CLAIMS, P_CLAIMS, date(2026, 5, 4), date(2026, 5, 8),
                      [("A", "1000.00"), ("B", "250.50"), ("C", "80.00"), ("SELF", "19.90")])
        return self.chain.settle(d)[topic]


# ------------------------------------------------------------------ the cases


_ENVELOPE_LEVEL = {"not_json", "invalid_utf8", "empty_value", "null_value", "json_array", "missing_payload",
                   "control_char_in_envelope", "oversize_1mb", "key_mismatch", "null_key", "spoofed_dlt_headers"}
_EITHER = {"deep_nesting", "big_integer", "unknown_event_type", "newer_schema_version"}


def _expect_on_commands(name: str) -> frozenset[str]:
    """On `enrollment.commands` a payload that decodes but breaks its contract is a rejection."""
    if name in _ENVELOPE_LEVEL:
        return frozenset({DEAD})
    if name in _EITHER:  # the envelope decodes; whether the payload then counts as invalid is the service's call
        return frozenset({DEAD, REJECTED})
    return frozenset({REJECTED})


HINTS: dict[str, str] = {
    "not_json": r"json",
    "invalid_utf8": r"utf-?8|unicode|encoding",
    "empty_value": r"empty|no value|null|tombstone|missing",
    "null_value": r"empty|no value|null|tombstone|missing",
    "json_array": r"object|array",
    "deep_nesting": r"deep|depth|nest|recursion",
    "big_integer": r"digit|number|integer|too long|too large",
    "unknown_event_type": r"event_type|unknown|unexpected",
    "newer_schema_version": r"schema_version|newer",
    "missing_payload": r"payload",
    "huge_string": r"long|length|characters|at most",
    "nul_in_string": r"control|\bnul\b|\\x00|\\u0000|character",
    "control_char_in_envelope": r"control|character",
    "oversize_1mb": r"size|large|bytes|limit",
    "key_mismatch": r"\bkey\b",
    "null_key": r"\bkey\b",
    "feb_30": r"date|day|month",
    "year_9999": r"date|year|range|9999",
    "wrong_container": r"array|list|object|dict|tuple|sequence|mapping|type",
    "spoofed_dlt_headers": r"json",
    "negative_amount": r"negative|greater than|>= ?0|minimum",
    "nan_amount": r"nan|finite|number",
    "amount_1e12": r"max|exceed|too large|limit|precision|at most|less than",
    "ten_thousand_lines": r"lines|items|at most|too many|size|large|bytes",
    "version_2e63": r"version|64|too large|less than|at most|integer",
    "version_3e9": r"",
}


def _datetime_field(path: str) -> bool:
    return path in ("occurred_at", "payload.detected_at")


def _wrong_container(tree: dict[str, Any], path: str) -> None:
    value = get_path(tree, path)
    if isinstance(value, list):  # an object where an array belongs
        set_path(tree, path, {str(i): v for i, v in enumerate(value)})
    elif path == "payload":  # no array in this payload: an array where the payload object belongs
        tree["payload"] = [value]
    else:
        set_path(tree, path, [x for kv in value.items() for x in kv])


def _oversize(key: bytes | None, value: bytes, headers: tuple[tuple[str, bytes], ...]) -> bytes:
    """`value` followed by blanks (still the same JSON) up to just under the broker's limit."""
    target = BROKER_MAX_MESSAGE_BYTES - 40
    padded = value + b" " * (target - record_size(key, value, headers))
    while record_size(key, padded, headers) > target:
        padded = padded[:-1]
    return padded


def _ten_thousand_lines(tree: dict[str, Any]) -> None:
    day = get_path(tree, "payload.admission_date")
    lines = [{"item_code": f"L{i}", "item_name": "x", "catalogue_class": "A", "quantity": "1", "unit": "u",
              "unit_price": "0.01", "amount": "0.01", "service_date": day} for i in range(10_000)]
    set_path(tree, "payload.lines", lines)
    set_path(tree, "payload.total_amount", "100.00")


def _cases_of(topic: str, bases: _Bases) -> list[Case]:
    fields = FIELDS[topic]
    cases: list[Case] = []

    def add(name: str, edit: Callable[[dict[str, Any]], Any] | None = None, *, key: Any = "same",
            value: Any = None, headers: tuple[tuple[str, bytes], ...] | None = None,
            expect: frozenset[str] | None = None, compress: bool = False, note: str = "") -> None:
        base = bases(topic, name)
        tree = copy.deepcopy(base.envelope)
        if edit is not None:
            edit(tree)
        raw = dumps(tree) if value is None else value(base)
        k = base.key.encode() if key == "same" else key
        h = base.headers if headers is None else headers
        if name == "oversize_1mb":
            raw = _oversize(k, raw, h)
        if expect is None:
            expect = _expect_on_commands(name) if topic == ENROLLMENT_COMMANDS else frozenset({DEAD})
        letter = record_size(k, raw, h) + 150  # the letter's dlt.* headers take at least this much
        cases.append(Case(topic, name, k, raw, h, expect, HINTS[name], base.event_id,
                          claim_of(topic, base.envelope["payload"]), compress,
                          truncated=DEAD in expect and raw is not None and letter > PRODUCER_MAX_REQUEST_SIZE,
                          note=note, base=base.value))

    def payload(name: str, value: Any) -> Callable[[dict[str, Any]], None]:
        return lambda tree: tree["payload"].__setitem__(name, value)

    add("not_json", value=lambda b: b.value[: len(b.value) // 2], note="the envelope cut in half")
    add("invalid_utf8", lambda t: t.__setitem__("producer", Raw(b'"op\xc3\x28erator"')),
        note="invalid UTF-8 bytes inside the producer string")
    add("empty_value", value=lambda b: b"")
    add("null_value", value=lambda b: None, note="a null value (what a tombstone is on a compacted topic)")
    add("json_array", value=lambda b: b"[" + b.value + b"]", note="the envelope inside an array")
    add("deep_nesting", payload("x_nested", Raw(b"[" * 100_000 + b"]" * 100_000)),
        note="an unknown payload field nested 100,000 deep")
    add("big_integer", payload("x_number", Raw(b"9" * 5000)), note="an unknown payload field, a 5,000-digit integer")
    add("unknown_event_type", lambda t: t.__setitem__("event_type", "NoSuchEvent"))
    add("newer_schema_version", lambda t: t.__setitem__("schema_version", t["schema_version"] + 1))
    add("missing_payload", lambda t: del_path(t, "payload"))
    add("huge_string", lambda t: set_path(t, fields.string, "x" * 100_000), note=f"{fields.string}: 100,000 characters")
    add("nul_in_string", lambda t: set_path(t, fields.string, str(get_path(t, fields.string) or "") + "\x00"),
        note=f"{fields.string} ends with NUL")
    add("control_char_in_envelope", lambda t: t.__setitem__("producer", t["producer"] + "\x1b[2J"),
        note="an ANSI escape in the producer")
    add("oversize_1mb", note="the valid envelope followed by blanks, just under the broker's 1 MiB limit")
    other = {PROVIDERS: "HXZ", ALERTS: f"{H_CLAIMS}:OTHER"}.get(topic, P_OTHER)
    add("key_mismatch", key=other.encode(), note="the key is another subject")
    if BY_NAME[topic].cleanup_policy != "compact":  # a compacted topic's broker refuses a record without key
        add("null_key", key=None)
    feb30, y9999 = ("2026-02-30T08:00:00Z", "9999-12-31T08:00:00Z") if _datetime_field(fields.date) else (
        "2026-02-30", "9999-12-31")
    add("feb_30", lambda t: set_path(t, fields.date, feb30), note=fields.date)
    add("year_9999", lambda t: set_path(t, fields.date, y9999), note=fields.date)
    add("wrong_container", lambda t: _wrong_container(t, fields.container), note=fields.container)
    add("spoofed_dlt_headers", value=lambda b: b"{not json",
        headers=(("dlt.original.topic", b"elsewhere"), ("dlt.original.partition", b"0"),
                 ("dlt.original.offset", b"0"), ("dlt.reason", b"spoofed")),
        note="not JSON, with headers that claim to be another record's dead letter")
    if fields.money is not None:
        money = fields.money
        add("negative_amount", lambda t: money(t, "negative"))
        add("nan_amount", lambda t: money(t, "nan"))
        add("amount_1e12", lambda t: money(t, "huge"), note="sums kept consistent")
    if topic == DISCHARGES:
        add("ten_thousand_lines", _ten_thousand_lines, compress=True,
            note="10,000 valid lines (about 1.5 MB, sent gzip-compressed)")
    if topic in (PERSONS, PROVIDERS):
        add("version_3e9", lambda t: set_path(t, "payload.version", 3_000_000_000), expect=frozenset({ACCEPTED}),
            note="valid: versions are 64-bit, so a projection must store it")
        add("version_2e63", lambda t: set_path(t, "payload.version", 2**63), note="one more than a 64-bit int holds")
    return cases


@functools.cache
def catalogue() -> tuple[Case, ...]:
    """Every case of every consumed topic, in `contracts.topics.TOPICS` order."""
    bases = _Bases()
    return tuple(case for spec in TOPICS for case in _cases_of(spec.name, bases))

