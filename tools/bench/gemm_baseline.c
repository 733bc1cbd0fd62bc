// Baseline for `stsq-tui bench gemm`: the same products called from C straight into oneDNN
// (prepacked weights, primitive created once, bias, per-output-channel scales, u8 zero point),
// so the Swift wrapper's overhead can be measured as a ratio in the same session.
// Build: cc -O2 -o /tmp/gemm_baseline tools/bench/gemm_baseline.c -ldnnl
// Run:   /tmp/gemm_baseline [seconds-per-case]
#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(x) do { dnnl_status_t s_ = (x); if (s_ != dnnl_success) { \
    fprintf(stderr, "%s failed: %d\n", #x, (int)s_); exit(1); } } while (0)

static double now(void) {
    struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void run(dnnl_engine_t eng, dnnl_stream_t st, int m, int k, int n, int int8, double seconds) {
    dnnl_data_type_t st_t = int8 ? dnnl_u8 : dnnl_f32, wt_t = int8 ? dnnl_s8 : dnnl_f32;
    size_t es = int8 ? 1 : 4;
    dnnl_dims_t sd = {m, k}, wd = {k, n}, bd = {1, n}, dd = {m, n};
    dnnl_dims_t w_user_strides = {1, k};
    dnnl_memory_desc_t src_md, w_any, w_user, b_md, d_md;
    CHECK(dnnl_memory_desc_init_by_tag(&src_md, 2, sd, st_t, dnnl_ab));
    CHECK(dnnl_memory_desc_init_by_tag(&w_any, 2, wd, wt_t, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_strides(&w_user, 2, wd, wt_t, w_user_strides));
    CHECK(dnnl_memory_desc_init_by_tag(&b_md, 2, bd, dnnl_f32, dnnl_ab));
    CHECK(dnnl_memory_desc_init_by_tag(&d_md, 2, dd, dnnl_f32, dnnl_ab));
    dnnl_primitive_attr_t attr; CHECK(dnnl_primitive_attr_create(&attr));
    float *scales = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++) scales[i] = 0.02f * (1 + i % 7) / 8192;
    if (int8) {
        CHECK(dnnl_primitive_attr_set_output_scales(attr, n, 2, scales));
        int32_t zp = 128;
        CHECK(dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_SRC, 1, 0, &zp));
    }
    dnnl_matmul_desc_t md; CHECK(dnnl_matmul_desc_init(&md, &src_md, &w_any, &b_md, &d_md));
    dnnl_primitive_desc_t pd; CHECK(dnnl_primitive_desc_create(&pd, &md, attr, eng, NULL));
    const char *impl; CHECK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl));
    const dnnl_memory_desc_t *w_packed = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_primitive_t prim; CHECK(dnnl_primitive_create(&prim, pd));

    void *x = aligned_alloc(64, ((size_t)m * k * es + 63) / 64 * 64);
    void *w = aligned_alloc(64, ((size_t)k * n * es + 63) / 64 * 64);
    float *b = aligned_alloc(64, ((size_t)n * 4 + 63) / 64 * 64);
    float *y = aligned_alloc(64, ((size_t)m * n * 4 + 63) / 64 * 64);
    memset(x, 3, (size_t)m * k * es); memset(w, 1, (size_t)k * n * es);
    for (int i = 0; i < n; i++) b[i] = 0.5f;
    dnnl_memory_t xm, wum, wpm, bm, ym;
    CHECK(dnnl_memory_create(&xm, &src_md, eng, x));
    CHECK(dnnl_memory_create(&wum, &w_user, eng, w));
    CHECK(dnnl_memory_create(&wpm, w_packed, eng, DNNL_MEMORY_ALLOCATE));
    CHECK(dnnl_memory_create(&bm, &b_md, eng, b));
    CHECK(dnnl_memory_create(&ym, &d_md, eng, y));
    dnnl_primitive_desc_t rpd; dnnl_primitive_t rp;
    CHECK(dnnl_reorder_primitive_desc_create(&rpd, &w_user, eng, w_packed, eng, NULL));
    CHECK(dnnl_primitive_create(&rp, rpd));
    dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, wum}, {DNNL_ARG_TO, wpm}};
    CHECK(dnnl_primitive_execute(rp, st, 2, rargs)); CHECK(dnnl_stream_wait(st));

    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wpm}, {DNNL_ARG_BIAS, bm}, {DNNL_ARG_DST, ym}};
    for (int i = 0; i < 3; i++) { CHECK(dnnl_primitive_execute(prim, st, 4, args)); CHECK(dnnl_stream_wait(st)); }
    double t[200]; int runs = 0; double start = now();
    while (runs < 5 || (runs < 200 && now() - start < seconds)) {
        double t0 = now();
        CHECK(dnnl_primitive_execute(prim, st, 4, args)); CHECK(dnnl_stream_wait(st));
        t[runs++] = now() - t0;
    }
    qsort(t, runs, sizeof(double), cmp);
    double med = runs % 2 ? t[runs / 2] : (t[runs / 2 - 1] + t[runs / 2]) / 2;
    printf("%5d %5d %5d  %s  %9.1f  %s\n", m, k, n, int8 ? "int8" : "fp32", 2.0 * m * k * n / med / 1e9, impl);
    free(x); free(w); free(b); free(y); free(scales);
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 0.5;
    dnnl_engine_t eng; dnnl_stream_t st;
    CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&st, eng, dnnl_stream_default_flags));
    int shapes[6][3] = {{1024,128,384},{1024,128,512},{1024,512,128},{1024,256,1024},{2048,1152,3456},{2048,4608,1152}};
    printf("    M     K     N  prec  G(FL)OP/s  impl   (C, oneDNN directly)\n");
    for (int s = 0; s < 6; s++)
        for (int q = 0; q < 2; q++) run(eng, st, shapes[s][0], shapes[s][1], shapes[s][2], q, seconds);
    return 0;
}
