-- Integrity checks (信息安全控制): how far reconciliation has looked for registry snapshots that no
-- enrollment command caused (event_store ids up to `through_id` are done).
CREATE TABLE integrity_watermark (
    name       text PRIMARY KEY,
    through_id bigint NOT NULL
);
