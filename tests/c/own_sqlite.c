/* Built by run.sh against the installed libyilian.a, twice: with the host's
 * own SQLite linked statically (Debian's libsqlite3.a) and with the system's
 * shared libsqlite3. The host uses its SQLite and yilian its own, in one
 * process: the host's calls reach the SQLite it linked (its version is the
 * one its sqlite3.h names), and yilian's durable store opens, books and
 * reopens on the SQLite compiled into it (engine-info names that version).
 *
 *   own_sqlite DIR   prints "yilian sqlite X.Y.Z" and "host sqlite X.Y.Z" */
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include <yilian.h>

static int failures;
#define CHECK(cond, what)                                   \
    do {                                                    \
        if (!(cond)) {                                      \
            fprintf(stderr, "FAIL %s\n", what);             \
            failures++;                                     \
        }                                                   \
    } while (0)

/* The value of "key":"..." in an envelope, into out. */
static void string_field(const char *envelope, const char *key, char *out, size_t cap) {
    char pattern[64];
    const char *p;
    size_t n = 0;
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    out[0] = '\0';
    p = envelope ? strstr(envelope, pattern) : NULL;
    if (!p) return;
    p += strlen(pattern);
    while (p[n] && p[n] != '"' && n + 1 < cap) n++;
    memcpy(out, p, n);
    out[n] = '\0';
}

static int host_uses_its_sqlite(void) {
    sqlite3 *db;
    sqlite3_stmt *st;
    int rows = -1;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) return 0;
    sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);", NULL, NULL, NULL);
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        rows = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rows == 2;
}

int main(int argc, char **argv) {
    char config[512], version[32], booking[32], req[512], *out = NULL;
    yl_engine *e = NULL;
    int rc, round;
    if (argc != 2) { fprintf(stderr, "usage: own_sqlite DIR\n"); return 2; }

    CHECK(strcmp(sqlite3_libversion(), SQLITE_VERSION) == 0, "the host's sqlite3_libversion is its own header's");
    CHECK(host_uses_its_sqlite(), "the host's SQLite works");

    snprintf(config, sizeof config, "{\"data_dir\":\"%s\",\"clock_start\":\"2024-10-29T09:00:00+08:00\",\"clock\":\"manual\"}", argv[1]);
    for (round = 0; round < 2; round++) {
        rc = yl_engine_open(config, &e);
        CHECK(rc == YL_OK, "yl_engine_open on a data directory");
        if (rc != YL_OK) return 1;
        if (round == 0) {
            rc = yl_call(e, "sync-schedule",
                         "{\"hospital_id\":\"H001\",\"schedule_data\":[{\"device_id\":\"DEV001\",\"project_id\":\"P001\","
                         "\"date\":\"2024-10-30\",\"capacity\":2,\"available_slots\":[{\"start_time\":\"09:00\",\"end_time\":\"10:00\"}]}]}",
                         &out);
            CHECK(rc == YL_OK, "sync-schedule");
            yl_string_free(out);
            rc = yl_call(e, "pre-book-slot",
                         "{\"patient_id\":\"PAT001\",\"project_id\":\"P001\",\"date\":\"2024-10-30\",\"time_slot\":\"09:00-10:00\","
                         "\"device_id\":\"DEV001\",\"clinic_id\":\"C001\"}",
                         &out);
            CHECK(rc == YL_OK, "pre-book-slot");
            string_field(out, "booking_id", booking, sizeof booking);
            yl_string_free(out);
        }
        /* After the reopen: the booking came back from yilian's store. */
        snprintf(req, sizeof req, "{\"booking_id\":\"%s\"}", booking);
        rc = yl_call(e, "booking-info", req, &out);
        CHECK(rc == YL_OK && strstr(out, "\"pre-booked\"") != NULL, "the booking is in yilian's store");
        yl_string_free(out);
        rc = yl_call(e, "engine-info", "{}", &out);
        CHECK(rc == YL_OK, "engine-info");
        string_field(out, "version", version, sizeof version); /* yilian's own version comes first */
        if (out && strstr(out, "\"database\":\"sqlite\"")) {
            const char *store = strstr(out, "\"store\":");
            string_field(store, "version", version, sizeof version);
        } else {
            CHECK(0, "engine-info names the store's database");
        }
        yl_string_free(out);
        yl_engine_close(e);
    }
    CHECK(host_uses_its_sqlite(), "the host's SQLite still works after yilian's");
    printf("yilian sqlite %s\nhost sqlite %s\n", version, sqlite3_libversion());
    printf("own-sqlite: %d passed, %d failed\n", failures ? 0 : 1, failures ? 1 : 0);
    return failures ? 1 : 0;
}
