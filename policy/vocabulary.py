"""The closed vocabularies a profile and a claim use (those of the contracts, plus hospital levels).

* catalogue classes of bill lines: ``A`` 甲类, ``B`` 乙类, ``C`` 丙类, ``SELF`` 全自费;
* person categories: ``ordinary`` 普通居民, ``dibao`` 低保, ``tekun`` 特困/五保/三无, ``disabled`` 残疾人
  (grade 1–4, 1–2 severe), ``youfu`` 重点优抚对象, ``family_planning`` 计划生育扶助对象,
  ``poverty_registered`` 建档立卡/脱贫/返贫致贫监测对象, ``orphan`` 孤儿;
* care locations: ``in_pool`` (the insured's own pool 统筹区), ``in_province`` (another pool of the
  same province), ``out_of_province``;
* hospital levels (医院级别) ``"1"``, ``"2"``, ``"3"`` and the Zhengzhou-style ``"community"`` row
  (社区卫生服务机构). Zhengzhou grades institutions by class (类) 1–3; they map onto the same keys.
"""

from __future__ import annotations

from typing import Literal, get_args

from contracts.settlement import Layer
from contracts.types import CareLocation, CatalogueClass, PersonCategory

__all__ = [
    "CARE_LOCATIONS", "CATALOGUE_CLASSES", "LAYERS", "LEVEL_KEYS", "PERSON_CATEGORIES", "CareLocation",
    "CatalogueClass", "Layer", "LevelKey", "PersonCategory", "claim_categories", "level_key",
]
from policy.errors import InvalidClaimError

LevelKey = Literal["1", "2", "3", "community"]

CATALOGUE_CLASSES: tuple[str, ...] = get_args(CatalogueClass)
PERSON_CATEGORIES: tuple[str, ...] = get_args(PersonCategory)
CARE_LOCATIONS: tuple[str, ...] = get_args(CareLocation)
LEVEL_KEYS: tuple[str, ...] = get_args(LevelKey)
LAYERS: tuple[str, ...] = get_args(Layer)


def level_key(level: int | str) -> LevelKey:
    """Normalise a hospital level (``3``, ``"3"``, ``"community"``) to its profile key."""
    if isinstance(level, bool):
        raise ValueError(f"not a hospital level: {level!r}")
    key = str(level).strip().lower()
    if key not in LEVEL_KEYS:
        raise ValueError(f"not a hospital level: {level!r} (expected one of {', '.join(LEVEL_KEYS)})")
    return key  # type: ignore[return-value]  # one of LEVEL_KEYS, checked above


def claim_categories(categories: object) -> frozenset[str]:
    """Validated person categories of a claim (unknown names are an invalid claim)."""
    if isinstance(categories, str) or not isinstance(categories, (frozenset, set, tuple, list)):
        raise InvalidClaimError("categories: must be a set of person categories")
    unknown = sorted(str(c) for c in categories if c not in PERSON_CATEGORIES)
    if unknown:
        raise InvalidClaimError(f"categories: unknown person category {', '.join(unknown)}")
    return frozenset(categories)
