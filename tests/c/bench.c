/* Benchmark of the C ABI against a plain C baseline in the same process:
 *   - baseline: a noinline C function reserving/releasing a place of a
 *     mutex-protected counter, and one reading it (what a C library with no
 *     boundary would cost for the same shape of call);
 *   - typed: yl_hold + yl_release, and yl_availability;
 *   - JSON: pre-book-slot + cancel-slot through yl_call and yl_call_buf.
 * Rounds interleave the variants; each figure is the median over rounds.
 * Not a pass/fail test: tests/c/bench.sh runs it next to the core's own
 * cost (ffi-c/benches/core_direct.rs), which it cannot see from C.
 *
 * Sizes: YL_BENCH_ROUNDS (7), YL_BENCH_ITERS (20000 hold/release pairs per
 * round; the cheap variants run 50x as many). */
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "common.h"

/* ---- the baseline: same shape of call, no boundary, no domain work ---- */
struct c_pool { pthread_mutex_t lock; uint32_t capacity, held; uint64_t next; };
struct c_avail { uint32_t capacity, held, remaining; };

__attribute__((noinline)) static int c_reserve(struct c_pool *p, const char *patient, uint64_t *out) {
    if (!p || !patient || !out) return YL_E_NULL_ARGUMENT;
    int rc = YL_E_SLOT_FULL;
    pthread_mutex_lock(&p->lock);
    if (p->held < p->capacity) {
        p->held++;
        *out = ++p->next;
        rc = YL_OK;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

__attribute__((noinline)) static int c_release(struct c_pool *p, uint64_t id) {
    if (!p || id == 0) return YL_E_NULL_ARGUMENT;
    pthread_mutex_lock(&p->lock);
    p->held--;
    pthread_mutex_unlock(&p->lock);
    return YL_OK;
}

__attribute__((noinline)) static int c_availability(struct c_pool *p, struct c_avail *out) {
    if (!p || !out) return YL_E_NULL_ARGUMENT;
    pthread_mutex_lock(&p->lock);
    out->capacity = p->capacity;
    out->held = p->held;
    out->remaining = p->capacity - p->held;
    pthread_mutex_unlock(&p->lock);
    return YL_OK;
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static yl_engine *g_e;
static yl_slot g_slot;
static struct c_pool g_pool = {PTHREAD_MUTEX_INITIALIZER, 1000, 0, 0};
static volatile uint64_t g_sink;
static const char *PREBOOK =
    "{\"patient_id\":\"PAT-BENCH\",\"project_id\":\"P001\",\"date\":\"2024-10-30\",\"time_slot\":\"09:00-10:00\","
    "\"device_id\":\"DEV001\",\"clinic_id\":\"C001\"}";

static void die(const char *what, int rc) {
    fprintf(stderr, "bench: %s failed: %d %s\n", what, rc, yl_code_name(rc));
    exit(1);
}

static void run_baseline(long n) {
    for (long i = 0; i < n; i++) {
        uint64_t id;
        if (c_reserve(&g_pool, "PAT-BENCH", &id) != YL_OK || c_release(&g_pool, id) != YL_OK) die("c_reserve", -1);
    }
}

static void run_baseline_avail(long n) {
    struct c_avail a;
    for (long i = 0; i < n; i++) {
        if (c_availability(&g_pool, &a) != YL_OK) die("c_availability", -1);
        g_sink += a.remaining;
    }
}

static void run_typed(long n) {
    yl_hold_info h;
    for (long i = 0; i < n; i++) {
        int rc = yl_hold(g_e, g_slot, "PAT-BENCH", NULL, YL_PRIORITY_NORMAL, NULL, &h);
        if (rc != YL_OK) die("yl_hold", rc);
        if ((rc = yl_release(g_e, h.booking_id, NULL)) != YL_OK) die("yl_release", rc);
    }
}

static void run_typed_avail(long n) {
    yl_slot_availability a;
    for (long i = 0; i < n; i++) {
        int rc = yl_availability(g_e, g_slot, &a);
        if (rc != YL_OK) die("yl_availability", rc);
        g_sink += a.remaining;
    }
}

/* "B000123" out of an envelope, into a cancel-slot request. */
static void cancel_request(const char *envelope, char *req, size_t cap) {
    const char *p = strstr(envelope, "\"booking_id\":\"");
    if (!p) die("booking_id in envelope", -1);
    p += strlen("\"booking_id\":\"");
    snprintf(req, cap, "{\"booking_id\":\"%.*s\"}", (int)strcspn(p, "\""), p);
}

static void run_json(long n) {
    char req[128];
    for (long i = 0; i < n; i++) {
        char *out = NULL;
        int rc = yl_call(g_e, "pre-book-slot", PREBOOK, &out);
        if (rc != YL_OK) die("yl_call pre-book-slot", rc);
        cancel_request(out, req, sizeof req);
        yl_string_free(out);
        if ((rc = yl_call(g_e, "cancel-slot", req, &out)) != YL_OK) die("yl_call cancel-slot", rc);
        yl_string_free(out);
    }
}

static void run_json_buf(long n) {
    char buf[8192], req[128];
    for (long i = 0; i < n; i++) {
        int rc = yl_call_buf(g_e, "pre-book-slot", PREBOOK, buf, sizeof buf, NULL);
        if (rc != YL_OK) die("yl_call_buf pre-book-slot", rc);
        cancel_request(buf, req, sizeof req);
        if ((rc = yl_call_buf(g_e, "cancel-slot", req, buf, sizeof buf, NULL)) != YL_OK) die("yl_call_buf cancel-slot", rc);
    }
}

/* Every hold and release queues an event: drain them between rounds (untimed). */
static void drain_events(void) {
    char *out = NULL;
    int rc = yl_call(g_e, "next-events", "{\"ack\":18446744073709551615,\"limit\":1}", &out);
    yl_string_free(out);
    if (rc != YL_OK) die("next-events", rc);
}

struct variant { const char *name; void (*run)(long); long scale; double per_round[64]; };

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void) {
    long rounds = env_long("YL_BENCH_ROUNDS", 7), iters = env_long("YL_BENCH_ITERS", 20000);
    if (rounds > 64) rounds = 64;
    int rc = yl_engine_open("{\"clock_start\":\"2024-10-29T09:00:00+08:00\"}", &g_e);
    if (rc != YL_OK) die("yl_engine_open", rc);
    char *out = NULL;
    rc = yl_call(g_e, "sync-schedule",
                 "{\"hospital_id\":\"H001\",\"schedule_data\":[{\"device_id\":\"DEV001\",\"project_id\":\"P001\","
                 "\"date\":\"2024-10-30\",\"capacity\":1000,\"available_slots\":[{\"start_time\":\"09:00\","
                 "\"end_time\":\"10:00\"}]}]}",
                 &out);
    yl_string_free(out);
    if (rc != YL_OK) die("sync-schedule", rc);
    if ((rc = yl_slot_handle(g_e, "EX-H001-DEV001-20241030-09001000", &g_slot)) != YL_OK) die("yl_slot_handle", rc);

    struct variant vs[] = {
        {"C baseline reserve+release (pair)", run_baseline, 50, {0}},
        {"yl_hold+yl_release (pair)", run_typed, 1, {0}},
        {"yl_call pre-book+cancel (pair)", run_json, 1, {0}},
        {"yl_call_buf pre-book+cancel (pair)", run_json_buf, 1, {0}},
        {"C baseline availability", run_baseline_avail, 50, {0}},
        {"yl_availability", run_typed_avail, 50, {0}},
    };
    size_t nv = sizeof vs / sizeof vs[0];
    for (size_t v = 0; v < nv; v++) vs[v].run(iters * vs[v].scale / 10); /* warm-up */
    for (long r = 0; r < rounds; r++) {
        for (size_t v = 0; v < nv; v++) {
            drain_events();
            long n = iters * vs[v].scale;
            double t0 = now_ns();
            vs[v].run(n);
            vs[v].per_round[r] = (now_ns() - t0) / (double)n;
        }
    }
    double med[16];
    printf("%-38s %12s %10s\n", "variant (ns per call or pair)", "median", "min");
    for (size_t v = 0; v < nv; v++) {
        qsort(vs[v].per_round, (size_t)rounds, sizeof(double), cmp_double);
        med[v] = vs[v].per_round[rounds / 2];
        printf("%-38s %12.1f %10.1f\n", vs[v].name, med[v], vs[v].per_round[0]);
    }
    printf("ratio yl_hold+yl_release / C baseline pair:   %8.1fx\n", med[1] / med[0]);
    printf("ratio yl_call / yl_hold+yl_release:           %8.2fx\n", med[2] / med[1]);
    printf("ratio yl_call_buf / yl_call:                  %8.2fx\n", med[3] / med[2]);
    printf("ratio yl_availability / C baseline read:      %8.1fx\n", med[5] / med[4]);
    printf("(%ld rounds; %ld pairs per round, %ld for the cheap calls)\n", rounds, iters, iters * 50);
    /* Machine-readable lines for bench.sh. */
    printf("BENCH c_pair=%.1f typed_pair=%.1f json_pair=%.1f json_buf_pair=%.1f c_avail=%.1f typed_avail=%.1f\n",
           med[0], med[1], med[2], med[3], med[4], med[5]);
    yl_engine_close(g_e);
    return g_sink == 42 ? 2 : 0;
}
