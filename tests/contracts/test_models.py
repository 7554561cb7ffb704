"""Contract models: money as decimal strings, validation errors that name the field, round trips."""

from datetime import date
from decimal import Decimal

import pytest

from contracts import (
    BasicSettled,
    BillLine,
    CatastrophicSettled,
    ClaimSummary,
    ContractError,
    DischargeRecorded,
    EnrollPerson,
    SettlementStatement,
    decode,
    derived_event_id,
    encode,
    make_envelope,
)


def line(cls: str = "A", qty: str = "2", price: str = "10.25", amount: str = "20.50") -> dict:
    return {"item_code": "X1", "item_name": "bed", "catalogue_class": cls, "quantity": qty, "unit": "day",
            "unit_price": price, "amount": amount, "service_date": "2026-03-02"}


def discharge(**over) -> dict:
    base = {"hospital_claim_id": "C1", "hospital_id": "H1", "person_id": "11010519491231002X",
            "admission_date": "2026-03-01", "discharge_date": "2026-03-05", "care_location": "in_pool",
            "referred": False, "diagnosis_codes": ["J18.9"], "lines": [line()], "total_amount": "20.50"}
    base.update(over)
    return base


def test_money_round_trips_as_a_decimal_string() -> None:
    d = DischargeRecorded.model_validate(discharge())
    assert d.total_amount == Decimal("20.50")
    env = make_envelope(d, correlation_id=d.claim_id, producer="hospital:H1")
    raw = encode(env)
    assert b'"total_amount":"20.50"' in raw
    assert decode(raw, DischargeRecorded).payload == d


def test_float_money_is_refused() -> None:
    with pytest.raises(ValueError, match="not a float"):
        BillLine.model_validate(line(price=10.25, amount="20.50"))  # type: ignore[arg-type]


def test_more_than_two_places_is_refused() -> None:
    with pytest.raises(ValueError, match="two decimals"):
        BillLine.model_validate(line(price="10.255", amount="20.51"))


def test_line_amount_must_be_quantity_times_price() -> None:
    with pytest.raises(ValueError, match="quantity × unit_price"):
        BillLine.model_validate(line(amount="20.49"))


def test_total_must_be_sum_of_lines_and_dates_in_order() -> None:
    with pytest.raises(ValueError, match="not the sum of the lines"):
        DischargeRecorded.model_validate(discharge(total_amount="20.00"))
    with pytest.raises(ValueError, match="before admission_date"):
        DischargeRecorded.model_validate(discharge(discharge_date="2026-02-01"))


def test_decode_names_the_failing_field() -> None:
    env = make_envelope(DischargeRecorded.model_validate(discharge()), correlation_id="H1:C1", producer="t")
    raw = encode(env).replace(b'"catalogue_class":"A"', b'"catalogue_class":"Z"')
    with pytest.raises(ContractError) as err:
        decode(raw, DischargeRecorded)
    assert err.value.field == "payload.lines.0.catalogue_class"


def test_decode_refuses_garbage_and_unexpected_types() -> None:
    with pytest.raises(ContractError, match="not JSON"):
        decode(b"\xff{", DischargeRecorded)
    enroll = EnrollPerson(person_id="x", name="n", scheme="resident", categories=("ordinary",),
                          payment_date=date(2026, 1, 5), coverage_year=2026)
    with pytest.raises(ContractError, match="unexpected event_type"):
        decode(encode(make_envelope(enroll, correlation_id="x", producer="t")), DischargeRecorded)


def test_derived_ids_are_deterministic() -> None:
    assert derived_event_id("BasicSettled", "H1:C1") == derived_event_id("BasicSettled", "H1:C1")
    assert derived_event_id("BasicSettled", "H1:C1") != derived_event_id("BasicSettled", "H1:C2")


def test_statement_parts_must_add_up() -> None:
    fields = dict(claim_id="H1:C1", hospital_claim_id="C1", hospital_id="H1", person_id="p",
                  admission_date="2026-01-01", discharge_date="2026-01-02", insurance_year=2026, outcome="settled",
                  total_cost="100.00", in_policy="100.00", out_of_policy="0.00", hifp_pay="40.00",
                  hifmi_pay="0.00", maf_pay="0.00", fund_pay_sumamt="40.00", psn_pay="60.00",
                  settled_at="2026-01-02T10:00:00+08:00")
    SettlementStatement.model_validate(fields)
    with pytest.raises(ValueError, match="psn_pay"):
        SettlementStatement.model_validate({**fields, "psn_pay": "59.99"})


def summary(**over) -> dict:
    base = {"claim_id": "H1:C1", "hospital_claim_id": "C1", "hospital_id": "H1", "person_id": "p",
            "discharge_event_id": "e1", "admission_date": "2026-01-01", "discharge_date": "2026-01-02",
            "insurance_year": 2026, "care_location": "in_pool", "referred": False, "scheme": "resident",
            "total_cost": "100.00", "in_policy": "80.00", "out_of_policy": "20.00",
            "amounts_by_class": {"A": "80.00", "C": "20.00"}}
    base.update(over)
    return base


def layer(name: str, paid: str) -> dict:
    return {"layer": name, "base": "80.00", "deductible": "0.00", "paid": paid, "accumulator_before": "0.00",
            "accumulator_after": paid, "profile_id": "demo-county", "profile_version": 1}


def test_a_claim_summarys_parts_must_add_up() -> None:
    ClaimSummary.model_validate(summary())
    with pytest.raises(ValueError, match="out_of_policy"):
        ClaimSummary.model_validate(summary(out_of_policy="19.99"))
    with pytest.raises(ValueError, match="amounts_by_class"):
        ClaimSummary.model_validate(summary(amounts_by_class={"A": "999999999999.99", "C": "20.00"}))


def test_a_layer_result_the_statement_could_not_state_is_refused() -> None:
    """Each of these was accepted by the contract, and the assistance service then failed to write
    its statement (parts not adding up, a negative patient share, an overflow): dead-lettered."""
    settled = {"claim": summary(), "outcome": "settled", "basic": layer("basic", "40.00"),
               "catastrophic": layer("catastrophic", "10.00"), "residual_in_policy": "30.00"}
    CatastrophicSettled.model_validate(settled)
    BasicSettled.model_validate({**settled, "residual_in_policy": "40.00", "catastrophic_base": "40.00"})
    rejection = {"reason_code": "NOT_ENROLLED", "reason": "no enrollment"}
    with pytest.raises(ValueError, match="rejected result carries its rejection and no layer"):
        CatastrophicSettled.model_validate({**settled, "outcome": "rejected", "rejection": rejection})
    with pytest.raises(ValueError, match="rejected result carries its rejection"):
        CatastrophicSettled.model_validate({**settled, "outcome": "rejected", "basic": None, "catastrophic": None})
    with pytest.raises(ValueError, match="settled result carries the basic layer"):
        CatastrophicSettled.model_validate({**settled, "basic": None})
    with pytest.raises(ValueError, match="settled result carries the basic layer"):
        CatastrophicSettled.model_validate({**settled, "claim": summary(scheme=None)})
    with pytest.raises(ValueError, match="more than the claim's total cost"):
        CatastrophicSettled.model_validate({**settled, "residual_in_policy": "50.01"})
    with pytest.raises(ValueError, match="more than the claim's in-policy cost"):
        BasicSettled.model_validate({**settled, "residual_in_policy": "40.01", "catastrophic_base": "0.00"})
