.load @EXT@
.mode list
.headers off
SELECT 'version ' || pocketvec_version();
CREATE TABLE docs(rowid INTEGER PRIMARY KEY, vec BLOB NOT NULL);
INSERT INTO docs VALUES
  (1, pocketvec_f32('[1, 0]')),
  (2, pocketvec_f32('[0, 1]')),
  (3, pocketvec_f32('[0.7, 0.7]')),
  (4, pocketvec_f32('[-1, 0]')),
  (5, pocketvec_f32('[0.9, -0.3]'));
CREATE VIRTUAL TABLE ann USING pocketvec(base_table=docs, dim=2);
SELECT 'set_q ' || pocketvec_set_q('[1, 0.1]');
SELECT rowid, round(distance, 4) FROM ann ORDER BY distance LIMIT 3;
SELECT '--';
SELECT rowid, round(distance, 4) FROM ann WHERE query = '[0, 1]' AND k = 2;
SELECT '--';
SELECT rowid, round(distance, 4) FROM ann WHERE query = '[0, 1]' AND rowid IN (1, 4, 5) AND k = 2;
SELECT '--';
SELECT a.rowid, pocketvec_to_json(d.vec) FROM ann a JOIN docs d ON d.rowid = a.rowid
  WHERE a.query = '[-1, 0]' AND a.k = 1;
SELECT '--';
SELECT rowid FROM ann WHERE query = '[1, 2, 3]' AND k = 1;
SELECT 'still usable ' || count(*) FROM ann WHERE query = '[1, 1]';
