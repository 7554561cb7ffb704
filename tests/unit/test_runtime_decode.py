"""The consumer's decode step: good records pass, bad ones are dead-lettered with the reason,
and a subscription may ask to see invalid payloads itself (enrollment rejects them)."""

from aiokafka import ConsumerRecord

from contracts import DischargeRecorded, EnrollPerson, encode, make_envelope
from runtime.consumer import decode_records

PID = "11010519491231002X"


def record(value: bytes, offset: int = 0, key: bytes | None = PID.encode()) -> ConsumerRecord:
    return ConsumerRecord(topic="enrollment.commands", partition=0, offset=offset, timestamp=0, timestamp_type=0,
                          key=key, value=value, checksum=None, serialized_key_size=len(key or b""),
                          serialized_value_size=len(value), headers=[])


def enroll(categories=("ordinary",)) -> bytes:
    cmd = EnrollPerson(person_id=PID, name="n", scheme="resident", categories=categories,
                       payment_date="2025-12-01", coverage_year=2026)
    return encode(make_envelope(cmd, correlation_id="p", producer="test"))


def test_routing_of_good_undecodable_and_invalid_records() -> None:
    good = enroll()
    invalid = good.replace(b'"ordinary"', b'"nobody"')
    inbound, dead = decode_records([record(good, 0), record(b"not json", 1), record(invalid, 2)], (EnrollPerson,))
    assert [m.offset for m in inbound] == [0]
    assert isinstance(inbound[0].payload, EnrollPerson)
    assert [(d.offset, d.field) for d in dead] == [(1, None), (2, "payload.categories.0")]
    assert "not JSON" in dead[0].reason


def test_invalid_payloads_can_go_to_the_handler_but_wrong_types_still_dead_letter() -> None:
    invalid = enroll().replace(b'"ordinary"', b'"nobody"')
    inbound, dead = decode_records([record(invalid, 0)], (EnrollPerson,), invalid_payloads_to_handler=True)
    assert inbound[0].error is not None and dead == []
    inbound, dead = decode_records([record(enroll(), 1)], (DischargeRecorded,), invalid_payloads_to_handler=True)
    assert inbound == [] and dead[0].field == "event_type"


def test_a_record_keyed_by_another_subject_is_dead_lettered_with_that_reason() -> None:
    other = "110105194912310029"
    inbound, dead = decode_records([record(enroll(), 0, key=other.encode()), record(enroll(), 1, key=None)],
                                   (EnrollPerson,), invalid_payloads_to_handler=True)
    assert inbound == []
    assert [d.field for d in dead] == ["key", "key"]
    assert f"key {other!r}" in dead[0].reason and "no key" in dead[1].reason
    assert repr(PID) in dead[0].reason  # the key it must have
