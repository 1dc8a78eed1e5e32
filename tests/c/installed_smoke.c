/* Built by run.sh against an installed tree only (pkg-config yilian, or
 * libyilian.a), with no helper from this folder: open an engine with "{}",
 * sync a schedule, then pre-book, book, cancel and query from several threads,
 * and check the slot never holds more than its capacity.
 *
 * "{}" runs on the real clock, so the slot is tomorrow (Asia/Shanghai). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yilian.h>

#define THREADS 4
#define ITERS 50
#define CAPACITY 5

static yl_engine *engine;
static char date[16], slot_id[64];
static int failures;
static pthread_mutex_t failures_lock = PTHREAD_MUTEX_INITIALIZER;

static void fail(const char *what, int rc, const char *envelope) {
    pthread_mutex_lock(&failures_lock);
    failures++;
    fprintf(stderr, "FAIL %s: %d %s %s\n", what, rc, yl_code_name(rc), envelope ? envelope : "");
    pthread_mutex_unlock(&failures_lock);
}

static int field(const char *envelope, const char *name) {
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *p = strstr(envelope, key);
    return p ? atoi(p + strlen(key)) : -1;
}

/* capacity == booked + held + remaining and booked + held <= capacity, by slot-info. */
static void check_slot(void) {
    char req[128], *out = NULL;
    snprintf(req, sizeof req, "{\"slot_id\":\"%s\"}", slot_id);
    int rc = yl_call(engine, "slot-info", req, &out);
    if (rc != YL_OK) fail("slot-info", rc, out);
    else {
        int cap = field(out, "capacity"), booked = field(out, "booked"), held = field(out, "held"),
            rem = field(out, "remaining");
        if (cap != CAPACITY || booked + held > cap || cap != booked + held + rem) fail("overbooked", 0, out);
    }
    yl_string_free(out);
}

static void *work(void *arg) {
    int t = (int)(long)arg;
    char req[512], buf[8192];
    for (int i = 0; i < ITERS; i++) {
        snprintf(req, sizeof req,
                 "{\"patient_id\":\"T%d-%d\",\"project_id\":\"P001\",\"date\":\"%s\",\"time_slot\":\"09:00-10:00\","
                 "\"device_id\":\"DEV001\",\"clinic_id\":\"C001\"}",
                 t, i, date);
        int rc = yl_call_buf(engine, "pre-book-slot", req, buf, sizeof buf, NULL);
        if (rc == YL_OK) {
            const char *p = strstr(buf, "\"booking_id\":\"");
            char id[32] = "";
            if (p) sscanf(p + strlen("\"booking_id\":\""), "%31[^\"]", id);
            snprintf(req, sizeof req, "{\"booking_id\":\"%s\"}", id);
            rc = yl_call_buf(engine, i % 2 ? "book-slot" : "cancel-slot", req, buf, sizeof buf, NULL);
            if (rc != YL_OK) fail("book/cancel", rc, buf);
            if (i % 2 && (rc = yl_call_buf(engine, "cancel-slot", req, buf, sizeof buf, NULL)) != YL_OK)
                fail("cancel", rc, buf);
        } else if (rc != YL_E_SLOT_FULL) {
            fail("pre-book-slot", rc, buf);
        }
        check_slot();
    }
    return NULL;
}

int main(void) {
    time_t tomorrow = time(NULL) + 8 * 3600 + 24 * 3600; /* UTC+8, one day ahead */
    struct tm tm;
    gmtime_r(&tomorrow, &tm);
    strftime(date, sizeof date, "%Y-%m-%d", &tm);
    char compact[16];
    strftime(compact, sizeof compact, "%Y%m%d", &tm);
    snprintf(slot_id, sizeof slot_id, "EX-H001-DEV001-%s-09001000", compact);

    if (strcmp(yl_version(), YL_VERSION_STRING) != 0) fail("version", 0, yl_version());
    int rc = yl_engine_open("{}", &engine);
    if (rc != YL_OK) { fail("yl_engine_open", rc, NULL); return 1; }
    char req[512], *out = NULL;
    snprintf(req, sizeof req,
             "{\"hospital_id\":\"H001\",\"schedule_data\":[{\"device_id\":\"DEV001\",\"project_id\":\"P001\","
             "\"date\":\"%s\",\"capacity\":%d,\"available_slots\":[{\"start_time\":\"09:00\",\"end_time\":\"10:00\"},"
             "{\"start_time\":\"14:00\",\"end_time\":\"15:00\"}]}]}",
             date, CAPACITY);
    rc = yl_call(engine, "sync-schedule", req, &out);
    if (rc != YL_OK) fail("sync-schedule", rc, out);
    yl_string_free(out);

    pthread_t ts[THREADS];
    for (long t = 0; t < THREADS; t++) pthread_create(&ts[t], NULL, work, (void *)t);
    for (int t = 0; t < THREADS; t++) pthread_join(ts[t], NULL);

    /* Everything was cancelled: the slot is whole again. */
    snprintf(req, sizeof req, "{\"project_id\":\"P001\",\"date\":\"%s\",\"time_slot\":\"09:00-10:00\"}", date);
    rc = yl_call(engine, "real-time-slots", req, &out);
    if (rc != YL_OK || field(out, "available_slots") != CAPACITY) fail("real-time-slots", rc, out);
    yl_string_free(out);
    yl_engine_close(engine);

    printf("installed: %d passed, %d failed\n", failures ? 0 : 1, failures ? 1 : 0);
    return failures ? 1 : 0;
}
