/*
 * C consumer test 2: a program that links Debian's libsqlite3 and
 * libpocketvec.a registers pocketvec statically, builds the seed README's
 * base table and `pocketvec` virtual table, and checks the seed query
 * (`SELECT pocketvec_set_q(?)`, then `SELECT rowid, distance FROM ann ORDER BY
 * distance LIMIT 5`) against a brute-force top-5 computed here in C.
 *
 *   sqlite_test auto       registers with sqlite3_auto_extension(sqlite3_pocketvec_init)
 *   sqlite_test register   registers with pocketvec_register(db) (no API pointer)
 *   sqlite_test mixed      both in one process: the second route is refused
 *                          with a clear error, the first keeps working
 *
 * (One mode per process: ext keeps the first SQLite routines table it is given
 * for the whole process.) Prints a closing "N passed, N failed" line and exits
 * non-zero on failure.
 */
#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pocketvec.h"

static int passed, failed;

static void check(int ok, const char *fmt, ...) {
    if (ok) {
        passed++;
        return;
    }
    failed++;
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL: ", stdout);
    vprintf(fmt, ap);
    fputs("\n", stdout);
    va_end(ap);
}

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static double rng_normal(void) { /* Box-Muller on xorshift64 */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    double u1 = ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    double u2 = (double)(rng_state >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
static void unit_vector(float *v, int d) {
    double s = 0;
    for (int i = 0; i < d; i++) {
        v[i] = (float)rng_normal();
        s += (double)v[i] * v[i];
    }
    for (int i = 0; i < d; i++) v[i] = (float)(v[i] / sqrt(s));
}

static int exec_ok(sqlite3 *db, const char *sql) {
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    check(rc == SQLITE_OK, "%s: %s", sql, err ? err : "?");
    sqlite3_free(err);
    return rc == SQLITE_OK;
}

enum { D = 128, N = 1000, K = 5 };

typedef struct {
    int64_t rowid;
    double dist;
} hit_t;
static int hit_cmp(const void *x, const void *y) {
    const hit_t *a = x, *b = y;
    if (a->dist != b->dist) return a->dist < b->dist ? -1 : 1;
    return (a->rowid > b->rowid) - (a->rowid < b->rowid);
}

/* The seed demo on `db`, checked against brute force. */
static void seed_demo(sqlite3 *db, const char *label) {
    static float vecs[N][D], q[D];
    static hit_t ref[N];
    if (!exec_ok(db, "CREATE TABLE IF NOT EXISTS docs_vecs(rowid INTEGER PRIMARY KEY, vec BLOB NOT NULL)")) return;
    sqlite3_stmt *st = NULL;
    exec_ok(db, "BEGIN");
    check(sqlite3_prepare_v2(db, "INSERT INTO docs_vecs(rowid, vec) VALUES(?, ?)", -1, &st, NULL) == SQLITE_OK,
          "prepare insert");
    for (int i = 0; i < N; i++) {
        unit_vector(vecs[i], D);
        sqlite3_bind_int64(st, 1, i + 1);
        sqlite3_bind_blob(st, 2, vecs[i], (int)sizeof vecs[i], SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) {
            check(0, "insert row %d: %s", i + 1, sqlite3_errmsg(db));
            break;
        }
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    exec_ok(db, "COMMIT");
    if (!exec_ok(db, "CREATE VIRTUAL TABLE IF NOT EXISTS ann USING pocketvec(base_table=docs_vecs, dim=128)")) return;

    unit_vector(q, D);
    for (int i = 0; i < N; i++) {
        double dot = 0, nq = 0, nv = 0;
        for (int j = 0; j < D; j++) {
            dot += (double)q[j] * vecs[i][j];
            nq += (double)q[j] * q[j];
            nv += (double)vecs[i][j] * vecs[i][j];
        }
        ref[i].rowid = i + 1;
        ref[i].dist = 1.0 - dot / sqrt(nq * nv);
    }
    qsort(ref, N, sizeof ref[0], hit_cmp);

    check(sqlite3_prepare_v2(db, "SELECT pocketvec_set_q(?)", -1, &st, NULL) == SQLITE_OK, "prepare set_q: %s",
          sqlite3_errmsg(db));
    sqlite3_bind_blob(st, 1, q, (int)sizeof q, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    check(rc == SQLITE_ROW && sqlite3_column_int(st, 0) == D, "[%s] pocketvec_set_q returns the dimension: %s",
          label, rc == SQLITE_ROW ? "" : sqlite3_errmsg(db));
    sqlite3_finalize(st);

    check(sqlite3_prepare_v2(db, "SELECT rowid, distance FROM ann ORDER BY distance LIMIT 5", -1, &st, NULL) ==
              SQLITE_OK,
          "prepare seed query: %s", sqlite3_errmsg(db));
    int n = 0, order_ok = 1, dist_ok = 1;
    int64_t top = -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < K + 1) {
        int64_t rowid = sqlite3_column_int64(st, 0);
        double dist = sqlite3_column_double(st, 1);
        if (n == 0) top = rowid;
        if (n < K) {
            order_ok &= rowid == ref[n].rowid;
            dist_ok &= fabs(dist - ref[n].dist) <= 1e-5;
        }
        n++;
    }
    check(rc == SQLITE_DONE, "[%s] seed query ran to completion: %s", label, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    printf("[%s] seed query top hit: rowid %lld (brute force: %lld, distance %.6f)\n", label, (long long)top,
           (long long)ref[0].rowid, ref[0].dist);
    check(top == ref[0].rowid, "[%s] top hit rowid %lld, brute force %lld", label, (long long)top,
          (long long)ref[0].rowid);
    check(n == K, "[%s] LIMIT 5 returned %d rows", label, n);
    check(order_ok, "[%s] top-5 rowids equal the brute-force order", label);
    check(dist_ok, "[%s] top-5 distances equal the brute-force cosine distances (1e-5)", label);

    /* a scalar function and an error message through the same registration */
    check(sqlite3_prepare_v2(db, "SELECT pocketvec_cosine(?, ?), pocketvec_version()", -1, &st, NULL) == SQLITE_OK,
          "prepare pocketvec_cosine: %s", sqlite3_errmsg(db));
    sqlite3_bind_blob(st, 1, vecs[0], (int)sizeof vecs[0], SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, vecs[1], (int)sizeof vecs[1], SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        double dot = 0;
        for (int j = 0; j < D; j++) dot += (double)vecs[0][j] * vecs[1][j];
        check(fabs(sqlite3_column_double(st, 0) - dot) < 1e-5, "[%s] pocketvec_cosine %f vs %f", label,
              sqlite3_column_double(st, 0), dot);
        const char *v = NULL;
        pocketvec_version(&v);
        const unsigned char *sv = sqlite3_column_text(st, 1);
        check(sv && v && strstr((const char *)sv, v) != NULL, "[%s] pocketvec_version() \"%s\" contains \"%s\"",
              label, sv ? (const char *)sv : "(null)", v ? v : "(null)");
    } else {
        check(0, "[%s] pocketvec_cosine: %s", label, sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    /* a query vector of the wrong dimension: a clear error naming both sizes */
    check(sqlite3_prepare_v2(db, "SELECT pocketvec_set_q(?)", -1, &st, NULL) == SQLITE_OK, "prepare set_q");
    sqlite3_bind_blob(st, 1, q, 4 * 3, SQLITE_STATIC);
    rc = sqlite3_step(st);
    check(rc == SQLITE_ROW && sqlite3_column_int(st, 0) == 3, "[%s] pocketvec_set_q of a 3-d vector returns 3", label);
    sqlite3_finalize(st);
    check(sqlite3_prepare_v2(db, "SELECT rowid, distance FROM ann ORDER BY distance LIMIT 5", -1, &st, NULL) ==
              SQLITE_OK,
          "prepare seed query: %s", sqlite3_errmsg(db));
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    }
    const char *msg = sqlite3_errmsg(db);
    check(rc != SQLITE_DONE && strstr(msg, "128") && strstr(msg, "3"),
          "[%s] a 3-d query on a 128-d table fails with both sizes in the message: \"%s\"", label, msg);
    printf("[%s] error for a 3-d query: %s\n", label, msg);
    sqlite3_finalize(st);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "auto";
    /* The linked SQLite is Debian's (not the one sqlite3ext-sys compiles). */
    printf("[%s] linked SQLite %s (header %s)\n", mode, sqlite3_libversion(), SQLITE_VERSION);
    check(sqlite3_libversion_number() == SQLITE_VERSION_NUMBER,
          "the linked SQLite (%d) is the system one the header describes (%d)", sqlite3_libversion_number(),
          SQLITE_VERSION_NUMBER);

    sqlite3 *db = NULL;
    if (strcmp(mode, "auto") == 0) {
        check(sqlite3_auto_extension((void (*)(void))sqlite3_pocketvec_init) == SQLITE_OK, "sqlite3_auto_extension");
        check(sqlite3_open(":memory:", &db) == SQLITE_OK, "open");
        seed_demo(db, "auto_extension");
        sqlite3_close(db);
    } else if (strcmp(mode, "register") == 0) {
        check(pocketvec_register(NULL) == POCKETVEC_STATUS_NULL_POINTER, "pocketvec_register(NULL)");
        check(sqlite3_open(":memory:", &db) == SQLITE_OK, "open");
        char *err = NULL;
        check(sqlite3_exec(db, "SELECT pocketvec_version()", NULL, NULL, &err) != SQLITE_OK,
              "before registration pocketvec_version() does not exist");
        sqlite3_free(err);
        char msg[256] = "untouched";
        pocketvec_status s = pocketvec_register_with_error(db, msg, sizeof msg);
        check(s == POCKETVEC_STATUS_OK, "pocketvec_register_with_error: status %d (%s)", (int)s, msg);
        check(msg[0] == '\0', "no error message on success (\"%s\")", msg);
        seed_demo(db, "pocketvec_register");
        /* a second connection registers with the same routines table */
        sqlite3 *db2 = NULL;
        check(sqlite3_open(":memory:", &db2) == SQLITE_OK, "open 2");
        check(pocketvec_register(db2) == POCKETVEC_STATUS_OK, "pocketvec_register on a second connection");
        seed_demo(db2, "pocketvec_register, second connection");
        sqlite3_close(db2);
        sqlite3_close(db);
    } else if (strcmp(mode, "mixed") == 0) {
        check(sqlite3_auto_extension((void (*)(void))sqlite3_pocketvec_init) == SQLITE_OK, "sqlite3_auto_extension");
        check(sqlite3_open(":memory:", &db) == SQLITE_OK, "open");
        char msg[512] = "";
        pocketvec_status s = pocketvec_register_with_error(db, msg, sizeof msg);
        printf("[mixed] pocketvec_register after sqlite3_auto_extension: status %d: %s\n", (int)s, msg);
        check(s == POCKETVEC_STATUS_SQLITE_ERROR, "a second registration route is refused (status %d)", (int)s);
        check(strstr(msg, "another SQLite") != NULL, "the message says why: \"%s\"", msg);
        char small[8] = "xxxxxxx";
        pocketvec_register_with_error(db, small, sizeof small);
        check(strlen(small) == 7 && strncmp(small, msg, 7) == 0, "the message is truncated to the buffer");
        seed_demo(db, "mixed, auto_extension still works");
        sqlite3_close(db);
    } else {
        fprintf(stderr, "usage: %s auto|register|mixed\n", argv[0]);
        return 2;
    }
    printf("sqlite_test_%s: %d passed, %d failed\n", mode, passed, failed);
    return failed ? 1 : 0;
}
