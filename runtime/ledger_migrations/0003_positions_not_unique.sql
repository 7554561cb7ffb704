-- A claim's position comes from the layer that first priced it (settlement assigns positions one by
-- one); a later layer orders by (position, claim id) and must never refuse a claim because another
-- record claims the same position.
ALTER TABLE layer_claim DROP CONSTRAINT layer_claim_person_id_insurance_year_position_key;
CREATE INDEX layer_claim_person ON layer_claim (person_id, insurance_year, position);
