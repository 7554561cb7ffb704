"""Layer results and the one-stop settlement statement (一站式结算单), platform → hospital.

Each layer hands on the claim summary it received plus its own detail row:
`BasicSettled` (basic insurance 基本医保) → `CatastrophicSettled` (critical-illness insurance 大病保险)
→ `SettlementStatement` (after medical assistance 医疗救助). A claim rejected by settlement travels
the same path with `outcome = "rejected"` so that every discharge ends as exactly one statement.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, ClassVar, Literal, Self

from pydantic import Field, model_validator

from contracts.envelope import Contract
from contracts.limits import (
    INT32_MAX,
    MAX_DIAGNOSES,
    ClaimId,
    Code,
    Day,
    HospitalClaimId,
    PersonReference,
    ProfileVersion,
    ProviderId,
    Reason,
    Timestamp,
    Year,
    text,
)
from contracts.money import Money, NonNegativeMoney
from contracts.types import (
    CareLocation,
    CatalogueClass,
    ClaimRejectionCode,
    PersonCategory,
    ProviderLevel,
    Ratio,
    RequestRefusalCode,
    Scheme,
)

Layer = Literal["basic", "catastrophic", "assistance"]
Outcome = Literal["settled", "rejected"]


class Rejection(Contract):
    reason_code: ClaimRejectionCode
    reason: Reason
    related_claim_id: ClaimId | None = Field(default=None, description="a duplicate bill: the earlier claim of the stay")


class Cause(Contract):
    """Why a claim's settlement was revised: a hospital's correction or reversal of a claim (this one
    or an earlier one of the same person-year, whose change moved the accumulators), or the
    claim's reinstatement (sent again after its reversal)."""

    kind: Literal["correction", "reversal", "reinstatement"]
    claim_id: ClaimId = Field(description="the claim the hospital's request was about")
    reason: Reason
    request_event_id: Annotated[str, text(64)] = Field(description="event id of the hospital's request")


Revision = Annotated[int, Field(ge=1, le=INT32_MAX, description="1 for the first settlement of a claim, then +1 "
                                                                  "for every revision")]


class ClaimSummary(Contract):
    """What every layer needs to know about the claim, fixed by settlement."""

    claim_id: ClaimId
    hospital_claim_id: HospitalClaimId
    hospital_id: ProviderId
    person_id: PersonReference
    discharge_event_id: Annotated[str, text(64)]
    admission_date: Day
    discharge_date: Day
    insurance_year: Year = Field(description="calendar year of the discharge date")
    care_location: CareLocation
    referred: bool
    hospital_level: ProviderLevel | None = Field(default=None, description="from the provider registry")
    scheme: Scheme | None = None
    categories: tuple[PersonCategory, ...] = Field(default=(), max_length=8)
    disability_grade: int | None = Field(default=None, ge=1, le=4)
    total_cost: NonNegativeMoney
    in_policy: NonNegativeMoney = Field(description="政策范围内费用: classes the profile counts in policy")
    out_of_policy: NonNegativeMoney
    amounts_by_class: dict[CatalogueClass, NonNegativeMoney]
    profile_id: Annotated[str, text(100)] | None = None
    profile_version: ProfileVersion | None = None
    position: int | None = Field(default=None, ge=1, le=INT32_MAX, description=(
        "the claim's place among its person-year's claims, by first arrival (assigned by settlement); "
        "every layer prices a person-year's claims in this order"))
    diagnosis_codes: tuple[Code, ...] = Field(default=(), max_length=MAX_DIAGNOSES, description=(
        "the discharge's diagnosis codes (ICD-10), copied by settlement (schema version 3): a profile's condition "
        "groups (病种组) are judged on them, e.g. Daqing's critical illness covers three diseases only; empty in "
        "results of version 2 and before"))

    @model_validator(mode="after")
    def _parts_add_up(self) -> Self:
        if self.in_policy + self.out_of_policy != self.total_cost:
            raise ValueError(f"in_policy {self.in_policy} + out_of_policy {self.out_of_policy} != total_cost "
                             f"{self.total_cost}")
        by_class = sum(self.amounts_by_class.values(), start=Decimal("0.00"))
        if by_class != self.total_cost:
            raise ValueError(f"amounts_by_class add up to {by_class}, not total_cost {self.total_cost}")
        return self


def _check_layers(result: BasicSettled | CatastrophicSettled, *layers: LayerDetail | None) -> None:
    """What the next layer and the statement rely on: a reversed result carries its cause and no
    layer's decision; a rejected result carries its rejection and no layer's decision; a settled
    one the basic layer's decision and the person's scheme; and what the layers paid plus the
    in-policy residual never exceeds the claim's total cost (so the statement's parts add up and
    the patient's share is not negative)."""
    if result.reversed:
        if result.cause is None or any(layer is not None for layer in layers) or result.residual_in_policy != 0:
            raise ValueError("a reversed result carries its cause, no layer's decision and no residual")
        return
    if result.outcome == "rejected":
        if result.rejection is None or any(layer is not None for layer in layers):
            raise ValueError("a rejected result carries its rejection and no layer's decision")
        return
    if result.basic is None or result.claim.scheme is None:
        raise ValueError("a settled result carries the basic layer's decision and the person's scheme")
    paid = sum((layer.paid for layer in layers if layer is not None), start=Decimal("0.00"))
    if paid + result.residual_in_policy > result.claim.total_cost:
        raise ValueError(f"the layers paid {paid} and leave {result.residual_in_policy} in policy: more than the "
                         f"claim's total cost {result.claim.total_cost}")


class BandPayment(Contract):
    """Part of a catastrophic payment that falls in one band (分段)."""

    lower: NonNegativeMoney
    upper: NonNegativeMoney | None = None
    ratio: Ratio
    amount: NonNegativeMoney = Field(description="amount of this claim's accumulation inside the band")
    paid: NonNegativeMoney


class LayerDetail(Contract):
    """One layer's decision on one claim."""

    layer: Layer
    base: NonNegativeMoney = Field(description="the amount this layer priced (its input residual)")
    deductible: NonNegativeMoney = Field(description="basic: deductible (起付线); catastrophic: threshold; assistance: 0")
    ratio: Ratio | None = Field(default=None, description="the ratio applied; None where bands applied")
    paid: NonNegativeMoney
    accumulator_before: NonNegativeMoney
    accumulator_after: NonNegativeMoney
    cap: NonNegativeMoney | None = None
    cap_left: NonNegativeMoney | None = None
    bands: tuple[BandPayment, ...] = Field(default=(), max_length=50)
    note: Annotated[str, text(500)] | None = None
    profile_id: Annotated[str, text(100)]
    profile_version: ProfileVersion


class BasicSettled(Contract):
    """Basic insurance's result (settlement service → `claims.basic-settled`)."""

    SCHEMA_VERSION: ClassVar[int] = 3
    """3: the claim summary carries the diagnosis codes (optional; version 2 messages are read as before)."""

    claim: ClaimSummary
    outcome: Outcome
    rejection: Rejection | None = None
    basic: LayerDetail | None = None
    residual_in_policy: NonNegativeMoney = Field(description="in-policy cost left after basic: in_policy - basic")
    catastrophic_base: NonNegativeMoney = Field(description="max(in_policy - deductible, 0) - basic: what accumulates for critical illness")
    revision: Revision = 1
    reversed: bool = Field(default=False, description="the claim was reversed: it pays nothing and counts for nothing")
    cause: Cause | None = Field(default=None, description="why this revision (None for a claim's first settlement)")

    def message_key(self) -> str:
        return self.claim.person_id

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_layers(self, self.basic)
        if self.basic is not None and self.basic.paid + self.residual_in_policy > self.claim.in_policy:
            raise ValueError(f"basic paid {self.basic.paid} and leaves {self.residual_in_policy} in policy: more "
                             f"than the claim's in-policy cost {self.claim.in_policy}")
        return self


class CatastrophicSettled(Contract):
    """Critical-illness insurance's result (catastrophic service → `claims.catastrophic-settled`)."""

    SCHEMA_VERSION: ClassVar[int] = 3
    """3: the claim summary carries the diagnosis codes (optional; version 2 messages are read as before)."""

    claim: ClaimSummary
    outcome: Outcome
    rejection: Rejection | None = None
    basic: LayerDetail | None = None
    catastrophic: LayerDetail | None = None
    residual_in_policy: NonNegativeMoney = Field(description="in-policy cost left after basic and critical illness")
    revision: Revision = 1
    reversed: bool = Field(default=False, description="the claim was reversed: it pays nothing and counts for nothing")
    cause: Cause | None = Field(default=None, description="why this revision (None for a claim's first settlement)")

    def message_key(self) -> str:
        return self.claim.person_id

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _check_layers(self, self.basic, self.catastrophic)
        return self


class SettlementStatement(Contract):
    """The one-stop settlement result for one discharge, shaped like the national platform's
    settlement output (medfee_sumamt, hifp_pay, hifmi_pay, maf_pay, fund_pay_sumamt, psn_pay)."""

    claim_id: ClaimId
    hospital_claim_id: HospitalClaimId
    hospital_id: ProviderId
    person_id: PersonReference
    admission_date: Day
    discharge_date: Day
    insurance_year: Year
    outcome: Outcome
    rejection: Rejection | None = None
    total_cost: NonNegativeMoney = Field(description="medfee_sumamt 医疗费总额")
    in_policy: NonNegativeMoney = Field(description="inscp_scp_amt 符合政策范围金额")
    out_of_policy: NonNegativeMoney = Field(description="全自费 + 丙类: paid by the patient")
    hifp_pay: NonNegativeMoney = Field(description="basic fund paid 统筹基金支出")
    hifmi_pay: NonNegativeMoney = Field(description="critical-illness insurance paid 大病保险支出")
    maf_pay: NonNegativeMoney = Field(description="medical assistance paid 医疗救助基金支出")
    fund_pay_sumamt: NonNegativeMoney = Field(description="all funds 基金支付总额")
    psn_pay: NonNegativeMoney = Field(description="the patient pays 个人负担")
    details: tuple[LayerDetail, ...] = Field(default=(), max_length=3)
    profile_id: Annotated[str, text(100)] | None = None
    profile_version: ProfileVersion | None = None
    settled_at: Timestamp
    revision: Revision = Field(default=1, description="the assistance layer's revision of the claim it states")

    def message_key(self) -> str:
        return self.person_id

    @model_validator(mode="after")
    def _parts_add_up(self) -> Self:
        _amounts_add_up(self)
        if self.outcome == "rejected" and (self.rejection is None or self.fund_pay_sumamt != 0):
            raise ValueError("a rejected statement carries its rejection and no fund payment")
        return self


def _amounts_add_up(s: SettlementStatement | SettlementAdjusted | SettlementReversed) -> None:
    funds = s.hifp_pay + s.hifmi_pay + s.maf_pay
    if s.fund_pay_sumamt != funds:
        raise ValueError(f"fund_pay_sumamt {s.fund_pay_sumamt} != hifp+hifmi+maf {funds}")
    if funds + s.psn_pay != s.total_cost:
        raise ValueError(f"funds {funds} + psn_pay {s.psn_pay} != total_cost {s.total_cost}")
    if s.in_policy + s.out_of_policy != s.total_cost:
        raise ValueError("in_policy + out_of_policy != total_cost")


class _ClaimStatement(Contract):
    """The claim a statement after the first one is about."""

    claim_id: ClaimId
    hospital_claim_id: HospitalClaimId
    hospital_id: ProviderId
    person_id: PersonReference
    admission_date: Day
    discharge_date: Day
    insurance_year: Year
    revision: Revision = Field(description="the assistance layer's revision of the claim this statement follows")
    cause: Cause
    settled_at: Timestamp

    def message_key(self) -> str:
        return self.person_id


class SettlementAdjusted(_ClaimStatement):
    """An adjustment statement (补退): what a revision of the claim's settlement changes, per fund and
    for the patient (amounts are differences: negative where the fund or the patient pays less).
    The claim's net amounts are the sum of all its statements. `cause` names the claim whose
    correction or reversal moved this one and why."""

    outcome: Outcome = Field(description="the claim's outcome after the revision")
    rejection: Rejection | None = None
    total_cost: Money = Field(description="change of medfee_sumamt (a correction may change the bill)")
    in_policy: Money
    out_of_policy: Money
    hifp_pay: Money
    hifmi_pay: Money
    maf_pay: Money
    fund_pay_sumamt: Money
    psn_pay: Money
    details: tuple[LayerDetail, ...] = Field(default=(), max_length=3, description="the layers' decisions now")
    profile_id: Annotated[str, text(100)] | None = None
    profile_version: ProfileVersion | None = None

    @model_validator(mode="after")
    def _parts_add_up(self) -> Self:
        _amounts_add_up(self)
        return self


class SettlementReversed(_ClaimStatement):
    """A reversal statement (冲正): the claim's net amounts so far, negated, so that it nets to zero
    (for a claim never adjusted: the original statement's amounts negated)."""

    total_cost: Money
    in_policy: Money
    out_of_policy: Money
    hifp_pay: Money
    hifmi_pay: Money
    maf_pay: Money
    fund_pay_sumamt: Money
    psn_pay: Money

    @model_validator(mode="after")
    def _parts_add_up(self) -> Self:
        _amounts_add_up(self)
        return self


ClaimStatement = SettlementStatement | SettlementAdjusted | SettlementReversed
"""Every statement a hospital receives on `claims.statements`; a claim's net amounts are the sum
of its statements."""


class ClaimRequestRefused(Contract):
    """Settlement refused a hospital's request about a claim, with the reason (on `claims.refusals`)."""

    request_event_id: Annotated[str, text(64)]
    request_type: Annotated[str, text(64)]
    claim_id: ClaimId
    hospital_claim_id: HospitalClaimId
    hospital_id: ProviderId
    person_id: PersonReference
    reason_code: RequestRefusalCode
    reason: Reason

    def message_key(self) -> str:
        return self.person_id


LayerResult = BasicSettled | CatastrophicSettled | SettlementStatement
"""What a settlement layer publishes for a claim (each has an `outcome`)."""


__all__ = [
    "BandPayment", "BasicSettled", "CatastrophicSettled", "Cause", "ClaimRequestRefused", "ClaimStatement",
    "ClaimSummary", "LayerDetail", "LayerResult", "Money", "Rejection", "SettlementAdjusted", "SettlementReversed",
    "SettlementStatement",
]
