/* Compiled loops of the exact top-k selection (sparsgd.compress.kernels wraps them).
 *
 * Five functions, each one call with the GIL released, over flat float32 or float64 arrays
 * (code: 0 for float32, 1 for float64) and int64 positions. Addresses come in as integers
 * (tensor.data_ptr()); the caller checks sizes, dtypes and contiguity.
 *
 *   candidates(x, n, code, t, idx, mag, cap[, pack]) -> count
 *       (1) every i with not(|x_i| < t), ascending: idx[j] = i, mag[j] = |x_i| for the first
 *           cap of them; returns how many there are (more than cap: call again with room).
 *           NaN is a candidate (the test is written not(<)), Inf one for any t. A block of
 *           BLOCK entries is first tested at once (a loop the compiler vectorises, or AVX2
 *           compares where the CPU has them); only a block with a hit is looked at entry by
 *           entry.
 *
 *   select(mag, idx, m, k, code, work, out) -> 0
 *       (2) v = k-th largest of mag[0..m-1], by quickselect on a copy in work
 *       (3) out = the idx of every mag > v, then of the first (k - #{mag > v}) with mag == v,
 *           in the order given (ascending idx in, ascending out): ties to the lower index.
 *           idx == 0 means idx[j] = j. mag must be finite (the caller made sure).
 *
 *   topk(x, n, k, code, start, stride, r1, r2, r3, work, out, out32, vals) -> 0, or -1 if x
 *   holds NaN or Inf, or -2 if memory ran out
 *       the k largest |x_i|, ties to the lower index, exact whatever the sample says:
 *       (4) S = |x[start::stride]| into work, finite, n_s entries   (stride 0: skip to (7))
 *       (5) for r in r1 <= r2 <= r3: t = r-th largest of S; C = (1) at t, keeping the
 *                signed x_i (a value for the message then needs no read of x at random)
 *       (6)     if |C| >= k: the answer is (2)-(3) over C (every entry tied with the k-th
 *                largest |x| is in C, since all with |x_i| >= t are)
 *       (7) else: (2)-(3) over all of x, |x| copied into work with a finiteness test
 *       Positions go to out (int64), or to out32 (int32) when out32 != 0; with vals != 0 the
 *       values x_i too: the whole sparse message in one call.
 *
 *   union_sum(ai, av, na, bi, bv, nb, code, oi, ov) -> n
 *       (8) two sets of ascending distinct int64 indices with values: their union, ascending,
 *           into oi (n entries), the values summed where an index is in both (s = 0; s += a;
 *           s += b: what index_add into zeros gives, bit for bit, -0.0 included).
 *
 *   complement(pos, k, n, out) -> 0
 *       (9) out = the n - k ascending integers of [0, n) not among the k ascending pos.
 *
 *   set_simd(on) -> previous: the AVX2 version of (1) for float32 on or off (tests).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 32 /* entries tested at once; candidates_f32's bit mask needs exactly 32 */

/* (1) for float32 on the bits: with u = bits of x_i without the sign and tb = bits of t,
 * not(|x_i| < t) is u >= tb as signed integers for any t that is not NaN (for t >= 0 the
 * order of the bits is the order of the values, and NaN's bits lie above Inf's; a negative
 * t has negative bits and takes everything). A NaN t takes everything, like the float test.
 * The integer test vectorises to one compare per 4 (or 8) entries; a block with a hit is
 * turned into a 32-bit mask whose set bits are visited in order (count trailing zeros), so
 * its cost follows its candidates, not its length. gcc on x86-64 also builds an AVX2 copy
 * and picks one when the module loads. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif

#define KEEP_CANDIDATE(i, a)                                                                 \
    do {                                                                                   \
        if (count < cap) {                                                                 \
            idx[count] = (i);                                                              \
            mag[count] = (a);                                                              \
        }                                                                                  \
        count++;                                                                           \
    } while (0)

/* The candidates of the block at b whose mask bit j says entry b + j is one, in order (count
 * trailing zeros): work per candidate, not per entry. Returns the new count. */
static inline int64_t keep_block(const float *x, int64_t b, uint32_t mask, int64_t *idx,
                                 float *mag, int64_t cap, int64_t count, int sign)
{
    while (mask) {
        int j = __builtin_ctz(mask);
        mask &= mask - 1;
        KEEP_CANDIDATE(b + j, sign ? x[b + j] : fabsf(x[b + j]));
    }
    return count;
}

/* (1) for float32 with AVX2 (x86-64, chosen when the module loads, t > 0 only): the same
 * integer test, as tb > 0 makes u >= tb the same as u > tb - 1, by 8-lane compares whose
 * lanes movemask reads out as a bit mask (the portable loop below builds it bit by bit).
 * Two ways to turn masks into candidates:
 *   skip  blocks of 32 (four compares); a block with no candidate costs only its compares,
 *         one with some walks its mask bit by bit: a mispredicted branch or two per hit
 *         block, which at 1.5 % candidates (40 % of the blocks hit) dominates the pass;
 *   pack  every 8 entries, the candidates moved to the front of the lanes by a permutation
 *         from a table (pack_lanes[mask]) and stored whole, the count advanced by popcount:
 *         no branch, about one entry a cycle at any density.
 * At 1e7 entries (a read pass 1.1-1.6 ms) skip takes 1.2 ms at 0.007 % candidates, 1.3 at
 * 0.2 %, 3.5 at 1.5 %; pack about 2.5 ms at all three; the portable loop 4.7 at 1.5 %.
 * From x's memory, each mispredicted branch also stalls the loads behind it; from cache it
 * does not, and skip wins: at 1.5 % candidates skip took 72 us for 1e6 entries against
 * pack's 252, 510 and 500 us at 2e6, 1.4 and 1.0 ms at 4e6 (this machine). So the caller
 * asks for pack when x has at least PACK_MIN_NUMEL entries and it expects at least
 * 1/PACK_FRACTION of them as candidates. pack's whole-lane stores need 8 free slots: it
 * hands over to skip when fewer are left in cap. set_simd(0) switches both off (the tests
 * run every version). */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
static int use_avx2 = 0;             /* set when the module loads: the CPU has AVX2 */
static int32_t pack_lanes[256][8];   /* [m]: the lanes of m's set bits in order, then zeros */

static void fill_pack_lanes(void)
{
    for (int m = 0; m < 256; m++) {
        int o = 0;
        for (int j = 0; j < 8; j++)
            if (m >> j & 1)
                pack_lanes[m][o++] = j;
        while (o < 8)
            pack_lanes[m][o++] = 0;
    }
}

#define LANE_MASK(v) ((uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(v)))

/* Whole blocks only, from 0 up to *next (the caller tests the rest); returns the count. */
__attribute__((target("avx2"))) static int64_t candidates_f32_avx2(const float *x, int64_t n,
                                                                    int32_t tb, int64_t *idx,
                                                                    float *mag, int64_t cap,
                                                                    int pack, int sign,
                                                                    int64_t *next)
{
    const int32_t *u = (const int32_t *)x;
    const __m256i low31 = _mm256_set1_epi32(0x7fffffff), below = _mm256_set1_epi32(tb - 1);
    const __m256i kept = sign ? _mm256_set1_epi32(-1) : low31; /* the bits stored in mag */
    int64_t count = 0, b = 0;
    for (; pack && b + 8 <= n && count + 8 <= cap; b += 8) { /* pack */
        __m256i raw = _mm256_loadu_si256((const __m256i *)(u + b));
        __m256i a = _mm256_and_si256(raw, low31);
        uint32_t m = LANE_MASK(_mm256_cmpgt_epi32(a, below));
        __m256i lanes = _mm256_loadu_si256((const __m256i *)pack_lanes[m]);
        __m256i v = _mm256_and_si256(raw, kept);
        _mm256_storeu_si256((__m256i *)(mag + count), _mm256_permutevar8x32_epi32(v, lanes));
        __m256i base = _mm256_set1_epi64x(b);
        __m128i low = _mm256_castsi256_si128(lanes), high = _mm256_extracti128_si256(lanes, 1);
        __m256i first = _mm256_add_epi64(_mm256_cvtepi32_epi64(low), base);
        __m256i last = _mm256_add_epi64(_mm256_cvtepi32_epi64(high), base);
        _mm256_storeu_si256((__m256i *)(idx + count), first);
        _mm256_storeu_si256((__m256i *)(idx + count + 4), last);
        count += __builtin_popcount(m);
    }
    for (; b + BLOCK <= n; b += BLOCK) { /* skip */
        const __m256i *at = (const __m256i *)(u + b);
        __m256i c[4]; /* lanes of candidates: all ones */
        for (int g = 0; g < 4; g++)
            c[g] = _mm256_cmpgt_epi32(_mm256_and_si256(_mm256_loadu_si256(at + g), low31), below);
        __m256i any = _mm256_or_si256(_mm256_or_si256(c[0], c[1]), _mm256_or_si256(c[2], c[3]));
        if (_mm256_testz_si256(any, any))
            continue;
        uint32_t mask = LANE_MASK(c[0]) | LANE_MASK(c[1]) << 8;
        mask |= LANE_MASK(c[2]) << 16 | LANE_MASK(c[3]) << 24;
        count = sign ? keep_block(x, b, mask, idx, mag, cap, count, 1) /* constant: inlined apart */
                     : keep_block(x, b, mask, idx, mag, cap, count, 0);
    }
    *next = b;
    return count;
}
#endif

CLONES static int64_t candidates_f32(const float *x, int64_t n, float t, int64_t *idx,
                                     float *mag, int64_t cap, int pack, int sign)
{
    const int32_t *u = (const int32_t *)x;
    int32_t tb;
    memcpy(&tb, &t, sizeof tb);
    if (t != t)
        tb = INT32_MIN;
    int64_t count = 0, b = 0;
#ifdef HAVE_AVX2_PATH
    if (use_avx2 && tb > 0)
        count = candidates_f32_avx2(x, n, tb, idx, mag, cap, pack, sign, &b);
#else
    (void)pack;
#endif
    for (; b + BLOCK <= n; b += BLOCK) { /* what the AVX2 version has not done: all, or none */
        int32_t hit = 0;
        for (int j = 0; j < BLOCK; j++)
            hit |= (u[b + j] & 0x7fffffff) >= tb ? -1 : 0;
        if (!hit)
            continue;
        uint32_t mask = 0; /* bit j: entry b + j is a candidate (BLOCK is 32) */
        for (int j = 0; j < BLOCK; j++)
            mask |= (uint32_t)((u[b + j] & 0x7fffffff) >= tb) << j;
        count = sign ? keep_block(x, b, mask, idx, mag, cap, count, 1) /* constant: inlined apart */
                     : keep_block(x, b, mask, idx, mag, cap, count, 0);
    }
    for (; b < n; b++)
        if ((u[b] & 0x7fffffff) >= tb)
            KEEP_CANDIDATE(b, sign ? x[b] : fabsf(x[b]));
    return count;
}

/* (1) for float64: the float test, blocks of BLOCK tested at once. */
static int64_t candidates_f64(const double *x, int64_t n, double t, int64_t *idx, double *mag,
                              int64_t cap, int pack, int sign)
{
    (void)pack; /* no packed version for float64 */
    int64_t count = 0, b = 0;
    for (; b + BLOCK <= n; b += BLOCK) {
        int hit = 0;
        for (int j = 0; j < BLOCK; j++)
            hit |= !(fabs(x[b + j]) < t);
        if (!hit)
            continue;
        for (int j = 0; j < BLOCK; j++)
            if (!(fabs(x[b + j]) < t))
                KEEP_CANDIDATE(b + j, sign ? x[b + j] : fabs(x[b + j]));
    }
    for (; b < n; b++)
        if (!(fabs(x[b]) < t))
            KEEP_CANDIDATE(b, sign ? x[b] : fabs(x[b]));
    return count;
}

#define PACK_FRACTION 128        /* pack when 1/128 of x or more are expected candidates */
#define PACK_MIN_NUMEL (1 << 21) /* and x is past the caches (8 MB of float32 here) */

#define DEFINE_KERNELS(T, SUF, FABS, TMAX)                                                   \
    static int cmp_##SUF(const void *pa, const void *pb)                                   \
    {                                                                                      \
        T a = *(const T *)pa, b = *(const T *)pb;                                          \
        return (a > b) - (a < b);                                                          \
    }                                                                                      \
                                                                                           \
    /* The nth smallest (0-based) of a[0..n-1], n >= 1, no NaN, reordering a: quickselect  \
     * with a median-of-three pivot and a branch-free partition (every entry is swapped,  \
     * the boundary moves by the comparison). When the pivot falls among the least quarter \
     * of the range (as with a run of equal entries), a second pass moves the entries      \
     * equal to it forward, so a run of ties ends a round; a sort of what is left once the \
     * rounds exceed 2 log2 n + 16 bounds the worst case. */                               \
    static T nth_smallest_##SUF(T *a, int64_t n, int64_t nth)                              \
    {                                                                                      \
        int64_t lo = 0, hi = n - 1, rounds = 16;                                           \
        for (int64_t s = n; s > 1; s >>= 1)                                                \
            rounds += 2;                                                                   \
        while (hi > lo) {                                                                  \
            if (rounds-- == 0) {                                                           \
                qsort(a + lo, (size_t)(hi - lo + 1), sizeof(T), cmp_##SUF);                \
                return a[nth];                                                             \
            }                                                                              \
            int64_t first = lo, mid = lo + (hi - lo) / 2;                                  \
            T w;                                                                           \
            if (a[mid] < a[lo])                                                            \
                w = a[mid], a[mid] = a[lo], a[lo] = w;                                     \
            if (a[hi] < a[lo])                                                             \
                w = a[hi], a[hi] = a[lo], a[lo] = w;                                       \
            if (a[mid] < a[hi])                                                            \
                w = a[hi], a[hi] = a[mid], a[mid] = w;                                     \
            T pivot = a[hi]; /* the median of the three */                                 \
            int64_t j = lo;                                                                \
            for (int64_t i = lo; i < hi; i++) { /* a[lo..j-1] < pivot <= a[j..i-1] */      \
                T v = a[i];                                                                \
                a[i] = a[j];                                                               \
                a[j] = v;                                                                  \
                j += v < pivot;                                                            \
            }                                                                              \
            a[hi] = a[j];                                                                  \
            a[j] = pivot;                                                                  \
            if (nth == j)                                                                  \
                return pivot;                                                              \
            if (nth < j) {                                                                 \
                hi = j - 1;                                                                \
                continue;                                                                  \
            }                                                                              \
            lo = j + 1;                                                                    \
            if (j - first > (hi - first) / 4) /* the pivot is not among the least quarter */ \
                continue;                                                                  \
            int64_t e = lo; /* a run of ties may sit here: move entries == pivot forward */ \
            for (int64_t i = lo; i <= hi; i++) {                                           \
                T v = a[i];                                                                \
                a[i] = a[e];                                                               \
                a[e] = v;                                                                  \
                e += !(pivot < v);                                                         \
            }                                                                              \
            if (nth < e) /* a[lo..e-1] == pivot */                                         \
                return pivot;                                                              \
            lo = e;                                                                        \
        }                                                                                  \
        return a[nth];                                                                     \
    }                                                                                      \
                                                                                           \
    /* (3) given v: every entry above it, then ties at v up to k, in the order given; the   \
     * position goes to out (int64) or out32 (int32). absolute: mag holds signed values (x, \
     * or C's) compared by |.|, and with vals each one chosen is copied there too. */      \
    static void emit_##SUF(const T *mag, const int64_t *idx, int64_t m, int64_t k, T v,    \
                           int absolute, int64_t *out, int32_t *out32, T *vals)           \
    {                                                                                      \
        int64_t above = 0, o = 0;                                                          \
        if (absolute)                                                                      \
            for (int64_t i = 0; i < m; i++)                                                \
                above += FABS(mag[i]) > v;                                                 \
        else                                                                               \
            for (int64_t i = 0; i < m; i++)                                                \
                above += mag[i] > v;                                                       \
        int64_t ties = k - above;                                                          \
        for (int64_t i = 0; i < m && o < k; i++) { /* no branch on the data */          \
            T a = absolute ? FABS(mag[i]) : mag[i]; /* written at o < k, kept if take */ \
            int64_t at = idx ? idx[i] : i;                                                 \
            int tie = (a == v) & (ties > 0);                                               \
            int take = (a > v) | tie;                                                      \
            ties -= tie;                                                                   \
            if (out32)                                                                     \
                out32[o] = (int32_t)at;                                                    \
            else                                                                           \
                out[o] = at;                                                               \
            if (vals) /* given with absolute only */                                       \
                vals[o] = mag[i];                                                          \
            o += take;                                                                     \
        }                                                                                  \
    }                                                                                      \
                                                                                           \
    static void select_##SUF(const T *mag, const int64_t *idx, int64_t m, int64_t k, T *work, \
                             int64_t *out)                                                 \
    {                                                                                      \
        memcpy(work, mag, (size_t)m * sizeof(T));                                          \
        T v = nth_smallest_##SUF(work, m, m - k); /* (2) */                                \
        emit_##SUF(mag, idx, m, k, v, 0, out, NULL, NULL); /* (3) */                       \
    }                                                                                      \
                                                                                           \
    /* (7) over all of x. */                                                               \
    static int all_##SUF(const T *x, int64_t n, int64_t k, T *work, int64_t *out,          \
                         int32_t *out32, T *vals)                                          \
    {                                                                                      \
        int bad = 0;                                                                       \
        for (int64_t i = 0; i < n; i++) {                                                  \
            T a = FABS(x[i]);                                                              \
            work[i] = a;                                                                   \
            bad |= !(a <= TMAX);                                                           \
        }                                                                                  \
        if (bad)                                                                           \
            return -1;                                                                     \
        T v = nth_smallest_##SUF(work, n, n - k);                                          \
        emit_##SUF(x, NULL, n, k, v, 1, out, out32, vals);                                 \
        return 0;                                                                          \
    }                                                                                      \
                                                                                           \
    static int topk_##SUF(const T *x, int64_t n, int64_t k, int64_t start, int64_t stride, \
                          const int64_t *ranks, T *work, int64_t *out, int32_t *out32,     \
                          T *vals)                                                         \
    {                                                                                      \
        if (stride <= 0)                                                                   \
            return all_##SUF(x, n, k, work, out, out32, vals);                             \
        int64_t n_s = 0, cap = 2 * k + 256, count = 0;                                     \
        int bad = 0;                                                                       \
        for (int64_t i = start; i < n; i += stride) { /* (4) */                            \
            T a = FABS(x[i]);                                                              \
            work[n_s++] = a;                                                               \
            bad |= !(a <= TMAX);                                                           \
        }                                                                                  \
        if (bad)                                                                           \
            return -1;                                                                     \
        /* C's positions, magnitudes and a copy for (6) go in work after the sample where they \
         * fit (a fresh malloc of a few MB is faulted in page by page on every call), else in \
         * memory of their own, as when C outgrows cap */                                 \
        int64_t at = (n_s * (int64_t)sizeof(T) + 7) / 8 * 8; /* bytes: the sample, aligned */ \
        int inside = at + cap * (int64_t)(8 + 2 * sizeof(T)) <= n * (int64_t)sizeof(T);     \
        int64_t *idx = inside ? (int64_t *)((char *)work + at) : malloc((size_t)cap * 8);    \
        T *mag = inside ? (T *)(idx + cap) : malloc((size_t)cap * sizeof(T));               \
        T *spare = inside ? mag + cap : NULL;                                              \
        for (int64_t r = 0, rank = 0; r < 3 && idx && mag; r++) {                          \
            if (ranks[r] <= rank || rank == n_s)                                           \
                continue; /* ranks ascend; a repeat would find the same C */               \
            rank = ranks[r] < n_s ? ranks[r] : n_s;                                        \
            T t = nth_smallest_##SUF(work, n_s, n_s - rank); /* (5) */                     \
            int pack = n >= PACK_MIN_NUMEL && rank * PACK_FRACTION >= n_s;                 \
            count = candidates_##SUF(x, n, t, idx, mag, cap, pack, 1);                     \
            if (count > cap) { /* short of room: grow once, pass again */                  \
                if (!inside) {                                                             \
                    free(idx);                                                             \
                    free(mag);                                                             \
                }                                                                          \
                inside = 0;                                                                \
                spare = NULL;                                                              \
                cap = count;                                                               \
                idx = malloc((size_t)cap * sizeof(int64_t));                               \
                mag = malloc((size_t)cap * sizeof(T));                                     \
                if (!idx || !mag)                                                          \
                    break;                                                                 \
                count = candidates_##SUF(x, n, t, idx, mag, cap, pack, 1);                 \
            }                                                                              \
            if (count < k)                                                                 \
                continue;                                                                  \
            T *copy = spare ? spare : malloc((size_t)count * sizeof(T));                   \
            int64_t m = copy ? count : 0; /* C's values are signed: copy their |.| */      \
            for (int64_t j = 0; j < m; j++) {                                              \
                T a = FABS(mag[j]);                                                        \
                copy[j] = a;                                                               \
                bad |= !(a <= TMAX); /* NaN and Inf are always candidates */               \
            }                                                                              \
            if (copy && !bad) { /* (6) */                                                  \
                T v = nth_smallest_##SUF(copy, count, count - k);                          \
                emit_##SUF(mag, idx, count, k, v, 1, out, out32, vals);                    \
            }                                                                              \
            if (copy != spare)                                                             \
                free(copy);                                                                \
            if (!inside) {                                                                 \
                free(idx);                                                                 \
                free(mag);                                                                 \
            }                                                                              \
            return bad ? -1 : (copy ? 0 : -2);                                             \
        }                                                                                  \
        int oom = !idx || !mag;                                                            \
        if (!inside) {                                                                     \
            free(idx);                                                                     \
            free(mag);                                                                     \
        }                                                                                  \
        return oom ? -2 : all_##SUF(x, n, k, work, out, out32, vals); /* (7) */           \
    }                                                                                      \
                                                                                           \
    /* (8) the union of two ascending index lists, values summed where both hold one:      \
     * s = 0, s += a, s += b, as an index_add into zeros does it, bit for bit. */          \
    static int64_t union_sum_##SUF(const int64_t *ai, const T *av, int64_t na,             \
                                   const int64_t *bi, const T *bv, int64_t nb,             \
                                   int64_t *oi, T *ov)                                     \
    {                                                                                      \
        int64_t i = 0, j = 0, o = 0;                                                       \
        while (i < na || j < nb) {                                                         \
            T s = 0;                                                                       \
            int64_t at;                                                                    \
            if (j == nb || (i < na && ai[i] < bi[j])) {                                    \
                at = ai[i];                                                                \
                s += av[i++];                                                              \
            } else if (i == na || bi[j] < ai[i]) {                                         \
                at = bi[j];                                                                \
                s += bv[j++];                                                              \
            } else {                                                                       \
                at = ai[i];                                                                \
                s += av[i++];                                                              \
                s += bv[j++];                                                              \
            }                                                                              \
            oi[o] = at;                                                                    \
            ov[o++] = s;                                                                   \
        }                                                                                  \
        return o;                                                                          \
    }

DEFINE_KERNELS(float, f32, fabsf, 3.40282346638528859812e+38F)
DEFINE_KERNELS(double, f64, fabs, 1.79769313486231570815e+308)

static PyObject *py_candidates(PyObject *self, PyObject *args)
{
    (void)self;
    unsigned long long x, idx, mag;
    long long n, cap;
    int code, pack = 0;
    double t;
    if (!PyArg_ParseTuple(args, "KLidKKL|p", &x, &n, &code, &t, &idx, &mag, &cap, &pack))
        return NULL;
    int64_t count;
    Py_BEGIN_ALLOW_THREADS
    if (code == 0)
        count = candidates_f32((const float *)(uintptr_t)x, n, (float)t, (int64_t *)(uintptr_t)idx,
                               (float *)(uintptr_t)mag, cap, pack, 0);
    else
        count = candidates_f64((const double *)(uintptr_t)x, n, t, (int64_t *)(uintptr_t)idx,
                               (double *)(uintptr_t)mag, cap, pack, 0);
    Py_END_ALLOW_THREADS
    return PyLong_FromLongLong(count);
}

static PyObject *py_select(PyObject *self, PyObject *args)
{
    (void)self;
    unsigned long long mag, idx, work, out;
    long long m, k;
    int code;
    if (!PyArg_ParseTuple(args, "KKLLiKK", &mag, &idx, &m, &k, &code, &work, &out))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (code == 0)
        select_f32((const float *)(uintptr_t)mag, (const int64_t *)(uintptr_t)idx, m, k,
                   (float *)(uintptr_t)work, (int64_t *)(uintptr_t)out);
    else
        select_f64((const double *)(uintptr_t)mag, (const int64_t *)(uintptr_t)idx, m, k,
                   (double *)(uintptr_t)work, (int64_t *)(uintptr_t)out);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(0);
}

static PyObject *py_topk(PyObject *self, PyObject *args)
{
    (void)self;
    unsigned long long x, work, out, out32, vals;
    long long n, k, start, stride;
    int64_t ranks[3];
    int code, status;
    if (!PyArg_ParseTuple(args, "KLLiLLLLLKKKK", &x, &n, &k, &code, &start, &stride, &ranks[0],
                          &ranks[1], &ranks[2], &work, &out, &out32, &vals))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (code == 0)
        status = topk_f32((const float *)(uintptr_t)x, n, k, start, stride, ranks,
                          (float *)(uintptr_t)work, (int64_t *)(uintptr_t)out,
                          (int32_t *)(uintptr_t)out32, (float *)(uintptr_t)vals);
    else
        status = topk_f64((const double *)(uintptr_t)x, n, k, start, stride, ranks,
                          (double *)(uintptr_t)work, (int64_t *)(uintptr_t)out,
                          (int32_t *)(uintptr_t)out32, (double *)(uintptr_t)vals);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(status);
}

/* (9) the ascending integers of [0, n) that are not in pos (k ascending distinct entries). */
static PyObject *py_complement(PyObject *self, PyObject *args)
{
    (void)self;
    unsigned long long pos, out;
    long long k, n;
    if (!PyArg_ParseTuple(args, "KLLK", &pos, &k, &n, &out))
        return NULL;
    const int64_t *p = (const int64_t *)(uintptr_t)pos;
    int64_t *o = (int64_t *)(uintptr_t)out;
    Py_BEGIN_ALLOW_THREADS
    int64_t j = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        if (j < k && p[j] == i)
            j++;
        else
            o[m++] = i;
    }
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(0);
}

static PyObject *py_union_sum(PyObject *self, PyObject *args)
{
    (void)self;
    unsigned long long ai, av, bi, bv, oi, ov;
    long long na, nb;
    int code;
    int64_t n;
    if (!PyArg_ParseTuple(args, "KKLKKLiKK", &ai, &av, &na, &bi, &bv, &nb, &code, &oi, &ov))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    if (code == 0)
        n = union_sum_f32((const int64_t *)(uintptr_t)ai, (const float *)(uintptr_t)av, na,
                          (const int64_t *)(uintptr_t)bi, (const float *)(uintptr_t)bv, nb,
                          (int64_t *)(uintptr_t)oi, (float *)(uintptr_t)ov);
    else
        n = union_sum_f64((const int64_t *)(uintptr_t)ai, (const double *)(uintptr_t)av, na,
                          (const int64_t *)(uintptr_t)bi, (const double *)(uintptr_t)bv, nb,
                          (int64_t *)(uintptr_t)oi, (double *)(uintptr_t)ov);
    Py_END_ALLOW_THREADS
    return PyLong_FromLongLong(n);
}

/* set_simd(on) -> previous: the AVX2 candidate pass on (if the CPU has it) or off. */
static PyObject *py_set_simd(PyObject *self, PyObject *args)
{
    (void)self;
    int on;
    if (!PyArg_ParseTuple(args, "p", &on))
        return NULL;
#ifdef HAVE_AVX2_PATH
    int previous = use_avx2;
    use_avx2 = on && __builtin_cpu_supports("avx2");
    return PyBool_FromLong(previous);
#else
    return PyBool_FromLong(0);
#endif
}

static PyMethodDef methods[] = {
    {"set_simd", py_set_simd, METH_VARARGS, "AVX2 candidate pass on or off; returns previous."},
    {"candidates", py_candidates, METH_VARARGS, "(1) candidate pass; see the file's comment."},
    {"select", py_select, METH_VARARGS, "(2)-(3) exact top-k among candidates."},
    {"topk", py_topk, METH_VARARGS, "(4)-(7) exact top-k of x; see the file's comment."},
    {"union_sum", py_union_sum, METH_VARARGS, "(8) union of two sparse sets, values summed."},
    {"complement", py_complement, METH_VARARGS, "(9) [0, n) without the ascending pos."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_select", "Compiled loops of the exact top-k selection.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__select(void)
{
#ifdef HAVE_AVX2_PATH
    __builtin_cpu_init();
    use_avx2 = __builtin_cpu_supports("avx2");
    fill_pack_lanes();
#endif
    return PyModule_Create(&module);
}
