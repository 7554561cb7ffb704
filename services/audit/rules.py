"""Fund-supervision rules (基金监管稽核规则) as pure functions: no I/O, no clock, no logging.

Each rule looks at one discharge (出院结算申请) and the audit's own state — the person's other
stays, the registry snapshots as of admission, the inpatients a hospital had each night — and
returns `Finding`s. A finding's `alert_id` is the rule plus its subject claim, so evaluating the
same facts again (a replay, or the other claim of a pair arriving later) raises nothing twice.
Parameters come from the policy profile's `audit` section (`policy.AuditPolicy`); every rule
names the seed lines it rests on (`SOURCES`).

Decisions:

* **Pairs are judged the same whatever arrives first.** Split admission flags the readmission
  (the later stay); overlapping stays flag the stay with the later admission (then the larger
  claim id). Both are checked from either side of the pair.
* **Time-billed lines** (计时收费, e.g. 心电监测 billed by the hour) are recognised by their unit
  (`TIME_UNITS`: h / hour / 小时 / 时); their quantity per item and service day may not exceed
  `max_time_billed_hours_per_day` (F002 L45: 240 h of ECG monitoring in one day).
* **Deceased or suspended** is judged from the person's temporal snapshot as of the admission
  date: died on or before it, or inside a suspension `start <= admission < end`.
* **Stacked beds** count the stays the audit knows (discharged stays) covering each night of the
  new stay at its hospital, itself included, against the registry's licensed beds; on a night
  over the beds, the stays admitted last (beyond the bed count) are flagged.
* **The 5% sample** is a hash of the claim id (SHA-256, first 8 bytes as a fraction of 2^64),
  so the same claim is always in or out of the sample.
* **Corrections and reversals** (重新结算 / 冲正) change the stay the way settlement accepts them
  (`apply_request`, the same conditions as its refusals): a correction replaces the stay's dates
  (never its person, hospital or insurance year), a reversal marks it reversed, the discharge
  sent again after a reversal reinstates it. Every stay rule ignores reversed stays. A corrected
  bill is judged again by the bill rules; alert ids stay `rule:claim id`, so what was raised on the
  original is not raised twice.
* **Overlapping stays** include two stays at the same hospital (a bill sent twice under two
  claim ids, or a readmission before the discharge).
* **Reversal patterns**: many reversals by one hospital in one day (the day in Beijing time, the
  one time of every Chinese region, of the request's `occurred_at`; one alert per hospital and day,
  id `reversal_burst:<hospital>:<day>`), and a reversal requested long after the claim's discharge
  (id `late_reversal:<claim id>`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Literal

from contracts import AuditAlert, DischargeCorrected, DischargeRecorded, PersonSnapshot, ReversalRequested
from contracts.audit import Severity
from policy.profile import AuditPolicy

SPLIT_ADMISSION = "split_admission"
OVERLAPPING_STAYS = "overlapping_stays"
TIME_BILLED_OVER_24H = "time_billed_over_24h"
DUPLICATE_LINES = "duplicate_lines"
LARGE_OUT_OF_AREA_INVOICE = "large_out_of_area_invoice"
DECEASED_OR_SUSPENDED = "deceased_or_suspended_person"
STACKED_BEDS = "stacked_beds"
MANUAL_REVIEW_SAMPLE = "manual_review_sample"
REVERSAL_BURST = "reversal_burst"
LATE_REVERSAL = "late_reversal"

SOURCES: dict[str, str] = {
    SPLIT_ADMISSION: "F003 L161, F004 L33",
    OVERLAPPING_STAYS: "F000 L30, F004 L29",
    TIME_BILLED_OVER_24H: "F002 L45",
    DUPLICATE_LINES: "F003 L155",
    LARGE_OUT_OF_AREA_INVOICE: "F001 L675",
    DECEASED_OR_SUSPENDED: "F003 L95, F003 L121",
    STACKED_BEDS: "F003 L161",
    MANUAL_REVIEW_SAMPLE: "F003 L147",
    REVERSAL_BURST: "F004 L279, F003 L143",
    LATE_REVERSAL: "F003 L143, F004 L41",
}
"""The seed citation of every rule (demo-county.md, "Audit parameters"; the reversal rules: settlement
data analysed to find the institutions to watch, F004 L279; every fund payment under review after
the fact, F003 L143; every change of a settlement recorded, F004 L41 — their thresholds are not in
the seeds and are illustrative in the profile)."""

BEIJING = timezone(timedelta(hours=8), "CST")
"""China Standard Time: the day a reversal counts in."""

TIME_UNITS = frozenset({"h", "hr", "hrs", "hour", "hours", "小时", "时"})
"""Units of time-billed bill lines (compared case-insensitively, blanks stripped)."""


@dataclass(frozen=True)
class Stay:
    """One inpatient stay (住院) as the audit knows it from a discharge."""

    claim_id: str
    person_id: str
    hospital_id: str
    admission: date
    discharge: date
    reversed: bool = False
    """the claim was reversed (冲正): no stay rule counts it"""

    @classmethod
    def of(cls, discharge: DischargeRecorded) -> Stay:
        return cls(discharge.claim_id, discharge.person_id, discharge.hospital_id, discharge.admission_date,
                   discharge.discharge_date)

    @property
    def nights(self) -> int:
        return (self.discharge - self.admission).days


@dataclass(frozen=True)
class Finding:
    """What a rule found about one subject (a claim, or e.g. a layer-year for reconciliation)."""

    rule: str
    severity: Severity
    evidence: Mapping[str, str]
    source: str
    claim_id: str | None = None
    person_id: str | None = None
    hospital_id: str | None = None
    subject: str | None = field(default=None, compare=False)
    """what the alert is about when it is not a claim"""

    @property
    def alert_id(self) -> str:
        return f"{self.rule}:{self.subject or self.claim_id}"

    def to_alert(self, detected_at: datetime) -> AuditAlert:
        return AuditAlert(alert_id=self.alert_id, rule=self.rule, severity=self.severity, claim_id=self.claim_id,
                          person_id=self.person_id, hospital_id=self.hospital_id,
                          evidence={k: str(v) for k, v in self.evidence.items()}, source=self.source,
                          detected_at=detected_at)


def _finding(rule: str, severity: Severity, stay: Stay, evidence: Mapping[str, object]) -> Finding:
    return Finding(rule, severity, {k: str(v) for k, v in evidence.items()}, SOURCES[rule], claim_id=stay.claim_id,
                   person_id=stay.person_id, hospital_id=stay.hospital_id)


# ------------------------------------------------------------- stays of one person


def _active(stays: Iterable[Stay]) -> list[Stay]:
    """The stays that count for the rules: not reversed."""
    return [s for s in stays if not s.reversed]


def _readmission(stay: Stay, stays: Iterable[Stay], window_days: int) -> Finding | None:
    """`stay` as a readmission to the same hospital within the window of the last discharge there."""
    earlier = [s for s in stays if s.claim_id != stay.claim_id and s.person_id == stay.person_id
               and s.hospital_id == stay.hospital_id and s.discharge <= stay.admission]
    if not earlier:
        return None
    last = max(earlier, key=lambda s: (s.discharge, s.claim_id))
    gap = (stay.admission - last.discharge).days
    if gap > window_days:
        return None
    return _finding(SPLIT_ADMISSION, "medium", stay, {
        "previous_claim_id": last.claim_id, "previous_discharge_date": last.discharge.isoformat(),
        "admission_date": stay.admission.isoformat(), "days_between": gap, "window_days": window_days})


def split_admission(stay: Stay, others: Iterable[Stay], policy: AuditPolicy) -> list[Finding]:
    """分解住院: `stay` is a readmission, or a later known stay is a readmission after `stay`."""
    everyone = [stay, *(s for s in _active(others) if s.claim_id != stay.claim_id)]
    candidates = [stay] + [s for s in everyone[1:] if s.person_id == stay.person_id
                           and s.hospital_id == stay.hospital_id and s.admission >= stay.discharge]
    return [f for s in candidates if (f := _readmission(s, everyone, policy.split_admission_window_days))]


def overlapping_stays(stay: Stay, others: Iterable[Stay], policy: AuditPolicy) -> list[Finding]:
    """冒名住院 signal: the person lay in two stays on the same night(s) — at two hospitals, or twice
    at the same one (the same stay billed again under another claim id)."""
    found = []
    for other in _active(others):
        if other.claim_id == stay.claim_id or other.person_id != stay.person_id:
            continue
        start, end = max(stay.admission, other.admission), min(stay.discharge, other.discharge)
        nights = (end - start).days
        if nights < policy.overlap_min_nights:
            continue
        subject, peer = sorted((stay, other), key=lambda s: (s.admission, s.claim_id))[::-1]
        found.append(_finding(OVERLAPPING_STAYS, "high", subject, {
            "other_claim_id": peer.claim_id, "other_hospital_id": peer.hospital_id,
            "same_hospital": str(peer.hospital_id == subject.hospital_id).lower(),
            "overlap_from": start.isoformat(), "overlap_to": end.isoformat(), "overlap_nights": nights}))
    return found


# ------------------------------------------------------------------- the bill


def is_time_billed(unit: str) -> bool:
    return unit.strip().lower() in TIME_UNITS


def time_billed_over_24h(discharge: DischargeRecorded, policy: AuditPolicy) -> Finding | None:
    """A time-billed item charged for more hours in one service day than a day has
    (catalogue F36: interface or unit mapping errors)."""
    hours: dict[tuple[str, date], Decimal] = defaultdict(Decimal)
    for line in discharge.lines:
        if is_time_billed(line.unit):
            hours[(line.item_code, line.service_date)] += line.quantity
    limit = policy.max_time_billed_hours_per_day
    over = {k: h for k, h in hours.items() if h > limit}
    if not over:
        return None
    (code, day), worst = max(over.items(), key=lambda kv: (kv[1], kv[0][1].isoformat(), kv[0][0]))
    return _finding(TIME_BILLED_OVER_24H, "medium", Stay.of(discharge), {
        "item_code": code, "service_date": day.isoformat(), "hours_billed": worst,
        "max_hours_per_day": limit, "item_days_over": len(over)})


def duplicate_lines(discharge: DischargeRecorded, policy: AuditPolicy) -> Finding | None:
    """重复收费: the same item code, service date and amount on several lines of one claim."""
    counts = Counter((ln.item_code, ln.service_date, ln.amount) for ln in discharge.lines)
    repeated = {k: n for k, n in counts.items() if n >= policy.duplicate_line_min_count}
    if not repeated:
        return None
    (code, day, amount), times = max(repeated.items(), key=lambda kv: (kv[1], kv[0][2], kv[0][0]))
    return _finding(DUPLICATE_LINES, "medium", Stay.of(discharge), {
        "item_code": code, "service_date": day.isoformat(), "amount": amount, "times": times,
        "duplicate_groups": len(repeated)})


def large_out_of_area_invoice(discharge: DischargeRecorded, policy: AuditPolicy) -> Finding | None:
    """A large invoice for care outside the pool, to verify with the treating hospital first."""
    if discharge.care_location == "in_pool" or discharge.total_amount < policy.large_out_of_area_invoice:
        return None
    return _finding(LARGE_OUT_OF_AREA_INVOICE, "medium", Stay.of(discharge), {
        "total_amount": discharge.total_amount, "threshold": policy.large_out_of_area_invoice,
        "care_location": discharge.care_location, "referred": str(discharge.referred).lower()})


# ------------------------------------------------------------ registry state


def status_on(person: PersonSnapshot, day: date) -> tuple[str, date] | None:
    """("deceased", date of death) or ("suspended", suspension start) if so on `day`, else None."""
    if person.date_of_death is not None and person.date_of_death <= day:
        return "deceased", person.date_of_death
    for s in person.suspensions:
        if s.start <= day and (s.end is None or day < s.end):
            return "suspended", s.start
    return None


def deceased_or_suspended(stay: Stay, person: PersonSnapshot | None, policy: AuditPolicy) -> Finding | None:
    """冒领: a claim for a person who had died or was suspended (停保) on the admission date."""
    if not policy.flag_claims_after_death_or_suspension or person is None:
        return None
    status = status_on(person, stay.admission)
    if status is None:
        return None
    what, since = status
    return _finding(DECEASED_OR_SUSPENDED, "high", stay, {
        "status_at_admission": what, f"{what}_since": since.isoformat(),
        "admission_date": stay.admission.isoformat(), "snapshot_version": person.version})


def nights_of(stay: Stay) -> list[date]:
    """The nights of a stay (a same-day stay has none)."""
    return [stay.admission + timedelta(days=n) for n in range(stay.nights)]


def stacked_beds(stay: Stay, occupants_per_night: Mapping[date, Sequence[Stay]], licensed_beds: int | None,
                 policy: AuditPolicy) -> list[Finding]:
    """叠床住院: on a night of this stay the hospital had more inpatients than licensed beds.

    The inpatients of such a night are ranked by admission (then claim id); those beyond the
    licensed beds are flagged, whichever stay's arrival revealed the night. Adding stays only
    pushes ranks down, so a stay flagged early stays beyond the beds when all stays are known."""
    if not policy.flag_concurrent_inpatients_over_beds or licensed_beds is None:
        return []
    found: dict[str, Finding] = {}
    for night in sorted(occupants_per_night):
        ranked = sorted({s.claim_id: s for s in _active(occupants_per_night[night])}.values(),
                        key=lambda s: (s.admission, s.claim_id))
        for extra in ranked[licensed_beds:]:
            found.setdefault(extra.claim_id, _finding(STACKED_BEDS, "high", extra, {
                "night": night.isoformat(), "concurrent_inpatients": len(ranked), "licensed_beds": licensed_beds,
                "trigger_claim_id": stay.claim_id}))
    return list(found.values())


# ------------------------------------------------------------------- sampling


def sample_fraction(claim_id: str) -> Decimal:
    """The claim's deterministic position in [0, 1)."""
    digest = hashlib.sha256(claim_id.encode("utf-8")).digest()
    return Decimal(int.from_bytes(digest[:8], "big")) / Decimal(2 ** 64)


def in_review_sample(claim_id: str, rate: Decimal) -> bool:
    return sample_fraction(claim_id) < rate


def manual_review_sample(stay: Stay, policy: AuditPolicy) -> Finding | None:
    """住院费用抽查复审: a deterministic share of inpatient claims goes to manual second review."""
    if not in_review_sample(stay.claim_id, policy.manual_review_sample_rate):
        return None
    return _finding(MANUAL_REVIEW_SAMPLE, "info", stay, {"sample_rate": policy.manual_review_sample_rate})


# ------------------------------------------------------- corrections and reversals


Change = Literal["new", "correction", "reversal", "reinstatement"]


def hospital_producer(hospital_id: str) -> str:
    """The envelope `producer` of a hospital's requests (`hospital:<hospital id>`)."""
    return f"hospital:{hospital_id}"


def apply_request(current: Stay | None, request: DischargeRecorded | ReversalRequested,
                  producer: str) -> tuple[Stay, Change] | None:
    """The claim's stay after a hospital's request (冲正 / 重新结算) as settlement accepts it, and what
    changed; None where settlement refuses or ignores the request (`ClaimRequestRefused`): a
    correction or reversal of a claim the audit does not know (UNKNOWN_CLAIM) or of a reversed one
    (ALREADY_REVERSED), a request about a claim sent by another producer than the hospital that filed
    it (WRONG_HOSPITAL), for another person (PERSON_CHANGED) or another insurance year — the calendar
    year of the discharge date (YEAR_CHANGED), and a discharge already known and not reversed (a
    duplicate, or CONTENT_MISMATCH). The discharge sent again after its reversal reinstates the stay."""
    if current is None:
        if isinstance(request, DischargeRecorded) and not isinstance(request, DischargeCorrected):
            return Stay.of(request), "new"
        return None
    if producer != hospital_producer(current.hospital_id) or request.person_id != current.person_id:
        return None
    if isinstance(request, ReversalRequested):
        return None if current.reversed else (replace(current, reversed=True), "reversal")
    if request.discharge_date.year != current.discharge.year:
        return None
    if isinstance(request, DischargeCorrected):
        return None if current.reversed else (Stay.of(request), "correction")
    return (Stay.of(request), "reinstatement") if current.reversed else None


@dataclass(frozen=True)
class Reversal:
    """A reversal the audit accepted (as settlement does)."""

    claim_id: str
    hospital_id: str
    person_id: str
    requested_at: datetime
    """the request's `occurred_at`"""
    discharge: date
    """the stay's discharge date when it was reversed"""
    event_id: uuid.UUID | None = None

    @property
    def day(self) -> date:
        """The day of the request in Beijing time."""
        return self.requested_at.astimezone(BEIJING).date()


def late_reversal(reversal: Reversal, policy: AuditPolicy) -> Finding | None:
    """A claim reversed long after its discharge: the money was paid and stood for a long time."""
    days = (reversal.day - reversal.discharge).days
    if days <= policy.late_reversal_days:
        return None
    return Finding(LATE_REVERSAL, "medium", {
        "reversed_on": reversal.day.isoformat(), "discharge_date": reversal.discharge.isoformat(),
        "days_after_discharge": str(days), "late_after_days": str(policy.late_reversal_days)},
        SOURCES[LATE_REVERSAL], claim_id=reversal.claim_id, person_id=reversal.person_id,
        hospital_id=reversal.hospital_id)


SHOWN_CLAIMS = 10
"""Claim ids an alert about many claims names in its evidence (the count of the rest is given)."""


def reversal_burst(hospital_id: str, day: date, reversals: Iterable[Reversal], policy: AuditPolicy) -> Finding | None:
    """Many reversals (冲正) by one hospital in one day. `reversals`: every reversal the hospital
    sent (others and other days are left out); one alert per hospital and day, whichever reversal
    reached the threshold."""
    that_day = sorted((r for r in reversals if r.hospital_id == hospital_id and r.day == day),
                      key=lambda r: (r.requested_at, r.claim_id))
    if len(that_day) < policy.reversals_per_hospital_day:
        return None
    claims = sorted({r.claim_id for r in that_day})
    shown = ",".join(claims[:SHOWN_CLAIMS]) + (f" (+{len(claims) - SHOWN_CLAIMS} more)" if len(claims) > SHOWN_CLAIMS
                                               else "")
    return Finding(REVERSAL_BURST, "medium", {
        "day": day.isoformat(), "reversals": str(len(that_day)), "claims": shown,
        "threshold": str(policy.reversals_per_hospital_day)}, SOURCES[REVERSAL_BURST], hospital_id=hospital_id,
        subject=f"{hospital_id}:{day.isoformat()}")


# ------------------------------------------------------------------ together


@dataclass(frozen=True)
class DischargeContext:
    """The audit's state a discharge is judged against."""

    person_stays: Sequence[Stay] = ()
    """every stay of the person the audit knows (the discharge's own may be among them)"""
    person: PersonSnapshot | None = None
    licensed_beds: int | None = None
    occupants_per_night: Mapping[date, Sequence[Stay]] = field(default_factory=dict)
    """the known inpatients of the hospital on the nights of this stay (at least those over the beds)"""


def bill_findings(discharge: DischargeRecorded, policy: AuditPolicy) -> list[Finding]:
    """The rules on the bill itself (a corrected bill is judged again)."""
    found = [time_billed_over_24h(discharge, policy), duplicate_lines(discharge, policy),
             large_out_of_area_invoice(discharge, policy), manual_review_sample(Stay.of(discharge), policy)]
    return unique(f for f in found if f is not None)


def stay_findings(stay: Stay, context: DischargeContext, policy: AuditPolicy) -> list[Finding]:
    """The rules on the stay as it is now (none on a reversed stay); findings may concern other
    claims of the person (pairs) or of the hospital (stacked beds)."""
    if stay.reversed:
        return []
    found: list[Finding | None] = [
        *split_admission(stay, context.person_stays, policy),
        *overlapping_stays(stay, context.person_stays, policy),
        deceased_or_suspended(stay, context.person, policy),
        *stacked_beds(stay, context.occupants_per_night, context.licensed_beds, policy),
    ]
    return unique(f for f in found if f is not None)


def discharge_findings(discharge: DischargeRecorded, context: DischargeContext, policy: AuditPolicy) -> list[Finding]:
    """Every rule on one discharge; findings may concern other claims of the person (pairs)."""
    return unique([*stay_findings(Stay.of(discharge), context, policy), *bill_findings(discharge, policy)])


def person_findings(person: PersonSnapshot, stays: Iterable[Stay], policy: AuditPolicy) -> list[Finding]:
    """A new snapshot of a person (e.g. a death recorded late) judged against their known stays."""
    return unique(f for s in _active(stays) if (f := deceased_or_suspended(s, person, policy)))


def unique(findings: Iterable[Finding]) -> list[Finding]:
    """First finding per alert id, in order."""
    seen: dict[str, Finding] = {}
    for f in findings:
        seen.setdefault(f.alert_id, f)
    return list(seen.values())
