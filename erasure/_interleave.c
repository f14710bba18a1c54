/* Column interleave for RS(10,4) stripes: data byte j <-> shard j % 10, position j / 10.
 *
 * The byte transpose is the one copy of the data path that no library does for us
 * (ISA-L works on separate shard buffers), and numpy's strided copies manage ~3 GB/s,
 * less than a quarter of the ISA-L kernel. On CPUs with AVX-512 VBMI a block of 64
 * columns (640 bytes) is moved with two-table byte permutes (vpermt2b) entirely in
 * registers (~12 GB/s); elsewhere a plain loop the compiler vectorises as it can.
 *
 * erasure/layout.py calls the two sbx_* functions through ctypes (which releases the
 * GIL around each call), the same way it calls ISA-L; the module object itself is
 * empty and exists only so the file is a regular, importable extension.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>

#define D 10
#define BLK 64

static void split_scalar(const uint8_t *src, size_t m, uint8_t *const *rows, size_t from) {
    uint8_t *r0 = rows[0], *r1 = rows[1], *r2 = rows[2], *r3 = rows[3], *r4 = rows[4];
    uint8_t *r5 = rows[5], *r6 = rows[6], *r7 = rows[7], *r8 = rows[8], *r9 = rows[9];
    for (size_t k = from; k < m; k++) {
        const uint8_t *s = src + D * k;
        r0[k] = s[0]; r1[k] = s[1]; r2[k] = s[2]; r3[k] = s[3]; r4[k] = s[4];
        r5[k] = s[5]; r6[k] = s[6]; r7[k] = s[7]; r8[k] = s[8]; r9[k] = s[9];
    }
}

static void join_scalar(uint8_t *dst, size_t m, const uint8_t *const *rows, size_t from) {
    const uint8_t *r0 = rows[0], *r1 = rows[1], *r2 = rows[2], *r3 = rows[3], *r4 = rows[4];
    const uint8_t *r5 = rows[5], *r6 = rows[6], *r7 = rows[7], *r8 = rows[8], *r9 = rows[9];
    for (size_t k = from; k < m; k++) {
        uint8_t *s = dst + D * k;
        s[0] = r0[k]; s[1] = r1[k]; s[2] = r2[k]; s[3] = r3[k]; s[4] = r4[k];
        s[5] = r5[k]; s[6] = r6[k]; s[7] = r7[k]; s[8] = r8[k]; s[9] = r9[k];
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define VBMI __attribute__((target("avx512f,avx512bw,avx512vbmi")))

/* split: shard i takes byte k of its 64 from source byte 10k+i, which lies in the
 * 128-byte source pair p = (10k+i) / 128 at index (10k+i) % 128. */
static uint8_t split_idx[D][D / 2][BLK];
static uint64_t split_mask[D][D / 2];
/* join: destination byte t of output register r is column (64r+t)/10, shard (64r+t)%10,
 * taken from shard pair (2j, 2j+1) at index (shard & 1) * 64 + column. */
static uint8_t join_idx[D][D / 2][BLK];
static uint64_t join_mask[D][D / 2];
static int have_vbmi;

static void init_tables(void) {
    for (int i = 0; i < D; i++)
        for (int k = 0; k < BLK; k++) {
            int q = D * k + i, p = q / 128;
            split_idx[i][p][k] = (uint8_t)(q % 128);
            split_mask[i][p] |= 1ULL << k;
        }
    for (int r = 0; r < D; r++)
        for (int t = 0; t < BLK; t++) {
            int q = BLK * r + t, col = q / D, shard = q % D, j = shard / 2;
            join_idx[r][j][t] = (uint8_t)((shard & 1) * BLK + col);
            join_mask[r][j] |= 1ULL << t;
        }
}

VBMI static void split_vbmi(const uint8_t *src, size_t m, uint8_t *const *rows) {
    size_t blocks = m / BLK;
    for (size_t b = 0; b < blocks; b++) {
        const uint8_t *s = src + b * BLK * D;
        __m512i in[D];
        for (int r = 0; r < D; r++) in[r] = _mm512_loadu_si512((const void *)(s + BLK * r));
        for (int i = 0; i < D; i++) {
            __m512i acc = _mm512_setzero_si512();
            for (int p = 0; p < D / 2; p++) {
                __mmask64 k = split_mask[i][p];
                if (!k) continue;
                __m512i idx = _mm512_loadu_si512((const void *)split_idx[i][p]);
                acc = _mm512_mask_mov_epi8(acc, k, _mm512_permutex2var_epi8(in[2 * p], idx, in[2 * p + 1]));
            }
            _mm512_storeu_si512((void *)(rows[i] + b * BLK), acc);
        }
    }
    split_scalar(src, m, rows, blocks * BLK);
}

VBMI static void join_vbmi(uint8_t *dst, size_t m, const uint8_t *const *rows) {
    size_t blocks = m / BLK;
    for (size_t b = 0; b < blocks; b++) {
        __m512i in[D];
        for (int i = 0; i < D; i++) in[i] = _mm512_loadu_si512((const void *)(rows[i] + b * BLK));
        uint8_t *d = dst + b * BLK * D;
        for (int r = 0; r < D; r++) {
            __m512i acc = _mm512_setzero_si512();
            for (int j = 0; j < D / 2; j++) {
                __mmask64 k = join_mask[r][j];
                if (!k) continue;
                __m512i idx = _mm512_loadu_si512((const void *)join_idx[r][j]);
                acc = _mm512_mask_mov_epi8(acc, k, _mm512_permutex2var_epi8(in[2 * j], idx, in[2 * j + 1]));
            }
            _mm512_storeu_si512((void *)(d + BLK * r), acc);
        }
    }
    join_scalar(dst, m, rows, blocks * BLK);
}

/* Runs once when the library is loaded, before any caller can see it: no locking. */
__attribute__((constructor)) static void detect(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512bw")) {
        init_tables();
        have_vbmi = 1;
    }
}

static int vbmi(void) { return have_vbmi; }
#else
static int vbmi(void) { return 0; }
#endif

/* Which implementation runs: "avx512vbmi" or "scalar". */
const char *sbx_interleave_impl(void) { return vbmi() ? "avx512vbmi" : "scalar"; }

/* rows[i][k] = src[10k + i] for k < m. */
void sbx_split10(const uint8_t *src, size_t m, uint8_t *const *rows) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (vbmi()) { split_vbmi(src, m, rows); return; }
#endif
    split_scalar(src, m, rows, 0);
}

/* dst[10k + i] = rows[i][k] for k < m. */
void sbx_join10(uint8_t *dst, size_t m, const uint8_t *const *rows) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (vbmi()) { join_vbmi(dst, m, rows); return; }
#endif
    join_scalar(dst, m, rows, 0);
}

/* The signature of ISA-L's ec_encode_data: out[r][x] = sum_c M[r][c] * in[c][x]. */
typedef void (*sbx_kernel_fn)(int len, int k, int rows, unsigned char *tables, unsigned char **data,
                              unsigned char **coding);

/* split followed by the parity kernel, `block` columns at a time so the kernel reads the
 * rows the transpose has just written from L2; one call per stripe keeps Python (and its
 * per-block overhead, which measured more than the fusion gains) out of the loop.
 * rows holds the 10 data rows then `nparity` parity rows, each of m bytes. */
void sbx_split10_encode(const uint8_t *src, size_t m, uint8_t *const *rows, size_t block,
                        sbx_kernel_fn kernel, int nparity, unsigned char *tables) {
    uint8_t *at[D + 4];
    if (nparity < 0 || nparity > 4 || block == 0) return;
    for (size_t start = 0; start < m; start += block) {
        size_t count = m - start < block ? m - start : block;
        for (int i = 0; i < D + nparity; i++) at[i] = rows[i] + start;
        sbx_split10(src + D * start, count, at);
        kernel((int)count, D, nparity, tables, at, at + D);
    }
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_interleave",
    "Column interleave for erasure.layout; used through ctypes, no Python API.", -1, NULL,
};

PyMODINIT_FUNC PyInit__interleave(void) { return PyModule_Create(&module); }
