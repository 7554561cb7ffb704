"""Event contracts of the one-stop settlement platform: every model on the wire, and nothing else.

Hospitals, operators and every service code against these models. Money is `Decimal` with two
places, serialised as a string. The committed JSON Schemas in `contracts/schemas/` are generated
from these models (`python -m contracts.schema write`).
"""

from contracts.audit import AuditAlert
from contracts.claims import BillLine, DischargeCorrected, DischargeRecorded, ReversalRequested, claim_id_of
from contracts.codec import (
    EVENT_TYPES,
    ContractError,
    check_key,
    decode,
    decode_envelope,
    decode_payload,
    encode,
)
from contracts.enrollment import (
    ChangeCategories,
    CommandRejected,
    EnrollPerson,
    PersonSnapshot,
    ProviderSnapshot,
    RecordDeath,
    RegisterProvider,
    ResumePerson,
    SuspendPerson,
)
from contracts.envelope import Contract, Envelope, derived_event_id, make_envelope
from contracts.settlement import (
    BasicSettled,
    CatastrophicSettled,
    Cause,
    ClaimRequestRefused,
    ClaimSummary,
    LayerDetail,
    Rejection,
    SettlementAdjusted,
    SettlementReversed,
    SettlementStatement,
)
from contracts.topics import TOPICS, dead_letter_topic

__all__ = [
    "EVENT_TYPES", "TOPICS", "AuditAlert", "BasicSettled", "BillLine", "CatastrophicSettled", "Cause",
    "ChangeCategories", "ClaimRequestRefused", "ClaimSummary", "CommandRejected", "Contract", "ContractError",
    "DischargeCorrected", "DischargeRecorded", "EnrollPerson", "Envelope", "LayerDetail", "PersonSnapshot",
    "ProviderSnapshot", "RecordDeath", "RegisterProvider", "Rejection", "ResumePerson", "ReversalRequested",
    "SettlementAdjusted", "SettlementReversed", "SettlementStatement", "SuspendPerson", "check_key", "claim_id_of",
    "dead_letter_topic", "decode", "decode_envelope", "decode_payload", "derived_event_id", "encode", "make_envelope",
]
