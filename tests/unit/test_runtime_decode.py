"""The consumer's decode step: good records pass, bad ones are dead-lettered with the reason,
and a subscription may ask to see invalid payloads itself (enrollment rejects them)."""

from aiokafka import ConsumerRecord

from contracts import DischargeRecorded, EnrollPerson, encode, make_envelope
from runtime.consumer import Subscription, decode_records


async def _noop(uow, batch) -> None:  # pragma: no cover - never called here
    pass


def record(value: bytes, offset: int = 0) -> ConsumerRecord:
    return ConsumerRecord(topic="enrollment.commands", partition=0, offset=offset, timestamp=0, timestamp_type=0,
                          key=b"k", value=value, checksum=None, serialized_key_size=1,
                          serialized_value_size=len(value), headers=[])


def enroll(categories=("ordinary",)) -> bytes:
    cmd = EnrollPerson(person_id="11010519491231002X", name="n", scheme="resident", categories=categories,
                       payment_date="2025-12-01", coverage_year=2026)
    return encode(make_envelope(cmd, correlation_id="p", producer="test"))


def test_routing_of_good_undecodable_and_invalid_records() -> None:
    good = enroll()
    invalid = good.replace(b'"ordinary"', b'"nobody"')
    sub = Subscription("enrollment.commands", _noop, (EnrollPerson,))
    inbound, dead = decode_records([record(good, 0), record(b"not json", 1), record(invalid, 2)], sub)
    assert [m.offset for m in inbound] == [0]
    assert isinstance(inbound[0].payload, EnrollPerson)
    assert [(d.offset, d.field) for d in dead] == [(1, None), (2, "payload.categories.0")]
    assert "not JSON" in dead[0].reason


def test_invalid_payloads_can_go_to_the_handler_but_wrong_types_still_dead_letter() -> None:
    invalid = enroll().replace(b'"ordinary"', b'"nobody"')
    wrong_type = enroll()
    sub = Subscription("enrollment.commands", _noop, (DischargeRecorded,), invalid_payloads_to_handler=True)
    inbound, dead = decode_records([record(invalid, 0)], Subscription(
        "enrollment.commands", _noop, (EnrollPerson,), invalid_payloads_to_handler=True))
    assert inbound[0].error is not None and dead == []
    inbound, dead = decode_records([record(wrong_type, 1)], sub)
    assert inbound == [] and dead[0].field == "event_type"
