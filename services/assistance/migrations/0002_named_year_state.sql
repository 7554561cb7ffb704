-- The assistance layer's accumulator is `paid` only (policy.calculators.assistance.AssistanceYearState);
-- the `accumulated` column repeated it. The ledger keeps the year state before and after each claim.
ALTER TABLE accumulator DROP COLUMN accumulated;
ALTER TABLE ledger ADD COLUMN year_before jsonb, ADD COLUMN year_after jsonb;
UPDATE ledger SET year_before = jsonb_build_object('paid', accumulated_before::text),
                  year_after = jsonb_build_object('paid', accumulated_after::text);
ALTER TABLE ledger ALTER COLUMN year_before SET NOT NULL, ALTER COLUMN year_after SET NOT NULL,
    DROP COLUMN accumulated_before, DROP COLUMN accumulated_after;
