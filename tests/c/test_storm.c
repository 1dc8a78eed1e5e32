/* Many threads, distinct patients, three slots of capacity 4: holds, confirms,
 * releases and bookings through the typed calls and the JSON layer (yl_call
 * and yl_call_buf) at once, while a checker thread watches every slot. The
 * pool must never overbook: booked + held <= capacity and
 * capacity == booked + held + remaining at every look, and at the end the
 * engine's counts equal the bookings the threads still hold.
 *
 * Sizes: YL_STORM_THREADS (default 8), YL_STORM_ITERS per thread (400),
 * YL_STORM_RACES (20). */
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>

#include <cjson/cJSON.h>

#include "common.h"

#define NSLOTS 3
#define CAPACITY 4
#define MAX_ACTIVE 4

static const char *TIMES[NSLOTS] = {"09:00-10:00", "10:00-11:00", "11:00-12:00"};
static const char *SLOT_IDS[NSLOTS] = {"EX-H001-DEV001-20241030-09001000", "EX-H001-DEV001-20241030-10001100",
                                       "EX-H001-DEV001-20241030-11001200"};
static const char *SYNC =
    "{\"hospital_id\":\"H001\",\"schedule_data\":[{\"device_id\":\"DEV001\",\"project_id\":\"P001\","
    "\"date\":\"2024-10-30\",\"capacity\":4,\"available_slots\":["
    "{\"start_time\":\"09:00\",\"end_time\":\"10:00\"},{\"start_time\":\"10:00\",\"end_time\":\"11:00\"},"
    "{\"start_time\":\"11:00\",\"end_time\":\"12:00\"}]}]}";

static yl_engine *g_engine;
static yl_slot g_slots[NSLOTS];
static atomic_bool g_done;

struct worker {
    int id;
    long iters;
    unsigned seed;
    long acquired, released, full, unexpected;
    struct { uint64_t booking; int slot; } active[MAX_ACTIVE];
    int nactive;
};

/* booking_id of a JSON envelope ("B000123" -> 123), 0 if none. */
static uint64_t booking_of(const char *envelope) {
    cJSON *env = cJSON_Parse(envelope);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(env, "data");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(data, "booking_id");
    uint64_t n = 0;
    if (cJSON_IsString(id) && id->valuestring[0] == 'B') n = strtoull(id->valuestring + 1, NULL, 10);
    cJSON_Delete(env);
    return n;
}

static void unexpected(struct worker *w, const char *what, int rc) {
    w->unexpected++;
    fprintf(stderr, "worker %d: %s returned %d (%s)\n", w->id, what, rc, yl_code_name(rc));
}

static void remember(struct worker *w, uint64_t booking, int slot) {
    w->active[w->nactive].booking = booking;
    w->active[w->nactive].slot = slot;
    w->nactive++;
    w->acquired++;
}

/* Releases the oldest active booking, typed or JSON in turn. */
static void release_oldest(struct worker *w, long i) {
    uint64_t b = w->active[0].booking;
    int rc;
    if (i % 3 == 0) {
        rc = yl_release(g_engine, b, NULL);
    } else {
        char req[64], buf[2048];
        snprintf(req, sizeof req, "{\"booking_id\":\"B%06" PRIu64 "\"}", b);
        if (i % 3 == 1) {
            char *out = NULL;
            rc = yl_call(g_engine, "cancel-slot", req, &out);
            yl_string_free(out);
        } else {
            rc = yl_call_buf(g_engine, "cancel-slot", req, buf, sizeof buf, NULL);
        }
    }
    if (rc != YL_OK) unexpected(w, "release", rc);
    memmove(&w->active[0], &w->active[1], sizeof w->active[0] * (size_t)(w->nactive - 1));
    w->nactive--;
    w->released++;
}

static void *work(void *p) {
    struct worker *w = p;
    char patient[64], req[512], buf[4096];
    for (long i = 0; i < w->iters; i++) {
        if (w->nactive >= 2 || (w->nactive > 0 && rand_r(&w->seed) % 3 == 0)) release_oldest(w, i);
        int k = (int)(rand_r(&w->seed) % NSLOTS);
        snprintf(patient, sizeof patient, "S%d-%ld", w->id, i);
        int op = (int)(rand_r(&w->seed) % 5), rc;
        yl_hold_info h;
        switch (op) {
        case 0: /* typed hold, sometimes confirmed */
        case 1:
            rc = yl_hold(g_engine, g_slots[k], patient, "C001", op == 0 ? YL_PRIORITY_NORMAL : YL_PRIORITY_REFERRAL,
                         NULL, &h);
            if (rc == YL_OK) {
                if (i % 2 == 0) {
                    int c = yl_confirm(g_engine, h.booking_id, NULL);
                    if (c != YL_OK) unexpected(w, "confirm", c);
                }
                remember(w, h.booking_id, k);
            }
            break;
        case 2: { /* JSON pre-book, sometimes then book-slot */
            snprintf(req, sizeof req,
                     "{\"patient_id\":\"%s\",\"project_id\":\"P001\",\"date\":\"2024-10-30\",\"time_slot\":\"%s\","
                     "\"device_id\":\"DEV001\",\"clinic_id\":\"C001\"}",
                     patient, TIMES[k]);
            char *out = NULL;
            rc = yl_call(g_engine, "pre-book-slot", req, &out);
            uint64_t b = rc == YL_OK ? booking_of(out) : 0;
            yl_string_free(out);
            if (rc == YL_OK) {
                if (b == 0) unexpected(w, "pre-book-slot without booking_id", rc);
                if (i % 2 == 0) {
                    snprintf(req, sizeof req, "{\"booking_id\":\"B%06" PRIu64 "\"}", b);
                    int c = yl_call_buf(g_engine, "book-slot", req, buf, sizeof buf, NULL);
                    if (c != YL_OK) unexpected(w, "book-slot", c);
                }
                remember(w, b, k);
            }
            break;
        }
        case 3: /* JSON book-slot straight away, into the caller's buffer */
            snprintf(req, sizeof req,
                     "{\"patient_id\":\"%s\",\"project_id\":\"P001\",\"date\":\"2024-10-30\",\"time_slot\":\"%s\","
                     "\"device_id\":\"DEV001\"}",
                     patient, TIMES[k]);
            rc = yl_call_buf(g_engine, "book-slot", req, buf, sizeof buf, NULL);
            if (rc == YL_OK) remember(w, booking_of(buf), k);
            break;
        default: /* typed hold and release at once */
            rc = yl_hold(g_engine, g_slots[k], patient, NULL, YL_PRIORITY_NORMAL, NULL, &h);
            if (rc == YL_OK) {
                int r = yl_release(g_engine, h.booking_id, NULL);
                if (r != YL_OK) unexpected(w, "release after hold", r);
                w->acquired++;
                w->released++;
            }
            break;
        }
        if (rc == YL_E_SLOT_FULL) w->full++;
        else if (rc != YL_OK) unexpected(w, "acquire", rc);
    }
    return NULL;
}

struct watch { long looks, violations; };

/* Looks at every slot, typed and JSON, until the workers are done. */
static void *checker(void *p) {
    struct watch *wt = p;
    char buf[8192], req[128];
    long n = 0;
    while (!atomic_load(&g_done)) {
        for (int k = 0; k < NSLOTS; k++) {
            yl_slot_availability a;
            if (yl_availability(g_engine, g_slots[k], &a) != YL_OK) { wt->violations++; continue; }
            wt->looks++;
            if (a.capacity != CAPACITY || a.booked + a.held > a.capacity ||
                a.capacity != a.booked + a.held + a.remaining) {
                wt->violations++;
                fprintf(stderr, "slot %d: capacity %u booked %u held %u remaining %u\n", k, a.capacity, a.booked,
                        a.held, a.remaining);
            }
        }
        if (n++ % 8 == 0) {
            snprintf(req, sizeof req, "{\"slot_id\":\"%s\"}", SLOT_IDS[n % NSLOTS]);
            if (yl_call_buf(g_engine, "slot-info", req, buf, sizeof buf, NULL) != YL_OK) { wt->violations++; continue; }
            cJSON *env = cJSON_Parse(buf);
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(env, "data");
            int cap = cJSON_GetObjectItemCaseSensitive(d, "capacity")->valueint;
            int booked = cJSON_GetObjectItemCaseSensitive(d, "booked")->valueint;
            int held = cJSON_GetObjectItemCaseSensitive(d, "held")->valueint;
            int rem = cJSON_GetObjectItemCaseSensitive(d, "remaining")->valueint;
            wt->looks++;
            if (booked + held > cap || cap != booked + held + rem) wt->violations++;
            cJSON_Delete(env);
        }
    }
    return NULL;
}

/* Race rounds: all threads start together on one slot. */
struct racer {
    pthread_barrier_t *gate;
    const char *patient; /* NULL: a patient of its own */
    int id, round, rc;
    yl_hold_info hold;
};

static void *race(void *p) {
    struct racer *r = p;
    char own[64];
    snprintf(own, sizeof own, "FILL-%d-%d", r->round, r->id);
    pthread_barrier_wait(r->gate);
    r->rc = yl_hold(g_engine, g_slots[0], r->patient ? r->patient : own, NULL, YL_PRIORITY_NORMAL, NULL, &r->hold);
    return NULL;
}

static void race_rounds(int threads, long rounds) {
    struct racer *rs = calloc((size_t)threads, sizeof *rs);
    pthread_t *ts = calloc((size_t)threads, sizeof *ts);
    pthread_barrier_t gate;
    for (long round = 0; round < rounds; round++) {
        bool same = round % 2 == 0;
        char patient[64];
        snprintf(patient, sizeof patient, "RACE-%ld", round);
        pthread_barrier_init(&gate, NULL, (unsigned)threads);
        for (int t = 0; t < threads; t++) {
            rs[t] = (struct racer){&gate, same ? patient : NULL, t, (int)round, -1, {0, 0}};
            pthread_create(&ts[t], NULL, race, &rs[t]);
        }
        int ok = 0, dup = 0, full = 0;
        for (int t = 0; t < threads; t++) {
            pthread_join(ts[t], NULL);
            if (rs[t].rc == YL_OK) ok++;
            else if (rs[t].rc == YL_E_DUPLICATE_BOOKING) dup++;
            else if (rs[t].rc == YL_E_SLOT_FULL) full++;
        }
        pthread_barrier_destroy(&gate);
        if (same) {
            /* One patient, many threads: exactly one hold. */
            CHECK(ok == 1 && dup == threads - 1, "round %ld: %d ok, %d duplicate of %d", round, ok, dup, threads);
        } else {
            /* Distinct patients: exactly the capacity, never more. */
            int want = threads < CAPACITY ? threads : CAPACITY;
            CHECK(ok == want && full == threads - want, "round %ld: %d ok, %d full of %d", round, ok, full, threads);
        }
        for (int t = 0; t < threads; t++)
            if (rs[t].rc == YL_OK) CHECK(yl_release(g_engine, rs[t].hold.booking_id, NULL) == YL_OK);
    }
    free(rs);
    free(ts);
}

int main(void) {
    int threads = (int)env_long("YL_STORM_THREADS", 8);
    long iters = env_long("YL_STORM_ITERS", 400), races = env_long("YL_STORM_RACES", 20);
    if (threads > 64) threads = 64;

    CHECK_RC(yl_engine_open("{\"clock_start\":\"2024-10-29T09:00:00+08:00\"}", &g_engine), YL_OK);
    if (!g_engine) return finish_suite("storm");
    char buf[8192];
    CHECK_RC(yl_call_buf(g_engine, "sync-schedule", SYNC, buf, sizeof buf, NULL), YL_OK);
    for (int k = 0; k < NSLOTS; k++) CHECK_RC(yl_slot_handle(g_engine, SLOT_IDS[k], &g_slots[k]), YL_OK);

    struct worker ws[64];
    pthread_t ts[64], tc;
    struct watch wt = {0, 0};
    atomic_store(&g_done, false);
    CHECK(pthread_create(&tc, NULL, checker, &wt) == 0);
    for (int t = 0; t < threads; t++) {
        ws[t] = (struct worker){.id = t, .iters = iters, .seed = 0x5eed0u + (unsigned)t};
        CHECK(pthread_create(&ts[t], NULL, work, &ws[t]) == 0);
    }
    long acquired = 0, released = 0, full = 0, bad = 0, active[NSLOTS] = {0};
    for (int t = 0; t < threads; t++) {
        pthread_join(ts[t], NULL);
        acquired += ws[t].acquired;
        released += ws[t].released;
        full += ws[t].full;
        bad += ws[t].unexpected;
        for (int j = 0; j < ws[t].nactive; j++) active[ws[t].active[j].slot]++;
    }
    atomic_store(&g_done, true);
    pthread_join(tc, NULL);

    printf("storm: %d threads x %ld iterations: %ld acquired, %ld released, %ld SLOT_FULL, %ld looks\n", threads,
           iters, acquired, released, full, wt.looks);
    CHECK(bad == 0, "%ld unexpected return codes", bad);
    CHECK(wt.violations == 0 && wt.looks > 0, "%ld violations in %ld looks", wt.violations, wt.looks);
    /* The storm must have contended: places were taken and refused. */
    CHECK(acquired > NSLOTS * CAPACITY && full > 0, "acquired %ld, full %ld", acquired, full);

    /* The engine holds exactly what the threads hold, in both views. */
    for (int k = 0; k < NSLOTS; k++) {
        yl_slot_availability a;
        CHECK_RC(yl_availability(g_engine, g_slots[k], &a), YL_OK);
        CHECK((long)(a.booked + a.held) == active[k] && a.capacity == a.booked + a.held + a.remaining,
              "slot %d: booked %u + held %u, threads hold %ld", k, a.booked, a.held, active[k]);
        char req[128];
        snprintf(req, sizeof req, "{\"slot_id\":\"%s\"}", SLOT_IDS[k]);
        CHECK_RC(yl_call_buf(g_engine, "slot-info", req, buf, sizeof buf, NULL), YL_OK);
        char want[96];
        snprintf(want, sizeof want, "\"remaining\":%u", a.remaining);
        CHECK(strstr(buf, want) != NULL, "slot-info %s disagrees with remaining %u", buf, a.remaining);
    }
    /* Give everything back: every slot is whole again. */
    for (int t = 0; t < threads; t++)
        while (ws[t].nactive > 0) release_oldest(&ws[t], 0);
    for (int t = 0; t < threads; t++) CHECK(ws[t].unexpected == 0);
    for (int k = 0; k < NSLOTS; k++) {
        yl_slot_availability a;
        CHECK_RC(yl_availability(g_engine, g_slots[k], &a), YL_OK);
        CHECK(a.remaining == CAPACITY && a.booked == 0 && a.held == 0, "slot %d not whole: %u remaining", k,
              a.remaining);
    }

    race_rounds(threads < 2 ? 2 : threads, races);
    yl_engine_close(g_engine);
    return finish_suite("storm");
}
