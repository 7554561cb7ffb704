"""The limits of the contracts: what a record on any topic may be, and the bounded value types the
models are built from.

Every stored field is bounded exactly as its PostgreSQL column is, so that what a contract
accepts, the database stores (a value the column would refuse is refused at the door, with the
field named, instead of failing a transaction later). The limits, and why:

| limit | value | why |
|---|---|---|
| a record's value | 512 KiB (`MAX_RECORD_BYTES`), checked on the raw bytes before parsing | a 2,000-line bill is about 300 KiB; the broker's own limit is 1 MiB |
| JSON nesting | 200 levels, refused by the parser (jiter's recursion limit); the models are at most 6 deep | a deeply nested value cannot exhaust the stack |
| JSON numbers | integers of more than 4,300 digits are refused by the parser; every numeric field has bounds | |
| money | at most 12 integer digits and 2 decimals (`MONEY_MAX`, the `numeric(14, 2)` columns) | |
| a bill line's unit price and amount | at most 10,000,000.00 yuan (`LINE_AMOUNT_MAX`, illustrative sanity bound) | |
| a discharge's total | at most 100,000,000.00 yuan (`DISCHARGE_TOTAL_MAX`, illustrative sanity bound) | |
| bill lines per discharge | at most 2,000 (`MAX_BILL_LINES`) | |
| business dates | 2000-01-01 … 2099-12-31 (`DATE_MIN`, `DATE_MAX`); timestamps likewise | year 9999 would be stored as `infinity` |
| strings | a maximum length per field; no control characters (U+0000–U+001F, U+007F) | PostgreSQL text cannot hold NUL; logs and terminals stay clean |
| versions | 1 … 2^63 − 1 (`bigint` columns) | |
| the message key | must equal the payload's subject (`Contract.message_key()`) | a wrong key breaks per-person ordering |
| layer results (`contracts.settlement`) | a claim's parts add up to its total cost; a rejected result carries no layer's decision; what the layers paid plus the in-policy residual is at most the total cost | the next layer writes a statement from it: one it could not state (parts not adding up, a negative patient share, an overflow) is refused at the door |

`tests/contract_extremes.py` builds every contract with each field at its extreme accepted value;
`tests/integration/test_contract_limits.py` shows every service stores them.

The two money sanity bounds are not policy numbers (no source document gives one); they are
technical bounds far above any real inpatient bill, to be raised by an operator if ever needed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints

MAX_RECORD_BYTES = 512 * 1024
MAX_BILL_LINES = 2_000
MAX_DIAGNOSES = 50
MAX_HISTORY = 1_000
"""Entries in a person's category, coverage or suspension history."""

MONEY_MAX = Decimal("999999999999.99")
"""The largest amount a `numeric(14, 2)` column holds."""
LINE_AMOUNT_MAX = Decimal("10000000.00")
DISCHARGE_TOTAL_MAX = Decimal("100000000.00")

DATE_MIN = date(2000, 1, 1)
DATE_MAX = date(2099, 12, 31)
TIMESTAMP_MIN = datetime(2000, 1, 1, tzinfo=UTC)
TIMESTAMP_MAX = datetime(2100, 1, 1, tzinfo=UTC)
YEAR_MIN, YEAR_MAX = DATE_MIN.year, DATE_MAX.year

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
MAX_LICENSED_BEDS = 100_000

NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"
"""Pattern of every free-text field: anything printable, no control characters."""
IDENTIFIER = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"
"""Pattern of a hospital's or provider's id and a pool code (no ':' — it separates a claim id)."""
HOSPITAL_CLAIM_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-/]*$"
PERSON_REFERENCE = r"^[A-Za-z0-9]+$"
"""A person id as a hospital or an operator sent it (enrollment checks the identity number itself)."""
IDENTITY_NUMBER = r"^[0-9]{17}[0-9X]$"
"""A valid resident identity number's shape (GB 11643); registry snapshots carry only valid ones."""
CLAIM_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*:[A-Za-z0-9][A-Za-z0-9_.\-/]*$"
CODE = r"^[A-Za-z0-9][A-Za-z0-9_.+\-/]*$"
"""A diagnosis or item code (ICD-10 such as `I63.9`, national item codes)."""


def text(max_length: int, *, min_length: int = 1) -> object:
    """Constraints of a free-text field: a length range and no control characters."""
    return StringConstraints(min_length=min_length, max_length=max_length, pattern=NO_CONTROL_CHARACTERS)


def matching(pattern: str, max_length: int, *, min_length: int = 1) -> object:
    """Constraints of an id or a code: a length range and its pattern."""
    return StringConstraints(min_length=min_length, max_length=max_length, pattern=pattern)


ProviderId = Annotated[str, matching(IDENTIFIER, 40)]
HospitalClaimId = Annotated[str, matching(HOSPITAL_CLAIM_ID, 64)]
ClaimId = Annotated[str, matching(CLAIM_ID, 105)]
PersonReference = Annotated[str, matching(PERSON_REFERENCE, 32)]
IdentityNumber = Annotated[str, matching(IDENTITY_NUMBER, 18)]
Code = Annotated[str, matching(CODE, 50)]
PoolCode = Annotated[str, matching(IDENTIFIER, 40)]
Name = Annotated[str, text(100)]
Reason = Annotated[str, text(1000)]

Day = Annotated[date, Field(ge=DATE_MIN, le=DATE_MAX, json_schema_extra={
    "formatMinimum": DATE_MIN.isoformat(), "formatMaximum": DATE_MAX.isoformat()})]
"""A business date (admission, discharge, payment, effective dates)."""
Timestamp = Annotated[AwareDatetime, Field(ge=TIMESTAMP_MIN, lt=TIMESTAMP_MAX, json_schema_extra={
    "formatMinimum": TIMESTAMP_MIN.isoformat(), "formatExclusiveMaximum": TIMESTAMP_MAX.isoformat()})]
"""A timezone-aware instant (occurred_at, settled_at, detected_at)."""
Year = Annotated[int, Field(ge=YEAR_MIN, le=YEAR_MAX)]
Version = Annotated[int, Field(ge=1, le=INT64_MAX)]
ProfileVersion = Annotated[int, Field(ge=1, le=INT32_MAX)]


_CONTROL = dict.fromkeys([*range(0x20), 0x7F])


def printable(value: object, max_length: int) -> str:
    """`value` as text fit for a bounded free-text field: control characters removed, cut to
    `max_length` characters (an ellipsis marks a cut). For echoing what a client sent."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > 4 * max_length:
        text = text[: 4 * max_length]
    text = text.translate(_CONTROL)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= max_length else text[: max_length - 1] + "…"
