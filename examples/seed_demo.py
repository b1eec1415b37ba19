import sqlite3, os, numpy as np

# Path to extension
EXT = os.path.abspath("target/release/libpocketvec0.so")

def f32_blob(x: np.ndarray) -> bytes:
    x = np.asarray(x, dtype=np.float32, order="C")
    return x.tobytes()

con = sqlite3.connect("demo.db")
con.enable_load_extension(True)
con.load_extension(EXT)

# Base table
con.execute("CREATE TABLE IF NOT EXISTS docs_vecs(rowid INTEGER PRIMARY KEY, vec BLOB NOT NULL)")

# Insert random vectors
D, N = 128, 1000
vecs = np.random.randn(N, D).astype(np.float32)
vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
con.executemany("INSERT INTO docs_vecs(rowid, vec) VALUES(?, ?)", [(i+1, f32_blob(v)) for i,v in enumerate(vecs)])

# Create ANN vtab
con.execute("CREATE VIRTUAL TABLE IF NOT EXISTS ann USING pocketvec(base_table=docs_vecs, dim=128)")

# Query
q = np.random.randn(D).astype(np.float32)
q /= np.linalg.norm(q)
con.execute("SELECT pocketvec_set_q(?)", (f32_blob(q),))
rows = con.execute("SELECT rowid, distance FROM ann ORDER BY distance LIMIT 5").fetchall()
print(rows)
