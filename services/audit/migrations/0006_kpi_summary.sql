-- KPIs kept up to date as events are stored (services/audit/kpis.py): `operator kpis` reads these
-- narrow tables instead of scanning the event store, so it does not slow down with history.
-- `kpi_fold(ids)` folds event_store rows into them; the handler calls it on the rows each batch
-- stored, in the same transaction (services/audit/store.py, `append_events`). Each table's rows
-- are written by one topic's subscription only, whose batches are stored one after the other, so
-- "the first stored" is the first folded. The definitions are those of the full scan
-- (`kpis.compute_kpis_full`), which tests/integration/test_audit_service.py compares them with.

-- The statements counted: one per claim and revision, the first stored.
CREATE TABLE kpi_statement (
    claim_id text NOT NULL,
    rev      bigint NOT NULL,
    PRIMARY KEY (claim_id, rev)
);

-- Per claim: its net amounts (the sum of its counted statements), its latest statement, the
-- profile that priced it last, and what an alert about it is counted by.
CREATE TABLE kpi_claim (
    claim_id             text PRIMARY KEY,
    statements           int NOT NULL DEFAULT 0,
    total_cost           numeric NOT NULL DEFAULT 0,
    in_policy            numeric NOT NULL DEFAULT 0,
    hifp                 numeric NOT NULL DEFAULT 0,
    hifmi                numeric NOT NULL DEFAULT 0,
    maf                  numeric NOT NULL DEFAULT 0,
    funds                numeric NOT NULL DEFAULT 0,
    psn                  numeric NOT NULL DEFAULT 0,
    latest_rev           bigint,          -- null: no statement yet
    state                text,            -- 'reversed', or the latest statement's outcome
    person_id            text,
    hospital_id          text,
    discharge_date       date,
    cat_before           numeric,         -- the latest statement's catastrophic layer (none after a reversal)
    cat_after            numeric,
    cat_threshold        numeric,
    priced_rev           bigint,          -- the counted statement of highest revision naming a profile
    profile_id           text,
    named_rev            bigint,          -- any stored statement naming a profile, the last by (revision, id)
    named_id             bigint,
    named_profile_id     text,
    named_discharge_date date,
    first_discharge_id   bigint,          -- its first DischargeRecorded
    first_discharge_date date,
    first_hospital_id    text
);
CREATE INDEX kpi_claim_period ON kpi_claim (discharge_date);

-- The claims' figures summed per discharge day, hospital, pricing profile and current state: what
-- the KPIs' sums read (kept by `kpi_fold`, which moves a claim's contribution when it changes).
CREATE TABLE kpi_day (
    discharge_date date,
    hospital_id    text,
    profile_id     text,
    state          text,
    claims         bigint NOT NULL,
    total_cost     numeric NOT NULL,
    in_policy      numeric NOT NULL,
    hifp           numeric NOT NULL,
    hifmi          numeric NOT NULL,
    maf            numeric NOT NULL,
    funds          numeric NOT NULL,
    psn            numeric NOT NULL,
    cat_base       numeric NOT NULL,
    UNIQUE NULLS NOT DISTINCT (discharge_date, hospital_id, profile_id, state)
);

-- The persons, by kind: persons whose facts the insured count reads (death, coverage years and
-- payment dates, category history) are the same are one kind, counted (`kpi_persons`).
CREATE TABLE kpi_person_kind (
    kind_id bigserial PRIMARY KEY,
    facts   jsonb NOT NULL UNIQUE,
    persons int NOT NULL DEFAULT 0
);
CREATE TABLE kpi_person (
    person_id text PRIMARY KEY,
    kind_id   bigint NOT NULL REFERENCES kpi_person_kind
);

-- Reversal and adjustment statements per claim and kind ('reversal', 'adjustment:<cause kind>').
CREATE TABLE kpi_movement (
    claim_id   text NOT NULL,
    kind       text NOT NULL,
    statements int NOT NULL,
    funds      numeric NOT NULL,
    patients   numeric NOT NULL,
    PRIMARY KEY (claim_id, kind)
);

-- Corrections stored, and the requests settlement refused (a correction refused does not count).
CREATE TABLE kpi_correction (
    claim_id text NOT NULL,
    event_id uuid NOT NULL,
    PRIMARY KEY (claim_id, event_id)
);
CREATE TABLE kpi_refusal (
    claim_id         text NOT NULL,
    request_event_id text NOT NULL,
    PRIMARY KEY (claim_id, request_event_id)
);

-- Alerts as published on audit.alerts, the first stored of each alert id.
CREATE TABLE kpi_alert (
    alert_id    text PRIMARY KEY,
    rule        text,
    claim_id    text,
    hospital_id text,
    detected_on date
);
CREATE INDEX kpi_alert_claim ON kpi_alert (claim_id);

-- The part of a claim's critical-illness accumulation above the threshold, counted for settled claims.
CREATE FUNCTION kpi_cat_base(state text, before numeric, after numeric, threshold numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN state IS DISTINCT FROM 'settled' OR after IS NULL THEN 0
                ELSE GREATEST(after - threshold, 0) - GREATEST(before - threshold, 0) END
$$;

-- What the insured count reads of a person's latest snapshot.
CREATE FUNCTION kpi_person_facts(s jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'date_of_death', s->'date_of_death',
        'coverage', COALESCE((SELECT jsonb_agg(jsonb_build_object('coverage_year', c->'coverage_year',
                                                                  'payment_date', c->'payment_date') ORDER BY i)
                              FROM jsonb_array_elements(s->'coverage') WITH ORDINALITY AS x(c, i)), '[]'),
        'category_history', COALESCE((SELECT jsonb_agg(jsonb_build_object('effective_from', h->'effective_from',
                                                                          'categories', h->'categories') ORDER BY i)
                                      FROM jsonb_array_elements(s->'category_history') WITH ORDINALITY AS x(h, i)), '[]'),
        'categories', s->'categories')
$$;

-- The persons' kinds after their snapshots changed (store.upsert_persons).
CREATE FUNCTION kpi_persons(ids text[]) RETURNS void LANGUAGE sql AS $persons$
INSERT INTO kpi_person_kind (facts)
SELECT DISTINCT kpi_person_facts(snapshot) FROM person_snapshot WHERE person_id = ANY(ids)
ON CONFLICT (facts) DO NOTHING;

WITH now_ AS (
    SELECT s.person_id, k.kind_id FROM person_snapshot s
    JOIN kpi_person_kind k ON k.facts = kpi_person_facts(s.snapshot)
    WHERE s.person_id = ANY(ids)
), was AS (  -- read, not locked: a lock would skip the rows the INSERT below has already updated
    SELECT person_id, kind_id FROM kpi_person WHERE person_id = ANY(ids)
), delta AS (
    SELECT kind_id, sum(d) AS d FROM (SELECT kind_id, 1 AS d FROM now_ UNION ALL SELECT kind_id, -1 FROM was) x
    GROUP BY kind_id HAVING sum(d) <> 0
), counted AS (
    UPDATE kpi_person_kind k SET persons = k.persons + delta.d FROM delta WHERE k.kind_id = delta.kind_id
)
INSERT INTO kpi_person (person_id, kind_id) SELECT person_id, kind_id FROM now_ ORDER BY person_id
ON CONFLICT (person_id) DO UPDATE SET kind_id = EXCLUDED.kind_id;
$persons$;

CREATE FUNCTION kpi_fold(ids bigint[]) RETURNS void LANGUAGE sql AS $fold$
WITH b AS (  -- the statements among the rows
    SELECT id, claim_id, event_type, payload AS p, COALESCE((payload->>'revision')::bigint, 1) AS rev
    FROM event_store
    WHERE id = ANY(ids) AND topic = 'claims.statements' AND error IS NULL AND claim_id IS NOT NULL
), counted AS (
    INSERT INTO kpi_statement (claim_id, rev)
    SELECT DISTINCT claim_id, rev FROM b ORDER BY claim_id, rev
    ON CONFLICT DO NOTHING RETURNING claim_id, rev
), st AS (  -- those counted: the first of each claim and revision
    SELECT DISTINCT ON (b.claim_id, b.rev) b.* FROM b JOIN counted USING (claim_id, rev)
    ORDER BY b.claim_id, b.rev, b.id
), latest AS (
    SELECT DISTINCT ON (claim_id) claim_id, rev, event_type, p,
           CASE WHEN event_type = 'SettlementReversed' THEN NULL
                ELSE jsonb_path_query_first(p, '$.details[*] ? (@.layer == "catastrophic")') END AS cat
    FROM st ORDER BY claim_id, rev DESC, id DESC
), priced AS (
    SELECT DISTINCT ON (claim_id) claim_id, rev, p->>'profile_id' AS profile_id
    FROM st WHERE p->>'profile_id' IS NOT NULL ORDER BY claim_id, rev DESC, id DESC
), named AS (
    SELECT DISTINCT ON (claim_id) claim_id, rev, id, p->>'profile_id' AS profile_id,
           (p->>'discharge_date')::date AS discharge_date
    FROM b WHERE p->>'profile_id' IS NOT NULL ORDER BY claim_id, rev DESC, id DESC
), sums AS (
    SELECT claim_id, count(*) AS n, sum((p->>'total_cost')::numeric) AS total_cost,
           sum((p->>'in_policy')::numeric) AS in_policy, sum((p->>'hifp_pay')::numeric) AS hifp,
           sum((p->>'hifmi_pay')::numeric) AS hifmi, sum((p->>'maf_pay')::numeric) AS maf,
           sum((p->>'fund_pay_sumamt')::numeric) AS funds, sum((p->>'psn_pay')::numeric) AS psn
    FROM st GROUP BY claim_id
), moves AS (
    INSERT INTO kpi_movement AS m (claim_id, kind, statements, funds, patients)
    SELECT claim_id, CASE WHEN event_type = 'SettlementReversed' THEN 'reversal'
                          ELSE 'adjustment:' || COALESCE(p->'cause'->>'kind', 'unknown') END,
           count(*), sum((p->>'fund_pay_sumamt')::numeric), sum((p->>'psn_pay')::numeric)
    FROM st WHERE event_type IN ('SettlementAdjusted', 'SettlementReversed') GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (claim_id, kind) DO UPDATE SET statements = m.statements + EXCLUDED.statements,
        funds = m.funds + EXCLUDED.funds, patients = m.patients + EXCLUDED.patients
), before AS (  -- what the batch's claims added to kpi_day so far
    SELECT discharge_date, hospital_id, profile_id, state, total_cost, in_policy, hifp, hifmi, maf, funds, psn,
           kpi_cat_base(state, cat_before, cat_after, cat_threshold) AS cat_base
    FROM kpi_claim WHERE claim_id IN (SELECT claim_id FROM b) AND latest_rev IS NOT NULL
), after AS (
INSERT INTO kpi_claim AS k (claim_id, statements, total_cost, in_policy, hifp, hifmi, maf, funds, psn,
                            latest_rev, state, person_id, hospital_id, discharge_date, cat_before, cat_after,
                            cat_threshold, priced_rev, profile_id, named_rev, named_id, named_profile_id,
                            named_discharge_date)
SELECT c.claim_id, COALESCE(s.n, 0), COALESCE(s.total_cost, 0), COALESCE(s.in_policy, 0), COALESCE(s.hifp, 0),
       COALESCE(s.hifmi, 0), COALESCE(s.maf, 0), COALESCE(s.funds, 0), COALESCE(s.psn, 0),
       l.rev, CASE WHEN l.event_type = 'SettlementReversed' THEN 'reversed' ELSE l.p->>'outcome' END,
       l.p->>'person_id', l.p->>'hospital_id', (l.p->>'discharge_date')::date,
       (l.cat->>'accumulator_before')::numeric, (l.cat->>'accumulator_after')::numeric,
       (l.cat->>'deductible')::numeric, pr.rev, pr.profile_id, n.rev, n.id, n.profile_id, n.discharge_date
FROM (SELECT DISTINCT claim_id FROM b) c LEFT JOIN sums s USING (claim_id) LEFT JOIN latest l USING (claim_id)
     LEFT JOIN priced pr USING (claim_id) LEFT JOIN named n USING (claim_id)
ORDER BY c.claim_id
ON CONFLICT (claim_id) DO UPDATE SET
    statements = k.statements + EXCLUDED.statements, total_cost = k.total_cost + EXCLUDED.total_cost,
    in_policy = k.in_policy + EXCLUDED.in_policy, hifp = k.hifp + EXCLUDED.hifp, hifmi = k.hifmi + EXCLUDED.hifmi,
    maf = k.maf + EXCLUDED.maf, funds = k.funds + EXCLUDED.funds, psn = k.psn + EXCLUDED.psn,
    latest_rev = CASE WHEN EXCLUDED.latest_rev > COALESCE(k.latest_rev, 0) THEN EXCLUDED.latest_rev ELSE k.latest_rev END,
    state = CASE WHEN EXCLUDED.latest_rev > COALESCE(k.latest_rev, 0) THEN EXCLUDED.state ELSE k.state END,
    person_id = CASE WHEN EXCLUDED.latest_rev > COALESCE(k.latest_rev, 0) THEN EXCLUDED.person_id ELSE k.person_id END,
    hospital_id = CASE WHEN EXCLUDED.latest_rev > COALESCE(k.latest_rev, 0) THEN EXCLUDED.hospital_id ELSE k.hospital_id END,
    discharge_date = CASE WHEN EXCLUDED.latest_rev > COALESCE(k.latest_rev, 0) THEN EXCLUDED.discharge_date
                          ELSE k.discharge_date END,
    cat_before = CASE WHEN EXCLUDED.latest_rev > COALESCE(k.latest_rev, 0) THEN EXCLUDED.cat_before ELSE k.cat_before END,
    cat_after = CASE WHEN EXCLUDED.latest_rev > COALESCE(k.latest_rev, 0) THEN EXCLUDED.cat_after ELSE k.cat_after END,
    cat_threshold = CASE WHEN EXCLUDED.latest_rev > COALESCE(k.latest_rev, 0) THEN EXCLUDED.cat_threshold
                         ELSE k.cat_threshold END,
    priced_rev = CASE WHEN EXCLUDED.priced_rev > COALESCE(k.priced_rev, 0) THEN EXCLUDED.priced_rev ELSE k.priced_rev END,
    profile_id = CASE WHEN EXCLUDED.priced_rev > COALESCE(k.priced_rev, 0) THEN EXCLUDED.profile_id ELSE k.profile_id END,
    named_rev = CASE WHEN (EXCLUDED.named_rev, EXCLUDED.named_id) > (COALESCE(k.named_rev, 0), COALESCE(k.named_id, 0))
                     THEN EXCLUDED.named_rev ELSE k.named_rev END,
    named_profile_id = CASE WHEN (EXCLUDED.named_rev, EXCLUDED.named_id) > (COALESCE(k.named_rev, 0), COALESCE(k.named_id, 0))
                            THEN EXCLUDED.named_profile_id ELSE k.named_profile_id END,
    named_discharge_date = CASE WHEN (EXCLUDED.named_rev, EXCLUDED.named_id) > (COALESCE(k.named_rev, 0), COALESCE(k.named_id, 0))
                                THEN EXCLUDED.named_discharge_date ELSE k.named_discharge_date END,
    named_id = CASE WHEN (EXCLUDED.named_rev, EXCLUDED.named_id) > (COALESCE(k.named_rev, 0), COALESCE(k.named_id, 0))
                    THEN EXCLUDED.named_id ELSE k.named_id END
RETURNING latest_rev, discharge_date, hospital_id, profile_id, state, total_cost, in_policy, hifp, hifmi, maf, funds,
          psn, kpi_cat_base(state, cat_before, cat_after, cat_threshold) AS cat_base
)
INSERT INTO kpi_day AS d (discharge_date, hospital_id, profile_id, state, claims, total_cost, in_policy, hifp, hifmi,
                          maf, funds, psn, cat_base)
SELECT discharge_date, hospital_id, profile_id, state, sum(n), sum(total_cost), sum(in_policy), sum(hifp), sum(hifmi),
       sum(maf), sum(funds), sum(psn), sum(cat_base)
FROM (SELECT discharge_date, hospital_id, profile_id, state, 1 AS n, total_cost, in_policy, hifp, hifmi, maf, funds,
             psn, cat_base FROM after WHERE latest_rev IS NOT NULL
      UNION ALL
      SELECT discharge_date, hospital_id, profile_id, state, -1, -total_cost, -in_policy, -hifp, -hifmi, -maf, -funds,
             -psn, -cat_base FROM before) moved
GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
ON CONFLICT (discharge_date, hospital_id, profile_id, state) DO UPDATE SET claims = d.claims + EXCLUDED.claims,
    total_cost = d.total_cost + EXCLUDED.total_cost, in_policy = d.in_policy + EXCLUDED.in_policy,
    hifp = d.hifp + EXCLUDED.hifp, hifmi = d.hifmi + EXCLUDED.hifmi, maf = d.maf + EXCLUDED.maf,
    funds = d.funds + EXCLUDED.funds, psn = d.psn + EXCLUDED.psn, cat_base = d.cat_base + EXCLUDED.cat_base;

INSERT INTO kpi_claim AS k (claim_id, first_discharge_id, first_discharge_date, first_hospital_id)
SELECT DISTINCT ON (claim_id) claim_id, id, (payload->>'discharge_date')::date, payload->>'hospital_id'
FROM event_store
WHERE id = ANY(ids) AND topic = 'claims.discharges' AND error IS NULL AND claim_id IS NOT NULL
  AND event_type = 'DischargeRecorded'
ORDER BY claim_id, id
ON CONFLICT (claim_id) DO UPDATE SET first_discharge_id = EXCLUDED.first_discharge_id,
    first_discharge_date = EXCLUDED.first_discharge_date, first_hospital_id = EXCLUDED.first_hospital_id
    WHERE k.first_discharge_id IS NULL;

INSERT INTO kpi_correction (claim_id, event_id)
SELECT DISTINCT claim_id, event_id FROM event_store
WHERE id = ANY(ids) AND topic = 'claims.discharges' AND event_type = 'DischargeCorrected' AND error IS NULL
  AND claim_id IS NOT NULL
ORDER BY 1, 2 ON CONFLICT DO NOTHING;

INSERT INTO kpi_refusal (claim_id, request_event_id)
SELECT DISTINCT claim_id, payload->>'request_event_id' FROM event_store
WHERE id = ANY(ids) AND topic = 'claims.refusals' AND claim_id IS NOT NULL AND payload->>'request_event_id' IS NOT NULL
ORDER BY 1, 2 ON CONFLICT DO NOTHING;

INSERT INTO kpi_alert (alert_id, rule, claim_id, hospital_id, detected_on)
SELECT DISTINCT ON (payload->>'alert_id') payload->>'alert_id', payload->>'rule', claim_id, payload->>'hospital_id',
       ((payload->>'detected_at')::timestamptz AT TIME ZONE 'UTC')::date
FROM event_store
WHERE id = ANY(ids) AND topic = 'audit.alerts' AND error IS NULL AND payload->>'alert_id' IS NOT NULL
ORDER BY payload->>'alert_id', id
ON CONFLICT DO NOTHING;
$fold$;

-- What was stored before: folded once, in the order stored; the persons known.
SELECT kpi_persons(ARRAY(SELECT person_id FROM person_snapshot));
DO $$
DECLARE
    last_id bigint := 0;
    chunk   bigint[];
BEGIN
    LOOP
        chunk := ARRAY(SELECT id FROM event_store WHERE id > last_id ORDER BY id LIMIT 20000);
        EXIT WHEN cardinality(chunk) = 0;
        PERFORM kpi_fold(chunk);
        last_id := chunk[cardinality(chunk)];
    END LOOP;
END $$;
