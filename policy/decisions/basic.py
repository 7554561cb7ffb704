"""Basic insurance (基本医保) decision for one discharge: eligibility, provider, policy, price.

Pure: it takes the discharge, the person and provider as the registry last published them, the
policy profile and the person's basic accumulator for the insurance year, and returns the
`BasicSettled` event plus the accumulator after the claim. A claim that cannot be priced is not
dropped: it becomes a `BasicSettled` with `outcome = "rejected"` and its reason code, which
travels down the layers and ends as a rejected statement.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from contracts import (
    BasicSettled,
    ClaimSummary,
    DischargeRecorded,
    LayerDetail,
    PersonSnapshot,
    ProviderSnapshot,
    Rejection,
)
from contracts.money import ZERO
from contracts.types import PersonCategory
from policy import InvalidClaimError, NotPricedError, PolicyProfile
from policy.calculators.basic import (
    BasicClaim,
    BasicResult,
    BasicYearState,
    settle_basic,
)
from policy.eligibility import Ineligible, eligibility


@dataclass(frozen=True)
class BasicDecision:
    event: BasicSettled
    result: BasicResult | None
    year_after: BasicYearState | None


def amounts_by_class_of(discharge: DischargeRecorded) -> dict[str, Decimal]:
    sums: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for line in discharge.lines:
        sums[line.catalogue_class] += line.amount
    return dict(sums)


def _summary(d: DischargeRecorded, event_id: str, profile: PolicyProfile, *, provider: ProviderSnapshot | None,
             person: PersonSnapshot | None, categories: tuple[PersonCategory, ...] = (), grade: int | None = None,
             in_policy: Decimal | None = None) -> ClaimSummary:
    by_class = amounts_by_class_of(d)
    in_pol = in_policy if in_policy is not None else ZERO
    return ClaimSummary(
        claim_id=d.claim_id, hospital_claim_id=d.hospital_claim_id, hospital_id=d.hospital_id, person_id=d.person_id,
        discharge_event_id=event_id, admission_date=d.admission_date, discharge_date=d.discharge_date,
        insurance_year=d.discharge_date.year, care_location=d.care_location, referred=d.referred,
        hospital_level=provider.level if provider else None, scheme=person.scheme if person else None,
        categories=categories, disability_grade=grade, total_cost=d.total_amount, in_policy=in_pol,
        out_of_policy=d.total_amount - in_pol, amounts_by_class=by_class, diagnosis_codes=d.diagnosis_codes,
        profile_id=profile.id, profile_version=profile.version)


def _rejected(d: DischargeRecorded, event_id: str, profile: PolicyProfile, code: str, reason: str, *,
              provider: ProviderSnapshot | None = None, person: PersonSnapshot | None = None,
              related_claim_id: str | None = None) -> BasicDecision:
    summary = _summary(d, event_id, profile, provider=provider, person=person)
    rejection = Rejection(reason_code=code, reason=reason, related_claim_id=related_claim_id)
    event = BasicSettled(claim=summary, outcome="rejected", rejection=rejection, residual_in_policy=ZERO,
                         catastrophic_base=ZERO)
    return BasicDecision(event, None, None)


@dataclass(frozen=True)
class Stay:
    """An inpatient stay (住院) as the duplicate-bill check sees it."""

    claim_id: str
    hospital_id: str
    admission_date: date
    discharge_date: date

    def overlaps(self, other: Stay) -> bool:
        """Overlapping days at the same hospital; a transfer on the day of discharge does not count,
        but the identical stay does (also a same-day one)."""
        if self.hospital_id != other.hospital_id:
            return False
        same = (self.admission_date, self.discharge_date) == (other.admission_date, other.discharge_date)
        return same or (self.admission_date < other.discharge_date and other.admission_date < self.discharge_date)


def duplicate_of(stay: Stay, settled: Iterable[Stay]) -> str | None:
    """The claim of the first settled, unreversed stay that `stay` overlaps at the same hospital:
    the same stay billed again (重复收费), which is paid once."""
    return next((s.claim_id for s in settled if s.claim_id != stay.claim_id and stay.overlaps(s)), None)


def consecutive_contribution_years(person: PersonSnapshot, year: int) -> int:
    """Years of uninterrupted contribution up to and including `year` (连续参保缴费年限), from the
    registry's coverage history; the GZ continuity bonus rises with it (F002 L115)."""
    covered = {c.coverage_year for c in person.coverage}
    n = 0
    while year - n in covered:
        n += 1
    return n


def _provider_problem(provider: ProviderSnapshot | None, admission: date) -> str | None:
    if provider is None:
        return "the hospital is not a registered designated provider"
    if admission < provider.agreement_valid_from or (
            provider.agreement_valid_to is not None and admission > provider.agreement_valid_to):
        return f"the provider's agreement is not valid on the admission date {admission.isoformat()}"
    return None


def decide(d: DischargeRecorded, event_id: str, person: PersonSnapshot | None, provider: ProviderSnapshot | None,
           profile: PolicyProfile, year: BasicYearState, *, position: int | None = None,
           duplicate: str | None = None) -> BasicDecision:
    """Settle the basic layer of one discharge (eligibility judged as of the admission date).
    `position`: the claim's place in its person-year (carried on to the next layers); `duplicate`:
    the earlier claim whose stay this one bills again (it is rejected, naming that claim)."""
    decision = _decide(d, event_id, person, provider, profile, year, duplicate)
    if position is None:
        return decision
    event = decision.event
    return BasicDecision(event.model_copy(update={"claim": event.claim.model_copy(update={"position": position})}),
                         decision.result, decision.year_after)


def _decide(d: DischargeRecorded, event_id: str, person: PersonSnapshot | None, provider: ProviderSnapshot | None,
            profile: PolicyProfile, year: BasicYearState, duplicate: str | None) -> BasicDecision:
    if duplicate is not None:
        return _rejected(d, event_id, profile, "INVALID_CLAIM",
                         f"a duplicate bill: the stay overlaps the settled stay of claim {duplicate} at the same "
                         "hospital", provider=provider, person=person, related_claim_id=duplicate)
    status = eligibility(person, d.admission_date)
    if isinstance(status, Ineligible):
        return _rejected(d, event_id, profile, status.reason_code, status.reason, provider=provider, person=person)
    assert person is not None
    if (problem := _provider_problem(provider, d.admission_date)) is not None:
        return _rejected(d, event_id, profile, "UNKNOWN_PROVIDER", problem, provider=provider, person=person)
    assert provider is not None
    if not profile.prices_scheme(person.scheme):
        return _rejected(d, event_id, profile, "NO_POLICY",
                         f"profile {profile.id} does not price the {person.scheme} scheme", provider=provider,
                         person=person)
    if d.discharge_date < profile.effective_from:
        return _rejected(d, event_id, profile, "NO_POLICY",
                         f"profile {profile.id} is effective from {profile.effective_from}", provider=provider,
                         person=person)
    claim = BasicClaim(claim_id=d.claim_id, scheme=person.scheme, hospital_level=provider.level,
                       amounts_by_class=amounts_by_class_of(d), categories=frozenset(status.categories),
                       disability_grade=status.disability_grade,
                       consecutive_contribution_years=consecutive_contribution_years(person, d.discharge_date.year))
    try:
        result = settle_basic(claim, profile, year)
    except NotPricedError as exc:
        return _rejected(d, event_id, profile, "NO_POLICY", str(exc), provider=provider, person=person)
    except InvalidClaimError as exc:
        return _rejected(d, event_id, profile, "INVALID_CLAIM", str(exc), provider=provider, person=person)
    summary = _summary(d, event_id, profile, provider=provider, person=person, categories=status.categories,
                       grade=status.disability_grade, in_policy=result.in_policy)
    detail = LayerDetail(
        layer="basic", base=result.in_policy, deductible=result.deductible, ratio=result.ratio, paid=result.paid,
        accumulator_before=result.accumulator_before, accumulator_after=result.accumulator_after,
        cap=result.annual_cap, cap_left=result.cap_left_after,
        note="deductible halved" if result.deductible_reduced else None,
        profile_id=result.profile_id, profile_version=result.profile_version)
    event = BasicSettled(claim=summary, outcome="settled", basic=detail, residual_in_policy=result.residual_in_policy,
                         catastrophic_base=result.catastrophic_base)
    return BasicDecision(event, result, result.year_state_after)
