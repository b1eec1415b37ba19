-- The seed README's demo through the sqlite3 shell (for valgrind in
-- scripts/check-deep.sh): 1000 random unit vectors of 128 dimensions, a
-- pocketvec table over them, pocketvec_set_q and a top-5 query, then the
-- stateless form, a filtered query, an error and a DROP.
.load @EXT@
.bail off
CREATE TABLE docs_vecs(rowid INTEGER PRIMARY KEY, vec BLOB NOT NULL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000),
     d(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM d WHERE j < 128)
INSERT INTO docs_vecs(rowid, vec)
  SELECT i, pocketvec_normalize(pocketvec_f32(
           (SELECT json_group_array((abs(random()) % 2001 - 1000) / 1000.0 + 0 * i * j) FROM d)))
  FROM n;
CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs_vecs, dim=128);
SELECT pocketvec_set_q(pocketvec_normalize(pocketvec_f32(
  (WITH RECURSIVE d(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM d WHERE j < 128)
   SELECT json_group_array((abs(random()) % 2001 - 1000) / 1000.0) FROM d))));
SELECT count(*) FROM (SELECT rowid, distance FROM ann ORDER BY distance LIMIT 5);
SELECT count(*) FROM ann WHERE query = (SELECT vec FROM docs_vecs WHERE rowid = 7) AND k = 10;
SELECT count(DISTINCT vec) FROM docs_vecs;
SELECT rowid FROM ann WHERE query = (SELECT vec FROM docs_vecs WHERE rowid = 7) AND k = 1;
SELECT count(*) FROM ann WHERE query = (SELECT vec FROM docs_vecs WHERE rowid = 7)
  AND k = 10 AND rowid IN (1, 2, 3, 7, 900) AND distance < 2;
SELECT pocketvec_to_json(pocketvec_f16('[1, 2, 3]')), pocketvec_to_json(pocketvec_int8('[0.5, -1]'));
SELECT rowid FROM ann WHERE query = '[1, 2]' AND k = 1;
DROP TABLE ann;
