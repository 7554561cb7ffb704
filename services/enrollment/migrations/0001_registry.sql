-- The registry of insured persons (参保登记) and designated providers, with full temporal history.

-- Current state of each person: the latest snapshot (the same JSON as on enrollment.persons).
CREATE TABLE person (
    person_id  text PRIMARY KEY,
    version    int NOT NULL,
    scheme     text NOT NULL,
    status     text NOT NULL,
    snapshot   jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Every accepted command, in order: the person's history (names stay in the database, never in logs).
CREATE TABLE person_event (
    person_id        text NOT NULL,
    version          int NOT NULL,
    command_event_id uuid NOT NULL UNIQUE,
    command_type     text NOT NULL,
    command          jsonb NOT NULL,
    accepted_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person_id, version)
);

CREATE TABLE provider (
    provider_id text PRIMARY KEY,
    version     int NOT NULL,
    level       int NOT NULL,
    snapshot    jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE provider_event (
    provider_id      text NOT NULL,
    version          int NOT NULL,
    command_event_id uuid NOT NULL UNIQUE,
    command          jsonb NOT NULL,
    accepted_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider_id, version)
);

-- Commands refused, with the field and the reason (also published on enrollment.rejections).
CREATE TABLE rejection (
    command_event_id uuid PRIMARY KEY,
    command_type     text NOT NULL,
    subject_id       text NOT NULL,
    reason_code      text NOT NULL,
    field            text,
    reason           text NOT NULL,
    rejected_at      timestamptz NOT NULL DEFAULT now()
);
