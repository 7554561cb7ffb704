"""The hospital's discharge (出院结算申请): hospital → platform on `claims.discharges`, keyed by person id."""

from __future__ import annotations

from decimal import ROUND_HALF_UP
from typing import Annotated, Self

from pydantic import Field, model_validator

from contracts.envelope import Contract
from contracts.limits import (
    DISCHARGE_TOTAL_MAX,
    LINE_AMOUNT_MAX,
    MAX_BILL_LINES,
    MAX_DIAGNOSES,
    Code,
    Day,
    HospitalClaimId,
    PersonReference,
    ProviderId,
    Reason,
    text,
)
from contracts.money import FEN, Money, NonNegativeMoney
from contracts.types import CareLocation, CatalogueClass, Quantity

LineAmount = Annotated[NonNegativeMoney, Field(le=LINE_AMOUNT_MAX)]


class BillLine(Contract):
    """One itemised line of the inpatient bill (费用明细)."""

    item_code: Code
    item_name: Annotated[str, text(200)]
    catalogue_class: CatalogueClass
    quantity: Quantity
    unit: Annotated[str, text(20)]
    unit_price: LineAmount
    amount: LineAmount
    service_date: Day

    @model_validator(mode="after")
    def _amount_is_quantity_times_price(self) -> Self:
        expected = (self.quantity * self.unit_price).quantize(FEN, rounding=ROUND_HALF_UP)
        if self.amount != expected:
            raise ValueError(
                f"amount {self.amount} is not quantity × unit_price = {self.quantity} × {self.unit_price} = {expected}"
            )
        return self


def claim_id_of(hospital_id: str, hospital_claim_id: str) -> str:
    """The platform's claim id: unique per discharge across hospitals."""
    return f"{hospital_id}:{hospital_claim_id}"


class DischargeRecorded(Contract):
    """A discharge with its itemised bill, to be settled across all three layers."""

    hospital_claim_id: HospitalClaimId
    hospital_id: ProviderId
    person_id: PersonReference
    admission_date: Day
    discharge_date: Day
    care_location: CareLocation
    referred: bool = Field(description="transferred with a referral (转诊转院备案)")
    diagnosis_codes: tuple[Code, ...] = Field(min_length=1, max_length=MAX_DIAGNOSES)
    lines: tuple[BillLine, ...] = Field(min_length=1, max_length=MAX_BILL_LINES)
    total_amount: NonNegativeMoney = Field(le=DISCHARGE_TOTAL_MAX, description="sum of the lines' amounts")

    def message_key(self) -> str:
        return self.person_id

    @property
    def claim_id(self) -> str:
        return claim_id_of(self.hospital_id, self.hospital_claim_id)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.discharge_date < self.admission_date:
            raise ValueError(f"discharge_date {self.discharge_date} is before admission_date {self.admission_date}")
        for i, line in enumerate(self.lines):
            if not self.admission_date <= line.service_date <= self.discharge_date:
                raise ValueError(f"lines[{i}].service_date {line.service_date} is outside the stay")
        total = sum((line.amount for line in self.lines), start=FEN * 0)
        if total != self.total_amount:
            raise ValueError(f"total_amount {self.total_amount} is not the sum of the lines {total}")
        return self


class DischargeCorrected(DischargeRecorded):
    """A corrected discharge (重新结算): the claim's whole new content under the same claim id, from
    the hospital that filed it. It keeps the claim's place in its person-year; the claim and every
    later claim of that year are priced again. The person and the insurance year cannot change
    (reverse the claim and send a new discharge instead)."""

    correction_reason: Reason


class ReversalRequested(Contract):
    """A reversal (冲正, the national platform's inpatient reversal 2305) of a settled claim, from the
    hospital that filed it. The claim nets to zero; every later claim of its person-year is priced
    again. Sending the same discharge again afterwards settles it again, in its original place."""

    hospital_claim_id: HospitalClaimId
    hospital_id: ProviderId
    person_id: PersonReference
    reason: Reason

    def message_key(self) -> str:
        return self.person_id

    @property
    def claim_id(self) -> str:
        return claim_id_of(self.hospital_id, self.hospital_claim_id)


ClaimRequest = DischargeRecorded | DischargeCorrected | ReversalRequested
"""What a hospital sends about a claim on `claims.discharges`, keyed by person id so that one
person's discharges, corrections and reversals stay in order."""
CLAIM_REQUEST_MODELS: tuple[type[Contract], ...] = (DischargeRecorded, DischargeCorrected, ReversalRequested)


__all__ = ["CLAIM_REQUEST_MODELS", "BillLine", "ClaimRequest", "DischargeCorrected", "DischargeRecorded", "Money",
           "ReversalRequested", "claim_id_of"]
