-- The one-stop settlement statements (一站式结算单) this service emitted, one per claim.
CREATE TABLE statement (
    claim_id        text PRIMARY KEY,
    person_id       text NOT NULL,
    hospital_id     text NOT NULL,
    insurance_year  int NOT NULL,
    discharge_date  date NOT NULL,
    outcome         text NOT NULL,
    reason_code     text,
    total_cost      numeric(14, 2) NOT NULL,
    in_policy       numeric(14, 2) NOT NULL,
    hifp_pay        numeric(14, 2) NOT NULL,
    hifmi_pay       numeric(14, 2) NOT NULL,
    maf_pay         numeric(14, 2) NOT NULL,
    psn_pay         numeric(14, 2) NOT NULL,
    profile_id      text,
    profile_version int,
    statement       jsonb NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX statement_hospital ON statement (hospital_id, discharge_date);
