-- A layer's per person-year accumulator and its ledger of payments (one row per claim).
-- The same shape in the basic, catastrophic and assistance databases, so reconciliation reads
-- every layer alike.

CREATE TABLE accumulator (
    person_id      text NOT NULL,
    insurance_year int NOT NULL,
    accumulated    numeric(14, 2) NOT NULL DEFAULT 0,  -- basic: fund paid; catastrophic: eligible accumulation; assistance: paid
    paid           numeric(14, 2) NOT NULL DEFAULT 0,  -- what this layer's fund paid this year
    claims         int NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person_id, insurance_year)
);

CREATE TABLE ledger (
    claim_id           text PRIMARY KEY,
    person_id          text NOT NULL,
    hospital_id        text NOT NULL,
    insurance_year     int NOT NULL,
    outcome            text NOT NULL,
    base               numeric(14, 2) NOT NULL,
    paid               numeric(14, 2) NOT NULL,
    accumulated_before numeric(14, 2) NOT NULL,
    accumulated_after  numeric(14, 2) NOT NULL,
    profile_id         text,
    profile_version    int,
    detail             jsonb NOT NULL,
    recorded_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_person_year ON ledger (person_id, insurance_year);
