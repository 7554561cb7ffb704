"""Shared value types of the contracts (categories, classes, locations, ratios, quantities)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, PlainSerializer, WithJsonSchema

from contracts.money import parse_decimal

Scheme = Literal["resident", "employee"]
"""`resident` 城乡居民医保; `employee` 职工医保."""

PersonCategory = Literal[
    "ordinary",  # 普通居民
    "dibao",  # 低保
    "tekun",  # 特困/五保/三无
    "disabled",  # 残疾人 (grade 1–4; 1–2 severe)
    "youfu",  # 重点优抚对象
    "family_planning",  # 计划生育扶助对象
    "poverty_registered",  # 建档立卡/脱贫/返贫致贫监测对象
    "orphan",  # 孤儿
]

CatalogueClass = Literal["A", "B", "C", "SELF"]
"""Catalogue class of a bill line: `A` 甲类, `B` 乙类, `C` 丙类, `SELF` 全自费."""

CareLocation = Literal["in_pool", "in_province", "out_of_province"]
"""Where care was given: in the insured's pool, another pool of the same province, out of province."""

ProviderLevel = Annotated[int, Field(ge=1, le=3)]
"""Hospital level 1/2/3 (township health centres and community centres are level 1)."""

PersonStatus = Literal["active", "suspended", "deceased"]

ClaimRejectionCode = Literal[
    "NOT_ENROLLED", "WAITING_PERIOD", "SUSPENDED", "DECEASED", "NO_POLICY", "UNKNOWN_PROVIDER", "INVALID_CLAIM",
]
"""Why settlement refused a discharge (it ends as a rejected statement). A duplicate bill (a stay
overlapping a settled, unreversed stay of the same person at the same hospital) is `INVALID_CLAIM`
with `Rejection.related_claim_id` naming the earlier claim (a new code would break consumers of
the published versions)."""

RequestRefusalCode = Literal[
    "UNKNOWN_CLAIM", "ALREADY_REVERSED", "WRONG_HOSPITAL", "CONTENT_MISMATCH", "PERSON_CHANGED", "YEAR_CHANGED",
]
"""Why settlement refused a hospital's request about a claim (`ClaimRequestRefused`):
`UNKNOWN_CLAIM` a reversal or correction of a claim never settled; `ALREADY_REVERSED` a reversal or
correction of a reversed claim; `WRONG_HOSPITAL` a request from a hospital that did not file the
claim; `CONTENT_MISMATCH` a claim id sent again with other content without being a correction;
`PERSON_CHANGED` / `YEAR_CHANGED` a correction that moves the claim to another person or
insurance year (reverse it and send a new discharge instead)."""

CommandRejectionCode = Literal[
    "INVALID_ID_NUMBER", "INVALID_FIELD", "DATES_OUT_OF_ORDER", "UNKNOWN_PERSON", "UNKNOWN_COMMAND",
    "ALREADY_ENROLLED", "DECEASED", "NOT_SUSPENDED", "CONFLICT",
]
"""Why enrollment refused a command (`CommandRejected`)."""


_as_str = PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json")

Ratio = Annotated[
    Decimal,
    BeforeValidator(parse_decimal),
    Field(ge=0, le=1, max_digits=12),
    _as_str,
    WithJsonSchema({"type": "string", "pattern": r"^[01](\.\d+)?$", "description": "fraction 0..1"}),
]
"""A ratio as a fraction between 0 and 1, serialised as a decimal string ("0.40")."""

Quantity = Annotated[
    Decimal,
    BeforeValidator(parse_decimal),
    Field(gt=0, max_digits=12, decimal_places=3),
    _as_str,
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d{1,3})?$", "description": "positive quantity"}),
]
