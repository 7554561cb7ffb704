-- The audit service (基金监管): an append-only store of every event it consumed, the registry and
-- stay state its rules need, the alerts it raised, and the claims it has reconciled.

-- Every consumed record, as it was on the wire (topic names without the runtime's topic prefix).
-- A redelivered record (same topic, partition, offset) is not stored twice; a re-sent event with
-- the same event id at a new offset is stored (it happened) but rules and KPIs count it once.
CREATE TABLE event_store (
    id             bigserial PRIMARY KEY,
    topic          text NOT NULL,
    partition      int NOT NULL,
    "offset"       bigint NOT NULL,
    key            text,
    event_type     text NOT NULL,
    event_id       uuid NOT NULL,
    schema_version int NOT NULL,
    correlation_id text NOT NULL,
    causation_id   uuid,
    producer       text NOT NULL,
    claim_id       text,                  -- the claim an event is about (claim events and claim alerts)
    occurred_at    timestamptz NOT NULL,
    payload        jsonb NOT NULL,
    error          text,                  -- set when the payload broke its contract (stored all the same)
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (topic, partition, "offset")
);
CREATE INDEX event_store_claim ON event_store (claim_id, occurred_at, id) WHERE claim_id IS NOT NULL;
CREATE INDEX event_store_topic_claim ON event_store (topic, claim_id);
CREATE INDEX event_store_event_id ON event_store (event_id);

CREATE FUNCTION event_store_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'event_store is append-only';
END $$;
CREATE TRIGGER event_store_append_only BEFORE UPDATE OR DELETE ON event_store
    FOR EACH ROW EXECUTE FUNCTION event_store_is_append_only();

-- Inpatient stays (住院) from the discharges: the rules' view of who lay where and when.
CREATE TABLE stay (
    claim_id       text PRIMARY KEY,
    person_id      text NOT NULL,
    hospital_id    text NOT NULL,
    admission_date date NOT NULL,
    discharge_date date NOT NULL,
    event_id       uuid NOT NULL
);
CREATE INDEX stay_person ON stay (person_id, admission_date);
CREATE INDEX stay_hospital ON stay (hospital_id, admission_date, discharge_date);

-- The registry snapshots (latest version) the rules judge a claim against.
CREATE TABLE person_snapshot (
    person_id text PRIMARY KEY,
    version   int NOT NULL,
    snapshot  jsonb NOT NULL
);
CREATE TABLE provider_snapshot (
    provider_id   text PRIMARY KEY,
    version       int NOT NULL,
    level         int NOT NULL,
    pool_code     text NOT NULL,
    location      text NOT NULL,
    licensed_beds int NOT NULL,
    snapshot      jsonb NOT NULL
);

-- Every alert raised, once (alert_id = rule + subject), also published on audit.alerts.
CREATE TABLE alert (
    alert_id    text PRIMARY KEY,
    rule        text NOT NULL,
    severity    text NOT NULL,
    claim_id    text,
    person_id   text,
    hospital_id text,
    evidence    jsonb NOT NULL,
    source      text NOT NULL,
    detected_at timestamptz NOT NULL,
    event_id    uuid NOT NULL
);
CREATE INDEX alert_rule ON alert (rule, detected_at);
CREATE INDEX alert_claim ON alert (claim_id);

-- Claims whose statement has been checked against its parts, the layer results and the ledgers.
CREATE TABLE reconciled_claim (
    claim_id      text PRIMARY KEY,
    reconciled_at timestamptz NOT NULL DEFAULT now()
);
