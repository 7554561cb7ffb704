-- Every statement of a claim, not only its first: the original statement, adjustments (补退) and a
-- reversal (冲正), one row each by the assistance layer's revision. Amounts of adjustments and
-- reversals are differences (negative where someone pays less); a claim's net is their sum.
ALTER TABLE statement ADD COLUMN revision int NOT NULL DEFAULT 1,
                      ADD COLUMN kind text NOT NULL DEFAULT 'statement'
                          CHECK (kind IN ('statement', 'adjustment', 'reversal')),
                      ADD COLUMN out_of_policy numeric(14, 2),
                      ADD COLUMN fund_pay_sumamt numeric(14, 2);
UPDATE statement SET out_of_policy = total_cost - in_policy, fund_pay_sumamt = hifp_pay + hifmi_pay + maf_pay;
ALTER TABLE statement ALTER COLUMN out_of_policy SET NOT NULL, ALTER COLUMN fund_pay_sumamt SET NOT NULL,
                      DROP CONSTRAINT statement_pkey, ADD PRIMARY KEY (claim_id, revision);
