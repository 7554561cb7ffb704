"""The services' Prometheus metrics (prometheus_client), served at `/metrics` (`runtime.health`).

Every metric carries the `service` label; topics are the registry's names without `TOPIC_PREFIX`.
Counters are counted once per batch (never per record in a hot loop) and after the transaction
commits, so a batch retried after a failure is counted once. Gauges that need I/O (lag, outbox
backlog, projection lag) are measured when `/metrics` is scraped (`runtime.health`).

Money: `medsettle_statement_money_yuan_total` adds the statements' amounts in yuan. Money is
`Decimal` everywhere else; it becomes a float only here, at the metric's boundary (Prometheus
samples are 64-bit floats: exact to the fen up to about 10^13 yuan in total). A counter only grows,
so an adjustment's or reversal's negative differences are added to `direction="recovered"` and
the positive ones to `direction="paid"`: a fund's net is paid − recovered.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from contracts.envelope import Envelope
from contracts.topics import subscription_of

FUNDS = ("hifp_pay", "hifmi_pay", "maf_pay", "psn_pay")
"""What a statement splits the bill into: basic fund 统筹基金, critical-illness insurance 大病保险,
medical assistance 医疗救助, and what the patient pays 个人负担."""
STATEMENT_KINDS = {"SettlementStatement": "statement", "SettlementAdjusted": "adjustment",
                   "SettlementReversed": "reversal"}

RECORDS_CONSUMED = Counter("medsettle_records_consumed", "Records consumed, per input topic",
                           ["service", "topic"])
DEAD_LETTERS = Counter("medsettle_dead_letters", "Records dead-lettered (or, by an observer, skipped), per input "
                       "topic and reason class (contract, key, data, handler)", ["service", "topic", "reason_class"])
BATCH_SECONDS = Histogram("medsettle_batch_seconds", "Time to process one batch: decode, store, publish",
                          ["service", "subscription"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
BATCH_FAILURES = Counter("medsettle_batch_failures", "Batches that failed and were retried after a back-off",
                         ["service", "subscription"])
CONSUMER_LAG = Gauge("medsettle_consumer_lag", "Records behind the partitions' high watermark, per subscription "
                     "(as the consumer last fetched), summed over its partitions", ["service", "subscription"])
ASSIGNED_PARTITIONS = Gauge("medsettle_assigned_partitions", "Partitions assigned to the subscription's consumer",
                            ["service", "subscription"])
OUTBOX_BACKLOG = Gauge("medsettle_outbox_backlog", "Outbox rows not yet published", ["service"])
PROJECTION_LAG = Gauge("medsettle_projection_lag", "Records of a registry topic not yet projected", ["service", "topic"])
EVENTS_EMITTED = Counter("medsettle_events_emitted", "Events written to the outbox (committed), per event type",
                         ["service", "event_type"])
STATEMENTS = Counter("medsettle_statements", "Statements emitted (committed), per kind and outcome",
                     ["service", "kind", "outcome"])
STATEMENT_MONEY = Counter("medsettle_statement_money_yuan", "Money in the statements emitted, per fund (and the "
                          "patient, psn_pay), in yuan; negative differences under direction=recovered",
                          ["service", "fund", "kind", "direction"])


def reason_class(reason: str, field: str | None) -> str:
    """A dead letter's reason, as a bounded label: `key` (not keyed by its subject), `data` (a value
    the database refused), `handler` (failed after its attempts), `contract` (did not decode)."""
    if field == "key":
        return "key"
    if reason.startswith("data error"):
        return "data"
    if reason.startswith("handler error"):
        return "handler"
    return "contract"


def topic_label(topic: str, topic_prefix: str) -> str:
    """A record's topic as a label: without the prefix, a hospital's requests topic as the one subscription."""
    return subscription_of(topic.removeprefix(topic_prefix))


def _yuan(amount: Decimal) -> float:
    return float(amount)  # the one place money becomes a float: a metric sample (see the module's docstring)


def observe_emitted(service: str, envelopes: Iterable[Envelope[Any]]) -> None:
    """Count what a committed transaction emitted; statements add their money per fund."""
    counts: dict[str, int] = {}
    for env in envelopes:
        counts[env.event_type] = counts.get(env.event_type, 0) + 1
        kind = STATEMENT_KINDS.get(env.event_type)
        if kind is None:
            continue
        payload = env.payload
        STATEMENTS.labels(service, kind, str(getattr(payload, "outcome", ""))).inc()
        for fund in FUNDS:
            amount: Decimal = getattr(payload, fund)
            if amount > 0:
                STATEMENT_MONEY.labels(service, fund, kind, "paid").inc(_yuan(amount))
            elif amount < 0:
                STATEMENT_MONEY.labels(service, fund, kind, "recovered").inc(_yuan(-amount))
    for event_type, n in counts.items():
        EVENTS_EMITTED.labels(service, event_type).inc(n)
