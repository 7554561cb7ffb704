-- A person's kind is found by the md5 of its facts, not by the facts themselves: the facts of a
-- snapshot at the contract's limits (tests/integration/test_contract_limits.py) are larger than a
-- btree index entry may be (2,704 bytes), and the unique index on them refused the snapshot.
ALTER TABLE kpi_person_kind DROP CONSTRAINT kpi_person_kind_facts_key;
ALTER TABLE kpi_person_kind ADD COLUMN facts_md5 text GENERATED ALWAYS AS (md5(facts::text)) STORED;
CREATE UNIQUE INDEX kpi_person_kind_facts_md5 ON kpi_person_kind (facts_md5);

CREATE OR REPLACE FUNCTION kpi_persons(ids text[]) RETURNS void LANGUAGE sql AS $persons$
INSERT INTO kpi_person_kind (facts)
SELECT DISTINCT kpi_person_facts(snapshot) FROM person_snapshot WHERE person_id = ANY(ids)
ON CONFLICT (facts_md5) DO NOTHING;

WITH now_ AS (
    SELECT s.person_id, k.kind_id FROM person_snapshot s
    JOIN kpi_person_kind k ON k.facts_md5 = md5(kpi_person_facts(s.snapshot)::text)
    WHERE s.person_id = ANY(ids)
), was AS (  -- read, not locked: a lock would skip the rows the INSERT below has already updated
    SELECT person_id, kind_id FROM kpi_person WHERE person_id = ANY(ids)
), delta AS (
    SELECT kind_id, sum(d) AS d FROM (SELECT kind_id, 1 AS d FROM now_ UNION ALL SELECT kind_id, -1 FROM was) x
    GROUP BY kind_id HAVING sum(d) <> 0
), counted AS (
    UPDATE kpi_person_kind k SET persons = k.persons + delta.d FROM delta WHERE k.kind_id = delta.kind_id
)
INSERT INTO kpi_person (person_id, kind_id) SELECT person_id, kind_id FROM now_ ORDER BY person_id
ON CONFLICT (person_id) DO UPDATE SET kind_id = EXCLUDED.kind_id;
$persons$;
