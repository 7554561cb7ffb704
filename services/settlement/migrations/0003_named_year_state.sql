-- The basic layer's accumulator columns are named for what they hold (policy.calculators.basic.BasicYearState):
-- `paid` (basic fund paid this year, against the annual cap) and `deductible_met`. The ledger keeps the
-- whole year state before and after each claim; rows from before this migration knew only `paid`.
ALTER TABLE accumulator RENAME COLUMN accumulated TO deductible_met;
ALTER TABLE ledger ADD COLUMN year_before jsonb, ADD COLUMN year_after jsonb;
UPDATE ledger SET year_before = jsonb_build_object('paid', accumulated_before::text),
                  year_after = jsonb_build_object('paid', accumulated_after::text);
ALTER TABLE ledger ALTER COLUMN year_before SET NOT NULL, ALTER COLUMN year_after SET NOT NULL,
    DROP COLUMN accumulated_before, DROP COLUMN accumulated_after;
