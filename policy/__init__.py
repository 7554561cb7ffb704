"""Policy profiles as data (政策参数): the schema, the loader and their errors.

    from policy import load_profile
    profile = load_profile("demo-county")
    profile.prices_scheme("resident")          # True; "employee" -> False (NO_POLICY)
    profile.basic_for("resident").deductible   # {"1": Decimal("40.00"), ...}

Every pure domain rule lives here, below the services, so that services, the audit, tools and
tests share one copy: the layers' calculators (`policy.calculators`), their decisions in terms of
the contracts (`policy.decisions`), eligibility (`policy.eligibility`) and the one-stop chain
(`policy.one_stop.settle_one_stop`). Identity numbers are in `contracts.identity`; money in
`contracts.money`.
"""

from policy.errors import InvalidClaimError, MissingOperatorInputs, NotPricedError, ProfileError
from policy.loader import (
    POLICIES_DIR,
    available_profiles,
    load_profile,
    operator_overrides,
    parse_assignment,
    parse_profile,
    read_overlay,
    read_yaml,
)
from policy.profile import (
    AssistancePolicy,
    AssistanceTier,
    AuditPolicy,
    Band,
    BasicPolicy,
    CatastrophicPolicy,
    ConditionGroup,
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
    "POLICIES_DIR",
    "AssistancePolicy", "AssistanceTier", "AuditPolicy", "Band", "BasicPolicy", "CatastrophicPolicy",
    "ConditionGroup", "ContinuityBonus", "DeductibleReduction", "EnrollmentPolicy", "InvalidClaimError",
    "MissingOperatorInputs", "NotPricedError", "OutOfPoolRule", "OutOfProvinceRule", "PolicyProfile", "ProfileError",
    "RatioRange", "SchemeVariant", "available_profiles", "load_profile", "operator_overrides", "parse_assignment",
    "parse_profile", "read_overlay", "read_yaml",
]
