/*
 * C consumer test 1: calls every kernel function of include/pocketvec.h
 * through libpocketvec.a and checks each result against a plain C reference
 * (double accumulation), then checks the error statuses for bad arguments.
 *
 * Build: cc -std=c99 -Wall -Wextra -Werror -Iinclude tests/c/kernels_test.c \
 *           target/release/libpocketvec.a -lm -lpthread -ldl
 * Prints one line per failure and a closing "N passed, N failed" line;
 * exits non-zero on any failure.
 */
#include <math.h>
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

#define EXPECT_STATUS(call, want)                                                            \
    do {                                                                                     \
        pocketvec_status got_ = (call);                                                      \
        check(got_ == (want), "%s:%d: %s returned %d, expected %s (%d)", __FILE__, __LINE__, \
              #call, (int)got_, #want, (int)(want));                                         \
    } while (0)

/* ---- deterministic random numbers -------------------------------------- */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng_next(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
/* uniform in [-1, 1) */
static float rng_unit(void) { return (float)((double)(rng_next() >> 11) / 4503599627370496.0 - 1.0); }
static int8_t rng_i8(void) { return (int8_t)((int)(rng_next() % 255) - 127); }

/* ---- reference f16 conversions ----------------------------------------- */
static uint16_t ref_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u, exp = (x >> 23) & 0xffu, man = x & 0x7fffffu;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0u));
    int e = (int)exp - 127 + 15;
    if (e >= 0x1f) return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000u;
        unsigned shift = (unsigned)(14 - e);
        uint32_t hm = man >> shift, rem = man & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (hm & 1u))) hm++;
        return (uint16_t)(sign | hm);
    }
    uint32_t h = sign | ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
    return (uint16_t)h;
}
static double ref_f16_to_f64(uint16_t h) {
    double s = (h & 0x8000u) ? -1.0 : 1.0;
    unsigned exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0) return s * ldexp((double)man, -24);
    if (exp == 31) return man ? NAN : s * INFINITY;
    return s * ldexp((double)(man | 0x400u), (int)exp - 25);
}
static int is_f16_nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

/* ---- reference kernels (double accumulation) ---------------------------- */
typedef struct {
    double dot, aa, bb, l2sq, absdot; /* absdot: sum |a_i b_i| + |a_i|^2 + |b_i|^2, the error scale */
} ref_t;
static ref_t ref_pair(const double *a, const double *b, size_t n) {
    ref_t r = {0, 0, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        r.dot += a[i] * b[i];
        r.aa += a[i] * a[i];
        r.bb += b[i] * b[i];
        r.l2sq += (a[i] - b[i]) * (a[i] - b[i]);
        r.absdot += fabs(a[i] * b[i]) + a[i] * a[i] + b[i] * b[i];
    }
    return r;
}
static double ref_cos(ref_t r) { return (r.aa == 0 || r.bb == 0) ? 0.0 : r.dot / sqrt(r.aa * r.bb); }
static double ref_metric(int metric, ref_t r) {
    switch (metric) {
        case POCKETVEC_METRIC_COSINE: return 1.0 - ref_cos(r);
        case POCKETVEC_METRIC_L2: return sqrt(r.l2sq);
        default: return -r.dot;
    }
}
static int close_to(double got, double want, double scale, double rel) {
    if (isnan(want)) return isnan(got);
    return fabs(got - want) <= rel * (scale + fabs(want)) + 1e-6;
}

static const size_t DIMS[] = {1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 100, 128, 255, 257, 384, 768, 1024, 1536};
#define NDIMS (sizeof DIMS / sizeof DIMS[0])
#define MAXD 1536

/* ---- pairwise ----------------------------------------------------------- */
static void test_pairwise_f32(void) {
    static float abuf[MAXD + 1], bbuf[MAXD + 1], tmp[MAXD + 1];
    static double da[MAXD], db[MAXD];
    for (size_t di = 0; di < NDIMS; di++) {
        size_t d = DIMS[di];
        for (int off = 0; off < 2; off++) { /* offset 1: 4-byte but not 64-byte aligned */
            float *a = abuf + off, *b = bbuf + off;
            for (size_t i = 0; i < d; i++) {
                a[i] = rng_unit() * 3.0f;
                b[i] = rng_unit() * 3.0f;
                da[i] = a[i];
                db[i] = b[i];
            }
            ref_t r = ref_pair(da, db, d);
            float out = -1234.0f;
            EXPECT_STATUS(pocketvec_dot_f32(a, d, b, d, &out), POCKETVEC_STATUS_OK);
            check(close_to(out, r.dot, r.absdot, 1e-5), "dot_f32 d=%zu: %g vs %g", d, out, r.dot);
            EXPECT_STATUS(pocketvec_cosine_f32(a, d, b, d, &out), POCKETVEC_STATUS_OK);
            check(close_to(out, ref_cos(r), 1.0, 1e-5), "cosine_f32 d=%zu: %g vs %g", d, out, ref_cos(r));
            EXPECT_STATUS(pocketvec_cosine_distance_f32(a, d, b, d, &out), POCKETVEC_STATUS_OK);
            check(close_to(out, 1.0 - ref_cos(r), 1.0, 1e-5), "cosine_distance_f32 d=%zu", d);
            EXPECT_STATUS(pocketvec_l2sq_f32(a, d, b, d, &out), POCKETVEC_STATUS_OK);
            check(close_to(out, r.l2sq, r.absdot, 1e-5), "l2sq_f32 d=%zu: %g vs %g", d, out, r.l2sq);
            EXPECT_STATUS(pocketvec_l2_f32(a, d, b, d, &out), POCKETVEC_STATUS_OK);
            check(close_to(out, sqrt(r.l2sq), sqrt(r.absdot), 1e-5), "l2_f32 d=%zu", d);
            EXPECT_STATUS(pocketvec_norm_f32(a, d, &out), POCKETVEC_STATUS_OK);
            check(close_to(out, sqrt(r.aa), sqrt(r.aa), 1e-5), "norm_f32 d=%zu", d);
            /* normalize in place: unit vector, former norm reported */
            memcpy(tmp, a, d * sizeof(float));
            float norm = -1.0f;
            EXPECT_STATUS(pocketvec_normalize_f32(tmp, d, &norm), POCKETVEC_STATUS_OK);
            check(close_to(norm, sqrt(r.aa), sqrt(r.aa), 1e-5), "normalize_f32 norm d=%zu", d);
            int ok = 1;
            for (size_t i = 0; i < d; i++) ok &= close_to(tmp[i], da[i] / sqrt(r.aa), 1.0, 1e-5);
            check(ok, "normalize_f32 values d=%zu", d);
            EXPECT_STATUS(pocketvec_normalize_f32(tmp, d, NULL), POCKETVEC_STATUS_OK);
        }
    }
    /* documented edge cases: zero vector */
    float z[4] = {0, 0, 0, 0}, v[4] = {1, 2, 3, 4}, out = -1, norm = -1;
    EXPECT_STATUS(pocketvec_cosine_f32(z, 4, v, 4, &out), POCKETVEC_STATUS_OK);
    check(out == 0.0f, "cosine with a zero vector is 0, got %g", out);
    EXPECT_STATUS(pocketvec_cosine_distance_f32(z, 4, v, 4, &out), POCKETVEC_STATUS_OK);
    check(out == 1.0f, "cosine distance with a zero vector is 1, got %g", out);
    EXPECT_STATUS(pocketvec_normalize_f32(z, 4, &norm), POCKETVEC_STATUS_OK);
    check(norm == 0.0f && z[0] == 0 && z[3] == 0, "normalize leaves a zero vector unchanged");
    float n1[3] = {1.0f, NAN, 2.0f}, n2[3] = {1, 1, 1};
    EXPECT_STATUS(pocketvec_dot_f32(n1, 3, n2, 3, &out), POCKETVEC_STATUS_OK);
    check(isnan(out), "NaN in gives NaN out (dot), got %g", out);
}

static void test_pairwise_f16(void) {
    static uint16_t a[MAXD], b[MAXD], tmp[MAXD];
    static double da[MAXD], db[MAXD];
    for (size_t di = 0; di < NDIMS; di++) {
        size_t d = DIMS[di];
        for (size_t i = 0; i < d; i++) {
            a[i] = ref_f32_to_f16(rng_unit() * 2.0f);
            b[i] = ref_f32_to_f16(rng_unit() * 2.0f);
            da[i] = ref_f16_to_f64(a[i]);
            db[i] = ref_f16_to_f64(b[i]);
        }
        ref_t r = ref_pair(da, db, d);
        float out = -1234.0f;
        EXPECT_STATUS(pocketvec_dot_f16(a, d, b, d, &out), POCKETVEC_STATUS_OK);
        check(close_to(out, r.dot, r.absdot, 1e-5), "dot_f16 d=%zu: %g vs %g", d, out, r.dot);
        EXPECT_STATUS(pocketvec_cosine_f16(a, d, b, d, &out), POCKETVEC_STATUS_OK);
        check(close_to(out, ref_cos(r), 1.0, 1e-5), "cosine_f16 d=%zu", d);
        EXPECT_STATUS(pocketvec_cosine_distance_f16(a, d, b, d, &out), POCKETVEC_STATUS_OK);
        check(close_to(out, 1.0 - ref_cos(r), 1.0, 1e-5), "cosine_distance_f16 d=%zu", d);
        EXPECT_STATUS(pocketvec_l2sq_f16(a, d, b, d, &out), POCKETVEC_STATUS_OK);
        check(close_to(out, r.l2sq, r.absdot, 1e-5), "l2sq_f16 d=%zu", d);
        EXPECT_STATUS(pocketvec_l2_f16(a, d, b, d, &out), POCKETVEC_STATUS_OK);
        check(close_to(out, sqrt(r.l2sq), sqrt(r.absdot), 1e-5), "l2_f16 d=%zu", d);
        EXPECT_STATUS(pocketvec_norm_f16(a, d, &out), POCKETVEC_STATUS_OK);
        check(close_to(out, sqrt(r.aa), sqrt(r.aa), 1e-5), "norm_f16 d=%zu", d);
        memcpy(tmp, a, d * sizeof(uint16_t));
        float norm = -1.0f;
        EXPECT_STATUS(pocketvec_normalize_f16(tmp, d, &norm), POCKETVEC_STATUS_OK);
        check(close_to(norm, sqrt(r.aa), sqrt(r.aa), 1e-5), "normalize_f16 norm d=%zu", d);
        int ok = 1;
        for (size_t i = 0; i < d; i++) ok &= fabs(ref_f16_to_f64(tmp[i]) - da[i] / sqrt(r.aa)) <= 1e-3;
        check(ok, "normalize_f16 values d=%zu", d);
    }
}

static void test_pairwise_i8(void) {
    static int8_t a[MAXD], b[MAXD];
    static double da[MAXD], db[MAXD];
    static float unit[MAXD];
    for (size_t di = 0; di < NDIMS; di++) {
        size_t d = DIMS[di];
        for (size_t i = 0; i < d; i++) {
            a[i] = rng_i8();
            b[i] = rng_i8();
            da[i] = a[i];
            db[i] = b[i];
        }
        if (d > 4) { /* the extremes */
            a[0] = -128;
            b[0] = -128;
            a[1] = 127;
            b[1] = -128;
            da[0] = db[0] = db[1] = -128;
            da[1] = 127;
        }
        ref_t r = ref_pair(da, db, d);
        int32_t iout = -1;
        float out = -1;
        EXPECT_STATUS(pocketvec_dot_i8(a, d, b, d, &iout), POCKETVEC_STATUS_OK);
        check(iout == (int32_t)r.dot, "dot_i8 d=%zu: %d vs %.0f (exact)", d, iout, r.dot);
        EXPECT_STATUS(pocketvec_l2sq_i8(a, d, b, d, &iout), POCKETVEC_STATUS_OK);
        check(iout == (int32_t)r.l2sq, "l2sq_i8 d=%zu: %d vs %.0f (exact)", d, iout, r.l2sq);
        EXPECT_STATUS(pocketvec_cosine_i8(a, d, b, d, &out), POCKETVEC_STATUS_OK);
        check(close_to(out, ref_cos(r), 1.0, 1e-5), "cosine_i8 d=%zu", d);
        EXPECT_STATUS(pocketvec_cosine_distance_i8(a, d, b, d, &out), POCKETVEC_STATUS_OK);
        check(close_to(out, 1.0 - ref_cos(r), 1.0, 1e-5), "cosine_distance_i8 d=%zu", d);
        EXPECT_STATUS(pocketvec_l2_i8(a, d, b, d, &out), POCKETVEC_STATUS_OK);
        check(close_to(out, sqrt(r.l2sq), 1.0, 1e-6), "l2_i8 d=%zu", d);
        EXPECT_STATUS(pocketvec_norm_i8(a, d, &out), POCKETVEC_STATUS_OK);
        check(close_to(out, sqrt(r.aa), 1.0, 1e-6), "norm_i8 d=%zu", d);
        float norm = -1;
        EXPECT_STATUS(pocketvec_normalize_i8(a, d, unit, d, &norm), POCKETVEC_STATUS_OK);
        int ok = close_to(norm, sqrt(r.aa), 1.0, 1e-6);
        for (size_t i = 0; i < d; i++) ok &= close_to(unit[i], da[i] / sqrt(r.aa), 1.0, 1e-5);
        check(ok, "normalize_i8 d=%zu", d);
    }
}

/* ---- one-to-many and top-k ---------------------------------------------- */
typedef struct {
    int64_t id;
    float dist;
} hit_t;
static int hit_cmp(const void *x, const void *y) {
    const hit_t *a = x, *b = y;
    int an = isnan(a->dist), bn = isnan(b->dist);
    if (an != bn) return an - bn;
    if (!an && a->dist != b->dist) return a->dist < b->dist ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}
/* The reference selection: sort (id, dist) pairs, keep min(k, n). */
static size_t ref_top_k(const int64_t *ids, const float *dists, size_t n, size_t k, hit_t *out) {
    hit_t *all = malloc(n * sizeof *all);
    for (size_t i = 0; i < n; i++) {
        all[i].id = ids ? ids[i] : (int64_t)i;
        all[i].dist = dists[i];
    }
    qsort(all, n, sizeof *all, hit_cmp);
    size_t m = k < n ? k : n;
    memcpy(out, all, m * sizeof *out);
    free(all);
    return m;
}
static int same_hits(const hit_t *want, size_t m, const int64_t *ids, const float *dists, size_t count) {
    if (m != count) return 0;
    for (size_t i = 0; i < m; i++)
        if (want[i].id != ids[i] || !(want[i].dist == dists[i] || (isnan(want[i].dist) && isnan(dists[i]))))
            return 0;
    return 1;
}

enum { NROWS = 300 };
static void test_block(void) {
    static const size_t dims[] = {1, 3, 16, 33, 128, 384};
    static float q[384], blk[NROWS * 384], norms[NROWS], out[NROWS], outn[NROWS], dists[NROWS];
    static uint16_t qh[384], blkh[NROWS * 384];
    static int8_t qi[384], blki[NROWS * 384];
    static unsigned char bytes[NROWS * 384 * 4 + 1];
    static double dq[384], drow[384];
    static int64_t ids[NROWS], out_ids[NROWS];
    static float out_d[NROWS];
    static hit_t want[NROWS];
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        size_t d = dims[di], n = NROWS;
        for (size_t i = 0; i < d; i++) {
            q[i] = rng_unit();
            qh[i] = ref_f32_to_f16(q[i]);
            qi[i] = rng_i8();
        }
        for (size_t i = 0; i < n * d; i++) {
            blk[i] = rng_unit();
            blkh[i] = ref_f32_to_f16(blk[i]);
            blki[i] = rng_i8();
        }
        for (size_t r = 0; r < n; r++) {
            ids[r] = 1000 + 7 * (int64_t)(n - r); /* descending ids, distinct from row numbers */
            double s = 0;
            for (size_t i = 0; i < d; i++) s += (double)blk[r * d + i] * blk[r * d + i];
            norms[r] = (float)sqrt(s);
        }
        for (int metric = 0; metric < 3; metric++) {
            /* f32 */
            EXPECT_STATUS(pocketvec_distances_f32(metric, q, d, blk, n * d, NULL, 0, out, n), POCKETVEC_STATUS_OK);
            EXPECT_STATUS(pocketvec_distances_f32(metric, q, d, blk, n * d, norms, n, outn, n), POCKETVEC_STATUS_OK);
            int ok = 1, okn = 1;
            for (size_t r = 0; r < n; r++) {
                for (size_t i = 0; i < d; i++) dq[i] = q[i], drow[i] = blk[r * d + i];
                ref_t rf = ref_pair(dq, drow, d);
                double w = ref_metric(metric, rf);
                ok &= close_to(out[r], w, rf.absdot, 1e-5);
                okn &= close_to(outn[r], w, rf.absdot, 1e-5);
            }
            check(ok, "distances_f32 metric=%d d=%zu", metric, d);
            check(okn, "distances_f32 with norms metric=%d d=%zu", metric, d);
            /* f32 bytes at an odd address */
            memcpy(bytes + 1, blk, n * d * 4);
            EXPECT_STATUS(pocketvec_distances_f32_bytes(metric, q, d, bytes + 1, n * d * 4, NULL, 0, outn, n),
                          POCKETVEC_STATUS_OK);
            check(memcmp(out, outn, n * sizeof(float)) == 0 || close_to(outn[0], out[0], 1, 1e-6),
                  "distances_f32_bytes equals distances_f32 metric=%d d=%zu", metric, d);
            ok = 1;
            for (size_t r = 0; r < n; r++) ok &= close_to(outn[r], out[r], 1.0, 1e-6);
            check(ok, "distances_f32_bytes all rows metric=%d d=%zu", metric, d);
            /* top-k over the block equals sorting the library's own distances */
            size_t ks[] = {1, 10, n, n + 5};
            for (size_t kk = 0; kk < 4; kk++) {
                size_t k = ks[kk], count = 999;
                EXPECT_STATUS(pocketvec_top_k_f32(metric, q, d, blk, n * d, ids, n, k, out_ids, out_d, n, &count),
                              POCKETVEC_STATUS_OK);
                size_t m = ref_top_k(ids, out, n, k, want);
                check(same_hits(want, m, out_ids, out_d, count), "top_k_f32 metric=%d d=%zu k=%zu", metric, d, k);
                EXPECT_STATUS(pocketvec_top_k(ids, out, n, k, out_ids, out_d, n, &count), POCKETVEC_STATUS_OK);
                check(same_hits(want, m, out_ids, out_d, count), "top_k metric=%d d=%zu k=%zu", metric, d, k);
            }
            size_t count = 0;
            EXPECT_STATUS(pocketvec_top_k_f32(metric, q, d, blk, n * d, NULL, 0, 5, out_ids, out_d, 5, &count),
                          POCKETVEC_STATUS_OK);
            size_t m = ref_top_k(NULL, out, n, 5, want);
            check(same_hits(want, m, out_ids, out_d, count), "top_k_f32 row-index ids metric=%d d=%zu", metric, d);

            /* f16 */
            EXPECT_STATUS(pocketvec_distances_f16(metric, qh, d, blkh, n * d, NULL, 0, out, n), POCKETVEC_STATUS_OK);
            ok = 1;
            for (size_t r = 0; r < n; r++) {
                for (size_t i = 0; i < d; i++) dq[i] = ref_f16_to_f64(qh[i]), drow[i] = ref_f16_to_f64(blkh[r * d + i]);
                ref_t rf = ref_pair(dq, drow, d);
                ok &= close_to(out[r], ref_metric(metric, rf), rf.absdot, 1e-5);
            }
            check(ok, "distances_f16 metric=%d d=%zu", metric, d);
            memcpy(bytes + 1, blkh, n * d * 2);
            EXPECT_STATUS(pocketvec_distances_f16_bytes(metric, qh, d, bytes + 1, n * d * 2, NULL, 0, outn, n),
                          POCKETVEC_STATUS_OK);
            ok = 1;
            for (size_t r = 0; r < n; r++) ok &= close_to(outn[r], out[r], 1.0, 1e-6);
            check(ok, "distances_f16_bytes metric=%d d=%zu", metric, d);
            count = 0;
            EXPECT_STATUS(pocketvec_top_k_f16(metric, qh, d, blkh, n * d, ids, n, 10, out_ids, out_d, 10, &count),
                          POCKETVEC_STATUS_OK);
            m = ref_top_k(ids, out, n, 10, want);
            check(same_hits(want, m, out_ids, out_d, count), "top_k_f16 metric=%d d=%zu", metric, d);

            /* int8 */
            EXPECT_STATUS(pocketvec_distances_i8(metric, qi, d, blki, n * d, NULL, 0, out, n), POCKETVEC_STATUS_OK);
            ok = 1;
            for (size_t r = 0; r < n; r++) {
                for (size_t i = 0; i < d; i++) dq[i] = qi[i], drow[i] = blki[r * d + i];
                ref_t rf = ref_pair(dq, drow, d);
                ok &= close_to(out[r], ref_metric(metric, rf), metric == 0 ? 1.0 : 0.0, 1e-5);
            }
            check(ok, "distances_i8 metric=%d d=%zu", metric, d);
            count = 0;
            EXPECT_STATUS(pocketvec_top_k_i8(metric, qi, d, blki, n * d, ids, n, 10, out_ids, out_d, 10, &count),
                          POCKETVEC_STATUS_OK);
            m = ref_top_k(ids, out, n, 10, want);
            check(same_hits(want, m, out_ids, out_d, count), "top_k_i8 metric=%d d=%zu", metric, d);
        }
    }
    /* top-k order: ties by ascending id, NaN last */
    float td[6] = {0.5f, NAN, 0.25f, 0.5f, -1.0f, 0.25f};
    int64_t tid[6] = {10, 11, 12, 9, 13, 8};
    size_t count = 0;
    EXPECT_STATUS(pocketvec_top_k(tid, td, 6, 6, out_ids, out_d, 6, &count), POCKETVEC_STATUS_OK);
    int64_t want_ids[6] = {13, 8, 12, 9, 10, 11};
    int ok = count == 6;
    for (int i = 0; i < 6 && ok; i++) ok &= out_ids[i] == want_ids[i];
    check(ok && isnan(out_d[5]) && out_d[0] == -1.0f, "top_k ties by id, NaN last");
    (void)dists;
}

/* ---- conversions -------------------------------------------------------- */
static void test_convert(void) {
    /* every f16 bit pattern to f32 */
    static uint16_t all[65536];
    static float f[65536];
    for (uint32_t i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    EXPECT_STATUS(pocketvec_f16_to_f32(all, 65536, f, 65536), POCKETVEC_STATUS_OK);
    int ok = 1;
    for (uint32_t i = 0; i < 65536; i++) {
        double w = ref_f16_to_f64((uint16_t)i);
        ok &= isnan(w) ? isnan(f[i]) : ((double)f[i] == w && !signbit(f[i]) == !signbit(w));
    }
    check(ok, "f16_to_f32 matches the reference for all 65536 bit patterns");
    /* f32 to f16: specials, rounding ties, subnormals, overflow, random */
    static float src[4096];
    static uint16_t h[4096];
    size_t n = 0;
    const float specials[] = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65520.0f, 65519.99f, 1e10f, -1e10f,
                              5.96046448e-8f, 2.98023224e-8f, 2.98023225e-8f, 1e-10f, 6.10351562e-5f,
                              6.09755516e-5f, 1.00048828125f, 1.00146484375f, 1.0009765625f, 3.14159265f};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) src[n++] = specials[i];
    src[n++] = INFINITY;
    src[n++] = -INFINITY;
    while (n < 4096) src[n++] = rng_unit() * (float)ldexp(1.0, (int)(rng_next() % 40) - 26);
    EXPECT_STATUS(pocketvec_f32_to_f16(src, n, h, n), POCKETVEC_STATUS_OK);
    ok = 1;
    for (size_t i = 0; i < n; i++) {
        uint16_t w = ref_f32_to_f16(src[i]);
        if (h[i] != w) {
            ok = 0;
            printf("  f32_to_f16(%a) = 0x%04x, reference 0x%04x\n", (double)src[i], h[i], w);
        }
    }
    check(ok, "f32_to_f16 rounds to nearest even like the reference");
    float nanf_[1] = {NAN};
    uint16_t hn[1];
    EXPECT_STATUS(pocketvec_f32_to_f16(nanf_, 1, hn, 1), POCKETVEC_STATUS_OK);
    check(is_f16_nan(hn[0]), "f32_to_f16(NaN) is NaN");

    /* quantize / dequantize */
    static float x[1000], back[1000];
    static int8_t qv[1000];
    for (int rep = 0; rep < 20; rep++) {
        size_t d = 1 + (size_t)(rng_next() % 1000);
        double amp = ldexp(1.0, (int)(rng_next() % 20) - 10), maxabs = 0;
        for (size_t i = 0; i < d; i++) {
            x[i] = (float)(rng_unit() * amp);
            if (fabs(x[i]) > maxabs) maxabs = fabs(x[i]);
        }
        float scale = -1;
        EXPECT_STATUS(pocketvec_quantize_i8(x, d, qv, d, &scale), POCKETVEC_STATUS_OK);
        check(close_to(scale, maxabs / 127.0, 0.0, 1e-6), "quantize scale %g vs %g", scale, maxabs / 127.0);
        ok = 1;
        for (size_t i = 0; i < d; i++) {
            double w = round(x[i] / (maxabs / 127.0));
            ok &= qv[i] >= -127 && fabs((double)qv[i] - w) <= 1.0 &&
                  (fabs((double)qv[i] - w) == 0 || fabs(fabs(x[i] / (maxabs / 127.0) - trunc(x[i] / (maxabs / 127.0))) - 0.5) < 1e-3);
        }
        check(ok, "quantize_i8 values d=%zu", d);
        EXPECT_STATUS(pocketvec_dequantize_i8(qv, d, scale, back, d), POCKETVEC_STATUS_OK);
        ok = 1;
        for (size_t i = 0; i < d; i++) {
            ok &= back[i] == (float)qv[i] * scale || close_to(back[i], (double)qv[i] * scale, 0, 1e-6);
            ok &= fabs(back[i] - x[i]) <= scale * 0.5 * (1 + 1e-4) + 1e-12;
        }
        check(ok, "dequantize_i8 d=%zu (x = q * scale, error <= scale / 2)", d);
    }
    float zero[5] = {0, 0, 0, 0, 0}, scale = -1;
    memset(qv, 55, 5);
    EXPECT_STATUS(pocketvec_quantize_i8(zero, 5, qv, 5, &scale), POCKETVEC_STATUS_OK);
    check(scale == 0.0f && qv[0] == 0 && qv[4] == 0, "quantize of a zero vector: scale 0, q 0");
}

/* ---- info ----------------------------------------------------------------- */
static void test_info(void) {
    const char *s = NULL;
    EXPECT_STATUS(pocketvec_version(&s), POCKETVEC_STATUS_OK);
    check(s && strcmp(s, POCKETVEC_EXPECTED_VERSION) == 0, "version \"%s\" vs \"%s\"", s ? s : "(null)",
          POCKETVEC_EXPECTED_VERSION);
    s = NULL;
    EXPECT_STATUS(pocketvec_isa(&s), POCKETVEC_STATUS_OK);
    check(s && (!strcmp(s, "scalar") || !strcmp(s, "neon") || !strcmp(s, "avx2") || !strcmp(s, "avx512")),
          "isa name \"%s\"", s ? s : "(null)");
    const char *want = getenv("POCKETVEC_EXPECT_ISA");
    if (want) check(s && strcmp(s, want) == 0, "isa \"%s\", expected \"%s\"", s ? s : "(null)", want);
    printf("pocketvec %s, kernels: %s\n", POCKETVEC_EXPECTED_VERSION, s ? s : "?");
    for (int st = 0; st <= POCKETVEC_STATUS_PANIC; st++) {
        const char *m = NULL;
        EXPECT_STATUS(pocketvec_status_message(st, &m), POCKETVEC_STATUS_OK);
        check(m && strlen(m) > 1, "status_message(%d)", st);
    }
    const char *m = NULL;
    EXPECT_STATUS(pocketvec_status_message(POCKETVEC_STATUS_PANIC + 1, &m), POCKETVEC_STATUS_INVALID_ARGUMENT);
    check(m && strstr(m, "unknown"), "status_message(unknown) says unknown");
    EXPECT_STATUS(pocketvec_status_message(-1, &m), POCKETVEC_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(pocketvec_status_message(0, NULL), POCKETVEC_STATUS_NULL_POINTER);
    EXPECT_STATUS(pocketvec_version(NULL), POCKETVEC_STATUS_NULL_POINTER);
    EXPECT_STATUS(pocketvec_isa(NULL), POCKETVEC_STATUS_NULL_POINTER);
}

/* ---- bad arguments ---------------------------------------------------------- */
static void test_errors(void) {
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[8] = {8, 7, 6, 5, 4, 3, 2, 1}, out = 42.0f;
    int32_t iout = 42;
    int8_t ia[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint16_t ha[8] = {0x3c00, 0x3c00, 0x3c00, 0x3c00, 0x3c00, 0x3c00, 0x3c00, 0x3c00};
    unsigned char raw[64];
    float *misaligned = (float *)(void *)(raw + 1);

    EXPECT_STATUS(pocketvec_dot_f32(NULL, 8, b, 8, &out), POCKETVEC_STATUS_NULL_POINTER);
    EXPECT_STATUS(pocketvec_dot_f32(a, 8, NULL, 8, &out), POCKETVEC_STATUS_NULL_POINTER);
    EXPECT_STATUS(pocketvec_dot_f32(a, 8, b, 8, NULL), POCKETVEC_STATUS_NULL_POINTER);
    EXPECT_STATUS(pocketvec_dot_f32(a, 0, b, 0, &out), POCKETVEC_STATUS_ZERO_LENGTH);
    EXPECT_STATUS(pocketvec_dot_f32(a, 8, b, 7, &out), POCKETVEC_STATUS_LENGTH_MISMATCH);
    EXPECT_STATUS(pocketvec_cosine_f32(a, 7, b, 8, &out), POCKETVEC_STATUS_LENGTH_MISMATCH);
    EXPECT_STATUS(pocketvec_l2_f32(a, SIZE_MAX, b, SIZE_MAX, &out), POCKETVEC_STATUS_LENGTH_OVERFLOW);
    EXPECT_STATUS(pocketvec_l2sq_f32(a, SIZE_MAX / 4 + 1, b, 8, &out), POCKETVEC_STATUS_LENGTH_OVERFLOW);
    EXPECT_STATUS(pocketvec_dot_f32(misaligned, 4, b, 4, &out), POCKETVEC_STATUS_MISALIGNED);
    EXPECT_STATUS(pocketvec_dot_f32(a, 8, b, 8, misaligned), POCKETVEC_STATUS_MISALIGNED);
    check(out == 42.0f, "outputs untouched on error (out = %g)", out);
    EXPECT_STATUS(pocketvec_dot_f16(ha, 8, (const uint16_t *)(const void *)(raw + 1), 8, &out),
                  POCKETVEC_STATUS_MISALIGNED);
    EXPECT_STATUS(pocketvec_dot_f16(ha, 8, ha, 9, &out), POCKETVEC_STATUS_LENGTH_MISMATCH);
    EXPECT_STATUS(pocketvec_dot_i8(ia, 8, ia, 3, &iout), POCKETVEC_STATUS_LENGTH_MISMATCH);
    EXPECT_STATUS(pocketvec_dot_i8(ia, 8, ia, 8, NULL), POCKETVEC_STATUS_NULL_POINTER);
    EXPECT_STATUS(pocketvec_norm_f32(NULL, 8, &out), POCKETVEC_STATUS_NULL_POINTER);
    EXPECT_STATUS(pocketvec_norm_f16(ha, 0, &out), POCKETVEC_STATUS_ZERO_LENGTH);
    EXPECT_STATUS(pocketvec_norm_i8(ia, 8, NULL), POCKETVEC_STATUS_NULL_POINTER);
    EXPECT_STATUS(pocketvec_normalize_f32(a, 8, a + 3), POCKETVEC_STATUS_OVERLAP);
    check(a[0] == 1.0f && a[7] == 8.0f, "normalize with an overlapping out_norm changed nothing");
    EXPECT_STATUS(pocketvec_normalize_f16(NULL, 8, NULL), POCKETVEC_STATUS_NULL_POINTER);
    EXPECT_STATUS(pocketvec_normalize_i8(ia, 8, a, 7, NULL), POCKETVEC_STATUS_LENGTH_MISMATCH);
    EXPECT_STATUS(pocketvec_normalize_i8(ia, 8, (float *)(void *)ia, 8, NULL), POCKETVEC_STATUS_OVERLAP);

    /* exact int8 results that do not fit in 32 bits */
    enum { BIG = 40000 };
    static int8_t lo[BIG], hi[BIG];
    memset(lo, 0x80, BIG); /* -128 */
    memset(hi, 0x7f, BIG); /* 127 */
    iout = 42;
    EXPECT_STATUS(pocketvec_l2sq_i8(lo, BIG, hi, BIG, &iout), POCKETVEC_STATUS_RESULT_OVERFLOW);
    check(iout == 42, "l2sq_i8 overflow leaves the output untouched");
    EXPECT_STATUS(pocketvec_l2_i8(lo, BIG, hi, BIG, &out), POCKETVEC_STATUS_OK);
    check(close_to(out, sqrt(255.0 * 255.0 * BIG), 1, 1e-6), "l2_i8 is exact in float beyond i32");

    /* one-to-many */
    float blk[12] = {0}, dist[4], norms[4] = {1, 1, 1, 1};
    EXPECT_STATUS(pocketvec_distances_f32(3, a, 3, blk, 12, NULL, 0, dist, 4), POCKETVEC_STATUS_INVALID_METRIC);
    EXPECT_STATUS(pocketvec_distances_f32(-1, a, 3, blk, 12, NULL, 0, dist, 4), POCKETVEC_STATUS_INVALID_METRIC);
    EXPECT_STATUS(pocketvec_distances_f32(0, a, 5, blk, 12, NULL, 0, dist, 4), POCKETVEC_STATUS_LENGTH_MISMATCH);
    EXPECT_STATUS(pocketvec_distances_f32(0, a, 3, blk, 12, NULL, 0, dist, 3), POCKETVEC_STATUS_LENGTH_MISMATCH);
    EXPECT_STATUS(pocketvec_distances_f32(0, a, 3, blk, 12, norms, 3, dist, 4), POCKETVEC_STATUS_LENGTH_MISMATCH);
    EXPECT_STATUS(pocketvec_distances_f32(0, a, 0, blk, 12, NULL, 0, dist, 4), POCKETVEC_STATUS_ZERO_LENGTH);
    EXPECT_STATUS(pocketvec_distances_f32(0, a, 3, blk, 0, NULL, 0, dist, 4), POCKETVEC_STATUS_ZERO_LENGTH);
    EXPECT_STATUS(pocketvec_distances_f32(0, a, 3, NULL, 12, NULL, 0, dist, 4), POCKETVEC_STATUS_NULL_POINTER);
    EXPECT_STATUS(pocketvec_distances_f32(0, a, 3, blk, 12, NULL, 0, NULL, 4), POCKETVEC_STATUS_NULL_POINTER);
    EXPECT_STATUS(pocketvec_distances_f32(0, a, 3, blk, 12, NULL, 0, blk + 4, 4), POCKETVEC_STATUS_OVERLAP);
    EXPECT_STATUS(pocketvec_distances_f16(1, ha, 3, ha, 8, NULL, 0, dist, 2), POCKETVEC_STATUS_LENGTH_MISMATCH);
    EXPECT_STATUS(pocketvec_distances_i8(2, ia, 4, ia, 8, NULL, 0, dist, 2), POCKETVEC_STATUS_OK);
    EXPECT_STATUS(pocketvec_distances_i8(2, ia, 4, ia, 8, NULL, 0, dist, SIZE_MAX), POCKETVEC_STATUS_LENGTH_OVERFLOW);
    EXPECT_STATUS(pocketvec_distances_f32_bytes(0, a, 3, raw, 13, NULL, 0, dist, 1), POCKETVEC_STATUS_LENGTH_MISMATCH);
    EXPECT_STATUS(pocketvec_distances_f32_bytes(0, a, 3, raw + 1, 24, NULL, 0, dist, 2), POCKETVEC_STATUS_OK);
    EXPECT_STATUS(pocketvec_distances_f16_bytes(0, ha, 2, raw, 7, NULL, 0, dist, 1), POCKETVEC_STATUS_LENGTH_MISMATCH);

    /* top-k */
    int64_t ids[4] = {1, 2, 3, 4}, oid[4];
    float od[4];
    size_t count = 77;
    EXPECT_STATUS(pocketvec_top_k_f32(0, a, 3, blk, 12, ids, 4, 0, oid, od, 4, &count), POCKETVEC_STATUS_ZERO_LENGTH);
    EXPECT_STATUS(pocketvec_top_k_f32(0, a, 3, blk, 12, ids, 4, 3, oid, od, 2, &count),
                  POCKETVEC_STATUS_BUFFER_TOO_SMALL);
    EXPECT_STATUS(pocketvec_top_k_f32(0, a, 3, blk, 12, ids, 3, 2, oid, od, 2, &count),
                  POCKETVEC_STATUS_LENGTH_MISMATCH);
    EXPECT_STATUS(pocketvec_top_k_f32(0, a, 3, blk, 12, ids, 4, 2, oid, od, 2, NULL), POCKETVEC_STATUS_NULL_POINTER);
    EXPECT_STATUS(pocketvec_top_k_f32(9, a, 3, blk, 12, ids, 4, 2, oid, od, 2, &count),
                  POCKETVEC_STATUS_INVALID_METRIC);
    EXPECT_STATUS(pocketvec_top_k_f32(0, a, 3, blk, 12, ids, 4, 2, (int64_t *)(void *)od, od, 2, &count),
                  POCKETVEC_STATUS_OVERLAP);
    check(count == 77, "top_k leaves out_count untouched on error");
    EXPECT_STATUS(pocketvec_top_k_f16(0, ha, 4, ha, 8, NULL, 0, 1, oid, od, 1, &count), POCKETVEC_STATUS_OK);
    check(count == 1, "top_k_f16 count 1");
    EXPECT_STATUS(pocketvec_top_k_i8(0, ia, 3, ia, 8, NULL, 0, 1, oid, od, 1, &count), POCKETVEC_STATUS_LENGTH_MISMATCH);
    EXPECT_STATUS(pocketvec_top_k(ids, NULL, 4, 2, oid, od, 2, &count), POCKETVEC_STATUS_NULL_POINTER);
    EXPECT_STATUS(pocketvec_top_k(ids, dist, 4, 5, oid, od, 3, &count), POCKETVEC_STATUS_BUFFER_TOO_SMALL);
    EXPECT_STATUS(pocketvec_top_k(ids, dist, 2, 5, oid, od, 2, &count), POCKETVEC_STATUS_OK);
    check(count == 2, "top_k with k > n returns n (%zu)", count);

    /* conversions */
    uint16_t h[8];
    float nanv[3] = {1.0f, NAN, 2.0f}, infv[2] = {INFINITY, 1.0f}, scale = 42;
    int8_t qv[8];
    EXPECT_STATUS(pocketvec_f32_to_f16(a, 8, h, 7), POCKETVEC_STATUS_LENGTH_MISMATCH);
    EXPECT_STATUS(pocketvec_f32_to_f16(a, 8, NULL, 8), POCKETVEC_STATUS_NULL_POINTER);
    EXPECT_STATUS(pocketvec_f32_to_f16(a, 8, (uint16_t *)(void *)a, 8), POCKETVEC_STATUS_OVERLAP);
    EXPECT_STATUS(pocketvec_f16_to_f32(h, 0, a, 0), POCKETVEC_STATUS_ZERO_LENGTH);
    EXPECT_STATUS(pocketvec_f16_to_f32((const uint16_t *)(const void *)(raw + 1), 4, b, 4),
                  POCKETVEC_STATUS_MISALIGNED);
    EXPECT_STATUS(pocketvec_quantize_i8(nanv, 3, qv, 3, &scale), POCKETVEC_STATUS_NON_FINITE);
    EXPECT_STATUS(pocketvec_quantize_i8(infv, 2, qv, 2, &scale), POCKETVEC_STATUS_NON_FINITE);
    check(scale == 42, "quantize leaves the scale untouched on error");
    EXPECT_STATUS(pocketvec_quantize_i8(a, 8, qv, 8, NULL), POCKETVEC_STATUS_NULL_POINTER);
    EXPECT_STATUS(pocketvec_quantize_i8(a, 8, qv, 4, &scale), POCKETVEC_STATUS_LENGTH_MISMATCH);
    EXPECT_STATUS(pocketvec_dequantize_i8(qv, 8, NAN, b, 8), POCKETVEC_STATUS_NON_FINITE);
    EXPECT_STATUS(pocketvec_dequantize_i8(qv, 8, -1.0f, b, 8), POCKETVEC_STATUS_INVALID_ARGUMENT);
    EXPECT_STATUS(pocketvec_dequantize_i8(qv, 8, 1.0f, b, 9), POCKETVEC_STATUS_LENGTH_MISMATCH);
}

int main(void) {
    test_info();
    test_pairwise_f32();
    test_pairwise_f16();
    test_pairwise_i8();
    test_block();
    test_convert();
    test_errors();
    printf("kernels_test: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
