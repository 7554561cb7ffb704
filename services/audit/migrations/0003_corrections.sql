-- Corrections and reversals (重新结算 / 冲正): what the rules and reconciliation keep of them.

-- A stay follows its claim: a correction replaces its dates, a reversal marks it reversed (every
-- stay rule ignores a reversed stay), the same discharge sent again after its reversal reinstates
-- it. `changed_by` is the event id of the last request that changed it.
ALTER TABLE stay ADD COLUMN reversed boolean NOT NULL DEFAULT false;
ALTER TABLE stay ADD COLUMN changed_by uuid;

-- Every reversal the audit accepted (as settlement does), for the reversal-pattern rules: how many
-- a hospital sent in one day (Beijing time), how long after the discharge.
CREATE TABLE reversal (
    event_id       uuid PRIMARY KEY,
    claim_id       text NOT NULL,
    hospital_id    text NOT NULL,
    person_id      text NOT NULL,
    requested_at   timestamptz NOT NULL,  -- the request's occurred_at
    requested_on   date NOT NULL,         -- its day in Beijing time
    discharge_date date NOT NULL          -- the stay's discharge date when it was reversed
);
CREATE INDEX reversal_hospital_day ON reversal (hospital_id, requested_on);

-- Reconciliation re-checks a claim whenever an event of it arrives (a revision can come at any
-- time): the handler counts each claim's stored events on the claim topics in the transaction
-- that stores them; reconciliation marks a claim checked for the count it saw.
CREATE TABLE claim_activity (
    claim_id         text PRIMARY KEY,
    events           int NOT NULL,
    last_recorded_at timestamptz NOT NULL,
    checked          boolean NOT NULL DEFAULT false
);
CREATE INDEX claim_activity_open ON claim_activity (claim_id) WHERE NOT checked;
INSERT INTO claim_activity (claim_id, events, last_recorded_at)
SELECT claim_id, count(*), max(recorded_at) FROM event_store
WHERE claim_id IS NOT NULL
  AND topic IN ('claims.discharges', 'claims.refusals', 'claims.basic-settled', 'claims.catastrophic-settled',
                'claims.statements')
GROUP BY claim_id;

-- What reconciliation last found for a claim: the net amounts its statements state per layer and
-- the layers' current results (the per-layer, per-year totals are sums of these). Unbounded: a
-- statement that broke its contract is summed as it is.
ALTER TABLE reconciled_claim ADD COLUMN insurance_year int;
ALTER TABLE reconciled_claim ADD COLUMN basic_stated numeric;
ALTER TABLE reconciled_claim ADD COLUMN basic_result numeric;
ALTER TABLE reconciled_claim ADD COLUMN catastrophic_stated numeric;
ALTER TABLE reconciled_claim ADD COLUMN catastrophic_result numeric;
ALTER TABLE reconciled_claim ADD COLUMN assistance_stated numeric;
ALTER TABLE reconciled_claim ADD COLUMN assistance_result numeric;

-- `operator trace`: the revisions of other claims that a claim's correction or reversal caused.
CREATE INDEX event_store_cause_claim ON event_store ((payload->'cause'->>'claim_id'))
    WHERE payload->'cause'->>'claim_id' IS NOT NULL;
