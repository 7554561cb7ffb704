-- Corrections (冲正 / 重新结算): a layer keeps every claim's place in its person-year and its latest
-- revision (layer_claim), and its ledger keeps every revision of every claim (append-only).

CREATE TABLE layer_claim (
    claim_id       text PRIMARY KEY,
    person_id      text NOT NULL,
    insurance_year int NOT NULL,
    position       int NOT NULL,          -- by first arrival within the person-year; kept for ever
    hospital_id    text NOT NULL,
    admission_date date NOT NULL,
    discharge_date date NOT NULL,
    status         text NOT NULL CHECK (status IN ('current', 'reversed')),
    revision       int NOT NULL,          -- the layer's latest revision of the claim
    input          jsonb NOT NULL,        -- the layer's latest input for the claim (the contract)
    input_event_id uuid NOT NULL,
    digest         text,                  -- settlement: digest of the discharge's content
    result         jsonb,                 -- the latest result (NULL while reversed)
    outcome        text,
    year_before    jsonb NOT NULL,        -- the year state before and after the claim
    year_after     jsonb NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (person_id, insurance_year, position)
);

ALTER TABLE ledger ADD COLUMN revision int NOT NULL DEFAULT 1,
                   ADD COLUMN reversed boolean NOT NULL DEFAULT false,
                   ADD COLUMN cause jsonb;
ALTER TABLE ledger DROP CONSTRAINT ledger_pkey, ADD PRIMARY KEY (claim_id, revision);
