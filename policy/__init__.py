"""Policy profiles as data (政策参数): the schema, the loader and their errors.

    from policy import load_profile
    profile = load_profile("demo-county")
    profile.prices_scheme("resident")          # True; "employee" -> False (NO_POLICY)
    profile.basic_for("resident").deductible   # {"1": Decimal("40.00"), ...}

The one-stop composition of the three layer calculators is `policy.one_stop.settle_one_stop`
(imported separately: it depends on the calculators in `services/`).
"""

from policy.errors import InvalidClaimError, NotPricedError, ProfileError
from policy.loader import POLICIES_DIR, available_profiles, load_profile, parse_profile, read_yaml
from policy.money import FEN, ZERO, round_fen
from policy.profile import (
    AssistancePolicy,
    AssistanceTier,
    AuditPolicy,
    Band,
    BasicPolicy,
    CatastrophicPolicy,
    ContinuityBonus,
    DeductibleReduction,
    EnrollmentPolicy,
    OutOfPoolRule,
    OutOfProvinceRule,
    PolicyProfile,
    RatioRange,
    SchemeVariant,
)

__all__ = [
    "FEN", "POLICIES_DIR", "ZERO",
    "AssistancePolicy", "AssistanceTier", "AuditPolicy", "Band", "BasicPolicy", "CatastrophicPolicy",
    "ContinuityBonus", "DeductibleReduction", "EnrollmentPolicy", "InvalidClaimError", "NotPricedError",
    "OutOfPoolRule", "OutOfProvinceRule", "PolicyProfile", "ProfileError", "RatioRange", "SchemeVariant",
    "available_profiles", "load_profile", "parse_profile", "read_yaml", "round_fen",
]
