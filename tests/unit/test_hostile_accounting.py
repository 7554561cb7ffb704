"""The hostile-input machinery itself: the catalogue covers what it must, the fuzz mutator is
deterministic by seed, and the accounting classifies records by the evidence it is given."""

from __future__ import annotations

import hashlib
import json

from contracts.topics import (
    ALERTS,
    BY_NAME,
    DISCHARGES,
    ENROLLMENT_COMMANDS,
    ENROLLMENT_REJECTIONS,
    PERSONS,
    STATEMENTS,
    TOPICS,
)
from tests.hostile.accounting import UNACCOUNTED, Evidence, Published, case_problem, classify, tally
from tests.hostile.catalogue import (
    ACCEPTED,
    BROKER_MAX_MESSAGE_BYTES,
    DEAD,
    PRODUCER_MAX_REQUEST_SIZE,
    REJECTED,
    catalogue,
    record_size,
)
from tests.hostile.fuzz import MUTATIONS, fuzz
from tests.hostile.jsonbytes import DupKey, Raw, dumps
from tests.hostile.world import fuzz_bases
from tests.integration.platform import person_id
from tools.generate import generate_discharges, generate_population
from tools.operator.dlt import Letter

EVERY_TOPIC = {"not_json", "invalid_utf8", "empty_value", "null_value", "json_array", "deep_nesting", "big_integer",
               "unknown_event_type", "newer_schema_version", "missing_payload", "huge_string", "nul_in_string",
               "control_char_in_envelope", "oversize_1mb", "key_mismatch", "feb_30", "year_9999", "wrong_container",
               "spoofed_dlt_headers"}


def test_every_consumed_topic_has_every_case() -> None:
    names: dict[str, set[str]] = {}
    for c in catalogue():
        names.setdefault(c.topic, set()).add(c.name)
    assert set(names) == {t.name for t in TOPICS}
    for t in TOPICS:
        assert names[t.name] >= EVERY_TOPIC, t.name
        assert ("null_key" in names[t.name]) == (t.cleanup_policy != "compact"), t.name
    for money in (DISCHARGES, "claims.basic-settled", "claims.catastrophic-settled", STATEMENTS):
        assert {"negative_amount", "nan_amount", "amount_1e12"} <= names[money]
    assert "ten_thousand_lines" in names[DISCHARGES]
    assert {"version_3e9", "version_2e63"} <= names[PERSONS]


def test_cases_have_their_own_ids_and_the_brief_numbers() -> None:
    cases = catalogue()
    assert len({c.event_id for c in cases}) == len(cases)
    claims = [c.claim_id for c in cases if c.claim_id]
    assert len(set(claims)) == len(claims)
    by = {c.id: c for c in cases}
    assert json.loads(by[f"{PERSONS}/version_3e9"].value)["payload"]["version"] == 3_000_000_000
    assert b'"amount":"1000000000000.00"' in by[f"{DISCHARGES}/amount_1e12"].value
    assert b"\\u0000" in by[f"{DISCHARGES}/nul_in_string"].value
    assert b'"9999-12-31"' in by[f"{DISCHARGES}/year_9999"].value
    assert json.loads(by[f"{DISCHARGES}/ten_thousand_lines"].value)["payload"]["lines"][9999]["item_code"] == "L9999"
    assert by[f"{DISCHARGES}/null_key"].key is None
    assert by[f"{DISCHARGES}/key_mismatch"].key != by[f"{DISCHARGES}/not_json"].key


def test_the_1mb_case_fits_the_broker_but_its_letter_cannot_fit_the_producer() -> None:
    for c in (c for c in catalogue() if c.name == "oversize_1mb"):
        size = record_size(c.key, c.value, c.headers)
        assert 1_000_000 < size <= BROKER_MAX_MESSAGE_BYTES, c.id
        letter_headers = (*c.headers, ("dlt.reason", b"record too large"), ("dlt.original.topic", c.topic.encode()),
                          ("dlt.original.partition", b"0"), ("dlt.original.offset", b"0"),
                          ("dlt.service", b"settlement"))
        assert record_size(c.key, c.value, letter_headers) > PRODUCER_MAX_REQUEST_SIZE, c.id
        assert c.truncated and json.loads(c.value) == json.loads(c.base)  # only blanks were added


def test_raw_fragments_and_duplicate_keys_are_written_verbatim() -> None:
    assert dumps({"a": Raw(b"9" * 5), "b": [Raw(b"[[]]")]}) == b'{"a":99999,"b":[[[]]]}'
    assert dumps({"k": 1, DupKey("k"): 2}) == b'{"k":1,"k":2}'
    assert dumps({"s": "\ud800"}) == b'{"s":"\xed\xa0\x80"}'  # a lone surrogate is invalid UTF-8


def _bases():
    providers, persons = generate_population(20, 3, seed=4, year=2026)
    return fuzz_bases(persons, providers, generate_discharges(6, seed=5, year=2026, providers=providers,
                                                              persons=persons), [person_id(600 + i) for i in range(5)])


def test_fuzz_is_deterministic_by_seed_and_covers_every_topic_and_mutation() -> None:
    bases = _bases()
    first = list(fuzz(bases, 600, seed=3))
    assert [(f.key, f.value) for f in first] == [(f.key, f.value) for f in fuzz(bases, 600, seed=3)]
    assert [f.value for f in first] != [f.value for f in fuzz(bases, 600, seed=4)]
    assert [f.value for f in fuzz(bases, 10, seed=3, start=100)] == [f.value for f in first[100:110]]
    assert {f.topic for f in first} == {t.name for t in TOPICS}
    assert {m for f in first for m in f.mutations} == set(MUTATIONS)
    assert len({f.event_id for f in first}) == len(first)
    assert all(f.key is not None for f in first if BY_NAME[f.topic].cleanup_policy == "compact")


# ------------------------------------------------------------------ the accounting


def rec(topic: str, offset: int, value: bytes | None = b"{", event_id: str | None = None,
        claim_id: str | None = None) -> Published:
    return Published(f"r{offset}", topic, 0, offset, b"k", value, event_id, claim_id)


def letter(original: Published, prefix: str = "p.") -> Letter:
    return Letter(prefix + original.topic + ".dlt", 0, 0, original.key, original.value,
                  {"dlt.original.topic": prefix + original.topic, "dlt.original.partition": "0",
                   "dlt.original.offset": str(original.offset), "dlt.reason": "not JSON", "dlt.service": "x"})


def test_records_are_classified_by_the_evidence() -> None:
    dead = rec(DISCHARGES, 1)
    rejected = rec(ENROLLMENT_COMMANDS, 2, event_id="e2")
    applied = rec(ENROLLMENT_COMMANDS, 3, event_id="e3")
    settled = rec(DISCHARGES, 4, value=b'{"event_id":"e4","payload":{"hospital_id":"H","hospital_claim_id":"4"}}')
    refused = rec(DISCHARGES, 5, claim_id="H:5")
    downstream = rec("claims.basic-settled", 6, claim_id="H:6")
    stored = rec(STATEMENTS, 7)
    stored_with_error = rec(ALERTS, 8)
    lost = rec(ENROLLMENT_REJECTIONS, 9)
    silent_command = rec(ENROLLMENT_COMMANDS, 10, event_id="e10")
    ev = Evidence(rejections={"e2": "INVALID_FIELD"}, applied={"e3"}, letter_claims={"H:6"},
                  stored={(STATEMENTS, 0, 7): None, (ALERTS, 0, 8): "invalid AuditAlert", (DISCHARGES, 0, 4): None})
    ev.letters[dead.origin] = [letter(dead)]
    ev.statements["H:4"] = {("s4", "settled")}
    ev.statements["H:5"] = {("s5", "rejected")}
    got = {r.label: classify(r, ev).outcome for r in
           (dead, rejected, applied, settled, refused, downstream, stored, stored_with_error, lost, silent_command)}
    assert got == {"r1": DEAD, "r2": REJECTED, "r3": ACCEPTED, "r4": ACCEPTED, "r5": REJECTED, "r6": ACCEPTED,
                   "r7": ACCEPTED, "r8": UNACCOUNTED, "r9": UNACCOUNTED, "r10": UNACCOUNTED}
    assert "with error" in classify(stored_with_error, ev).detail


def test_two_letters_for_one_record_are_counted() -> None:
    r = rec(DISCHARGES, 1)
    ev = Evidence()
    ev.letters[r.origin] = [letter(r), letter(r)]
    t = tally([r], ev)
    assert t.counts[DEAD] == 1 and t.twice == [r]


def test_a_case_fails_on_outcome_reason_owner_bytes_and_truncation() -> None:
    case = next(c for c in catalogue() if c.id == f"{DISCHARGES}/not_json")
    r = Published(case.id, case.topic, 0, 5, case.key, case.value, case.event_id, case.claim_id, case)
    ev = Evidence()
    assert "expected dead-lettered" in case_problem(r, classify(r, ev))
    good = Letter("p.claims.discharges.dlt", 0, 0, case.key, case.value,
                  {"dlt.original.topic": "p.claims.discharges", "dlt.original.partition": "0",
                   "dlt.original.offset": "5", "dlt.reason": "not JSON: Expecting ','", "dlt.service": "settlement"})
    ev.letters[r.origin] = [good]
    assert case_problem(r, classify(r, ev)) == ""
    for change, problem in (({"dlt.service": "audit"}, "not by the topic's owner"),
                            ({"dlt.reason": "handler error"}, "does not name the problem")):
        ev.letters[r.origin] = [Letter(good.topic, 0, 0, good.key, good.value, {**good.headers, **change})]
        assert problem in case_problem(r, classify(r, ev))
    ev.letters[r.origin] = [Letter(good.topic, 0, 0, good.key, b"other", good.headers)]
    assert "original bytes" in case_problem(r, classify(r, ev))

    big = next(c for c in catalogue() if c.id == f"{DISCHARGES}/oversize_1mb")
    r = Published(big.id, big.topic, 0, 6, big.key, big.value, big.event_id, big.claim_id, big)
    headers = {"dlt.original.topic": "p.claims.discharges", "dlt.original.partition": "0", "dlt.original.offset": "6",
               "dlt.reason": "record of 1,048,000 bytes exceeds the size limit", "dlt.service": "settlement"}
    ev.letters[r.origin] = [Letter(good.topic, 0, 0, big.key, big.value[:1000], headers)]
    assert "not marked dlt.truncated" in case_problem(r, classify(r, ev))
    truncated = {**headers, "dlt.truncated": "true", "dlt.original.length": str(len(big.value)),
                 "dlt.original.sha256": hashlib.sha256(big.value).hexdigest()}
    ev.letters[r.origin] = [Letter(good.topic, 0, 0, big.key, big.value[:1000], truncated)]
    assert case_problem(r, classify(r, ev)) == ""
