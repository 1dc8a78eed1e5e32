/* Every bad input of the C ABI gets a clean code (and, from yl_call, an error
 * envelope); the last error, the caller-buffer protocol and the panic boundary
 * behave as include/yilian.h says. */
#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

#include "common.h"

static const char *CFG = "{\"clock_start\":\"2024-10-29T09:00:00+08:00\",\"clock\":\"manual\"}";
static const char *SYNC =
    "{\"hospital_id\":\"H001\",\"schedule_data\":[{\"device_id\":\"DEV001\",\"project_id\":\"P001\","
    "\"date\":\"2024-10-30\",\"capacity\":3,\"available_slots\":[{\"start_time\":\"09:00\",\"end_time\":\"10:00\"},"
    "{\"start_time\":\"10:00\",\"end_time\":\"11:00\"}]}]}";
static const char *SLOT_ID = "EX-H001-DEV001-20241030-09001000";
static const char *SLOT_INFO = "{\"slot_id\":\"EX-H001-DEV001-20241030-09001000\"}";

static bool has(const char *s, const char *needle) { return s && strstr(s, needle) != NULL; }

static char *prebook_req(const char *patient, const char *time_slot) {
    static char buf[512];
    snprintf(buf, sizeof buf,
             "{\"patient_id\":\"%s\",\"project_id\":\"P001\",\"date\":\"2024-10-30\",\"time_slot\":\"%s\","
             "\"device_id\":\"DEV001\",\"clinic_id\":\"C001\"}",
             patient, time_slot);
    return buf;
}

/* Runs a command through yl_call and returns its code, checking the envelope agrees. */
static int call_code(yl_engine *e, const char *cmd, const char *req, char **keep) {
    char *out = NULL;
    int rc = yl_call(e, cmd, req, &out);
    CHECK(out != NULL, "%s: no envelope", cmd);
    if (rc == YL_OK) CHECK(has(out, "\"status\":\"success\""), "%s: %s", cmd, out);
    else {
        char num[32];
        snprintf(num, sizeof num, "\"numeric_code\":%d", rc);
        CHECK(has(out, "\"status\":\"error\"") && has(out, num), "%s: rc %d, envelope %s", cmd, rc, out);
    }
    if (keep) *keep = out;
    else yl_string_free(out);
    return rc;
}

/* held/booked of the test slot via the JSON layer. */
static int slot_count(yl_engine *e, const char *field) {
    char *out = NULL;
    int n = -1;
    if (yl_call(e, "slot-info", SLOT_INFO, &out) == YL_OK) {
        char key[64];
        snprintf(key, sizeof key, "\"%s\":", field);
        const char *p = strstr(out, key);
        if (p) n = atoi(p + strlen(key));
    }
    yl_string_free(out);
    return n;
}

static yl_engine *open_synced(const char *cfg) {
    yl_engine *e = NULL;
    int rc = yl_engine_open(cfg, &e);
    CHECK_RC(rc, YL_OK);
    if (!e) { fprintf(stderr, "cannot open an engine\n"); exit(1); }
    CHECK_RC(call_code(e, "sync-schedule", SYNC, NULL), YL_OK);
    return e;
}

static void test_version_and_names(void) {
    CHECK(strcmp(yl_version(), YL_VERSION_STRING) == 0, "library %s, header %s", yl_version(), YL_VERSION_STRING);
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", YL_VERSION_MAJOR, YL_VERSION_MINOR, YL_VERSION_PATCH);
    CHECK(strcmp(want, YL_VERSION_STRING) == 0, "macros %s vs %s", want, YL_VERSION_STRING);

    static const struct { int code; const char *name; } codes[] = {
        {YL_OK, "OK"},
        {YL_E_INVALID_JSON, "INVALID_JSON"}, {YL_E_MISSING_FIELD, "MISSING_FIELD"},
        {YL_E_INVALID_FIELD, "INVALID_FIELD"}, {YL_E_REQUEST_TOO_LARGE, "REQUEST_TOO_LARGE"},
        {YL_E_UNKNOWN_COMMAND, "UNKNOWN_COMMAND"}, {YL_E_INVALID_CONFIG, "INVALID_CONFIG"},
        {YL_E_INVALID_ID_NUMBER, "INVALID_ID_NUMBER"}, {YL_E_INVALID_PHONE, "INVALID_PHONE"},
        {YL_E_SLOT_NOT_FOUND, "SLOT_NOT_FOUND"}, {YL_E_BOOKING_NOT_FOUND, "BOOKING_NOT_FOUND"},
        {YL_E_DEVICE_NOT_FOUND, "DEVICE_NOT_FOUND"}, {YL_E_PROJECT_NOT_FOUND, "PROJECT_NOT_FOUND"},
        {YL_E_WAITLIST_ENTRY_NOT_FOUND, "WAITLIST_ENTRY_NOT_FOUND"}, {YL_E_HOSPITAL_NOT_FOUND, "HOSPITAL_NOT_FOUND"},
        {YL_E_SLOT_FULL, "SLOT_FULL"}, {YL_E_SLOT_CLOSED, "SLOT_CLOSED"},
        {YL_E_SLOT_NOT_RELEASED, "SLOT_NOT_RELEASED"}, {YL_E_SLOT_IN_PAST, "SLOT_IN_PAST"},
        {YL_E_PATIENT_OVERLAP, "PATIENT_OVERLAP"}, {YL_E_DUPLICATE_BOOKING, "DUPLICATE_BOOKING"},
        {YL_E_AMBIGUOUS_SLOT, "AMBIGUOUS_SLOT"}, {YL_E_ALREADY_WAITLISTED, "ALREADY_WAITLISTED"},
        {YL_E_PROJECT_MISMATCH, "PROJECT_MISMATCH"}, {YL_E_SLOT_HAS_PLACES, "SLOT_HAS_PLACES"},
        {YL_E_INVALID_STATE, "INVALID_STATE"}, {YL_E_HOLD_EXPIRED, "HOLD_EXPIRED"},
        {YL_E_REFUND_NOT_ALLOWED, "REFUND_NOT_ALLOWED"}, {YL_E_ALREADY_CANCELLED, "ALREADY_CANCELLED"},
        {YL_E_FORBIDDEN, "FORBIDDEN"}, {YL_E_IDEMPOTENCY_CONFLICT, "IDEMPOTENCY_CONFLICT"},
        {YL_E_REQUEST_IN_PROGRESS, "REQUEST_IN_PROGRESS"}, {YL_E_STORAGE_ERROR, "STORAGE_ERROR"},
        {YL_E_STORE_LOCKED, "STORE_LOCKED"}, {YL_E_STORE_CORRUPT, "STORE_CORRUPT"},
        {YL_E_ENGINE_CLOSED, "ENGINE_CLOSED"}, {YL_E_NULL_ARGUMENT, "NULL_ARGUMENT"},
        {YL_E_INVALID_UTF8, "INVALID_UTF8"}, {YL_E_BUFFER_TOO_SMALL, "BUFFER_TOO_SMALL"},
        {YL_E_INTERNAL, "INTERNAL"}, {YL_E_PANIC, "PANIC"},
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CHECK(strcmp(yl_code_name(codes[i].code), codes[i].name) == 0, "%d -> %s", codes[i].code,
              yl_code_name(codes[i].code));
        CHECK(codes[i].code == 0 || (codes[i].code / 1000 >= 1 && codes[i].code / 1000 <= 9), "family of %d",
              codes[i].code);
    }
    CHECK(strcmp(yl_code_name(42), "UNKNOWN") == 0);
    CHECK(strcmp(yl_code_name(-1), "UNKNOWN") == 0);
    CHECK(YL_E_NULL_ARGUMENT == 8001 && YL_E_INVALID_UTF8 == 8002 && YL_E_BUFFER_TOO_SMALL == 8003 &&
          YL_E_PANIC == 9002 && YL_E_SLOT_FULL == 3001);
}

static void test_open(void) {
    yl_engine *sentinel = (yl_engine *)&sentinel, *e = sentinel;
    CHECK_RC(yl_engine_open(NULL, &e), YL_E_NULL_ARGUMENT);
    CHECK(e == NULL, "*out must be NULL after a failed open");
    CHECK_RC(yl_engine_open("{}", NULL), YL_E_NULL_ARGUMENT);
    e = sentinel;
    CHECK_RC(yl_engine_open("{\"clock\":\"\xff\xfe\"}", &e), YL_E_INVALID_UTF8);
    CHECK(e == NULL);
    CHECK_RC(yl_engine_open("{bad", &e), YL_E_INVALID_CONFIG);
    CHECK_RC(yl_engine_open("{\"no_such_key\":1}", &e), YL_E_INVALID_CONFIG);
    CHECK_RC(yl_engine_open("{\"time_zone\":\"Mars/Olympus\"}", &e), YL_E_INVALID_CONFIG);
    CHECK(e == NULL);

    char msg[256];
    size_t needed = 0;
    CHECK(yl_last_error_code() == YL_E_INVALID_CONFIG);
    CHECK(yl_last_error_message(msg, sizeof msg, &needed) == YL_OK && has(msg, "time_zone"), "%s", msg);

    CHECK_RC(yl_engine_open("{}", &e), YL_OK);
    CHECK(e != NULL);
    CHECK_RC(call_code(e, "engine-info", "", NULL), YL_OK);
    yl_engine_close(e);

    /* A durable engine: a second open of the same directory must be refused, not corrupt it. */
    char dir[256];
    if (make_temp_dir(dir, sizeof dir)) {
        char cfg[512];
        snprintf(cfg, sizeof cfg, "{\"data_dir\":\"%s/db\"}", dir);
        yl_engine *a = NULL, *b = NULL;
        CHECK_RC(yl_engine_open(cfg, &a), YL_OK);
        CHECK_RC(yl_engine_open(cfg, &b), YL_E_STORE_LOCKED);
        CHECK(b == NULL);
        yl_engine_close(a);
        CHECK_RC(yl_engine_open(cfg, &b), YL_OK); /* the lock goes with the close */
        yl_engine_close(b);
        CHECK(remove_temp_dir(dir) == 0);
    } else {
        CHECK(0, "make_temp_dir failed");
    }

    /* Safe misuse: NULL close and NULL free are no-ops. */
    yl_engine_close(NULL);
    yl_string_free(NULL);
    CHECK(1);
}

static void test_call_bad_input(yl_engine *e) {
    char *out = NULL;
    CHECK_RC(yl_call(NULL, "engine-info", "{}", &out), YL_E_NULL_ARGUMENT);
    CHECK(has(out, "\"code\":\"NULL_ARGUMENT\"") && has(out, "engine"), "%s", out);
    yl_string_free(out);
    out = NULL;

    CHECK_RC(yl_call(e, NULL, "{}", &out), YL_E_NULL_ARGUMENT);
    CHECK(has(out, "NULL_ARGUMENT") && has(out, "`command`"), "%s", out);
    yl_string_free(out);

    CHECK_RC(yl_call(e, "engine-info", NULL, &out), YL_E_NULL_ARGUMENT);
    CHECK(has(out, "NULL_ARGUMENT") && has(out, "`request_json`"), "%s", out);
    yl_string_free(out);

    CHECK_RC(yl_call(e, "engine-info", "{}", NULL), YL_E_NULL_ARGUMENT);
    CHECK_RC(yl_call(NULL, NULL, NULL, NULL), YL_E_NULL_ARGUMENT);

    CHECK_RC(yl_call(e, "engine\xff-info", "{}", &out), YL_E_INVALID_UTF8);
    CHECK(has(out, "INVALID_UTF8") && has(out, "`command`"), "%s", out);
    yl_string_free(out);
    CHECK_RC(yl_call(e, "pre-book-slot", "{\"patient_id\":\"\xc3\x28\"}", &out), YL_E_INVALID_UTF8);
    CHECK(has(out, "INVALID_UTF8") && has(out, "byte 15"), "%s", out);
    yl_string_free(out);
    /* Overlong encoding of '/' and a lone surrogate are invalid UTF-8 too. */
    CHECK_RC(call_code(e, "engine-info", "{\"x\":\"\xc0\xaf\"}", NULL), YL_E_INVALID_UTF8);
    CHECK_RC(call_code(e, "engine-info", "{\"x\":\"\xed\xa0\x80\"}", NULL), YL_E_INVALID_UTF8);

    CHECK_RC(call_code(e, "book-slot", "{\"patient_id\": ", NULL), YL_E_INVALID_JSON);
    CHECK_RC(call_code(e, "book-slot", "[1,2]", NULL), YL_E_INVALID_FIELD);
    CHECK_RC(call_code(e, "book-a-slot", "{}", NULL), YL_E_UNKNOWN_COMMAND);
    CHECK_RC(call_code(e, "", "{}", NULL), YL_E_UNKNOWN_COMMAND);
    CHECK_RC(call_code(e, "pre-book-slot", "{\"project_id\":\"P001\"}", NULL), YL_E_MISSING_FIELD);
    CHECK_RC(call_code(e, "engine-info", "", NULL), YL_OK); /* empty request means {} */

    /* Oversized: past the default 1 MiB limit. */
    size_t big = (2u << 20);
    char *req = malloc(big + 64);
    if (req) {
        strcpy(req, "{\"hospital_id\":\"H001\",\"pad\":\"");
        size_t n = strlen(req);
        memset(req + n, 'x', big);
        strcpy(req + n + big, "\"}");
        CHECK_RC(yl_call(e, "sync-schedule", req, &out), YL_E_REQUEST_TOO_LARGE);
        CHECK(has(out, "REQUEST_TOO_LARGE") && has(out, "\"message_zh\""), "%.200s", out);
        yl_string_free(out);
        free(req);
    }

    /* Messages in both languages, the Chinese one in UTF-8. */
    CHECK_RC(yl_call(e, "cancel-slot", "{\"booking_id\":\"B999999\"}", &out), YL_E_BOOKING_NOT_FOUND);
    CHECK(has(out, "\"message_zh\":\"预约不存在"), "%s", out);
    yl_string_free(out);
}

static void test_call_buf(yl_engine *e) {
    char buf[8192], small[8];
    size_t needed = 0;

    CHECK_RC(yl_call_buf(e, "engine-info", "{}", buf, sizeof buf, &needed), YL_OK);
    CHECK(strlen(buf) + 1 == needed && has(buf, "\"status\":\"success\""), "needed %zu, %s", needed, buf);
    CHECK_RC(yl_call_buf(e, "engine-info", "{}", buf, sizeof buf, NULL), YL_OK); /* needed is optional */

    /* Size query: NULL out with cap 0. */
    size_t q = 0;
    CHECK_RC(yl_call_buf(e, "engine-info", "{}", NULL, 0, &q), YL_E_BUFFER_TOO_SMALL);
    CHECK(q == needed, "size query %zu, needed %zu", q, needed);
    /* Exactly enough, and one byte short. */
    CHECK_RC(yl_call_buf(e, "engine-info", "{}", buf, needed, &q), YL_OK);
    CHECK_RC(yl_call_buf(e, "engine-info", "{}", buf, needed - 1, &q), YL_E_BUFFER_TOO_SMALL);
    CHECK(buf[0] == '\0');

    /* NULL out with cap > 0 fails before running anything. */
    int held = slot_count(e, "held");
    CHECK_RC(yl_call_buf(e, "pre-book-slot", prebook_req("PAT-NULLOUT", "09:00-10:00"), NULL, 10, &q),
             YL_E_NULL_ARGUMENT);
    CHECK(slot_count(e, "held") == held, "a command ran although its output pointer was NULL");

    /* Argument errors come as envelopes in the buffer too. */
    CHECK_RC(yl_call_buf(NULL, "engine-info", "{}", buf, sizeof buf, &needed), YL_E_NULL_ARGUMENT);
    CHECK(has(buf, "NULL_ARGUMENT") && strlen(buf) + 1 == needed, "%s", buf);
    CHECK_RC(yl_call_buf(e, NULL, "{}", small, sizeof small, &needed), YL_E_BUFFER_TOO_SMALL);
    CHECK(needed > sizeof small && small[0] == '\0');
    CHECK_RC(yl_call_buf(e, "x", "\xff", buf, sizeof buf, &needed), YL_E_INVALID_UTF8);
    CHECK(has(buf, "INVALID_UTF8"), "%s", buf);

    /* Too small: the command ran; the identical retry returns its answer instead of running again. */
    const char *req = prebook_req("PAT-R", "09:00-10:00");
    CHECK_RC(yl_call_buf(e, "pre-book-slot", req, small, sizeof small, &needed), YL_E_BUFFER_TOO_SMALL);
    CHECK(small[0] == '\0' && needed > sizeof small, "needed %zu", needed);
    CHECK(slot_count(e, "held") == held + 1, "the command must have run once");
    char *retry = malloc(needed);
    size_t again = 0;
    CHECK_RC(yl_call_buf(e, "pre-book-slot", req, retry, needed, &again), YL_OK);
    CHECK(again == needed && has(retry, "\"status\":\"pre-booked\"") && has(retry, "\"patient_id\":\"PAT-R\""),
          "%s", retry);
    CHECK(slot_count(e, "held") == held + 1, "the retry must not run the command again");
    free(retry);
    /* The kept answer is used once: a third identical call runs the command. */
    CHECK_RC(yl_call_buf(e, "pre-book-slot", req, buf, sizeof buf, &needed), YL_E_DUPLICATE_BOOKING);
    CHECK(has(buf, "DUPLICATE_BOOKING"), "%s", buf);

    /* Any other yl_call_buf drops the kept answer. */
    req = prebook_req("PAT-S", "10:00-11:00");
    CHECK_RC(yl_call_buf(e, "pre-book-slot", req, small, sizeof small, &needed), YL_E_BUFFER_TOO_SMALL);
    CHECK_RC(yl_call_buf(e, "engine-info", "{}", buf, sizeof buf, NULL), YL_OK);
    CHECK_RC(yl_call_buf(e, "pre-book-slot", req, buf, sizeof buf, &needed), YL_E_DUPLICATE_BOOKING);
    /* A kept error answer is replayed with its own code. */
    CHECK_RC(yl_call_buf(e, "cancel-slot", "{\"booking_id\":\"B999999\"}", small, sizeof small, &needed),
             YL_E_BUFFER_TOO_SMALL);
    CHECK_RC(yl_call_buf(e, "cancel-slot", "{\"booking_id\":\"B999999\"}", buf, sizeof buf, &needed),
             YL_E_BOOKING_NOT_FOUND);
    CHECK(has(buf, "BOOKING_NOT_FOUND"), "%s", buf);
}

/* The kept answer belongs to its thread. */
struct other_args { yl_engine *e; const char *req; int rc; int last; };
static void *other_thread(void *p) {
    struct other_args *a = p;
    char buf[4096];
    a->last = yl_last_error_code(); /* a new thread starts with YL_OK */
    a->rc = yl_call_buf(a->e, "pre-book-slot", a->req, buf, sizeof buf, NULL);
    return NULL;
}

static void test_call_buf_threads(yl_engine *e) {
    char small[4], buf[4096];
    size_t needed = 0;
    const char *req = prebook_req("PAT-T", "10:00-11:00");
    CHECK_RC(yl_call_buf(e, "pre-book-slot", req, small, sizeof small, &needed), YL_E_BUFFER_TOO_SMALL);
    struct other_args a = {e, req, -1, -1};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, other_thread, &a) == 0);
    pthread_join(t, NULL);
    CHECK(a.last == YL_OK, "new thread's last error %d", a.last);
    CHECK(a.rc == YL_E_DUPLICATE_BOOKING, "other thread got %d", a.rc);
    CHECK(yl_last_error_code() == YL_E_BUFFER_TOO_SMALL, "another thread changed this thread's last error");
    CHECK_RC(yl_call_buf(e, "pre-book-slot", req, buf, sizeof buf, &needed), YL_OK);
    CHECK(has(buf, "PAT-T") && has(buf, "pre-booked"), "%s", buf);
}

static void test_last_error(yl_engine *e) {
    char buf[512], tiny[4];
    size_t needed = 0, n2 = 0;
    CHECK_RC(call_code(e, "book-a-slot", "{}", NULL), YL_E_UNKNOWN_COMMAND);
    CHECK(yl_last_error_message(NULL, 0, &needed) == YL_E_BUFFER_TOO_SMALL && needed > 1, "needed %zu", needed);
    CHECK(yl_last_error_message(buf, sizeof buf, &n2) == YL_OK && n2 == needed && strlen(buf) + 1 == needed);
    CHECK(has(buf, "unknown command"), "%s", buf);
    CHECK(yl_last_error_message(tiny, sizeof tiny, &n2) == YL_E_BUFFER_TOO_SMALL && tiny[0] == '\0');
    CHECK(yl_last_error_message(NULL, 5, &n2) == YL_E_NULL_ARGUMENT);
    CHECK(yl_last_error_message(buf, sizeof buf, NULL) == YL_OK);
    CHECK(yl_last_error_message_zh(buf, sizeof buf, &n2) == YL_OK && has(buf, "未知"), "%s", buf);
    /* Reading the message does not change the last error. */
    CHECK(yl_last_error_code() == YL_E_UNKNOWN_COMMAND, "got %d", yl_last_error_code());

    CHECK_RC(call_code(e, "engine-info", "{}", NULL), YL_OK);
    CHECK(yl_last_error_message(buf, sizeof buf, &needed) == YL_OK && buf[0] == '\0' && needed == 1);
    CHECK(yl_last_error_message_zh(buf, sizeof buf, &needed) == YL_OK && buf[0] == '\0' && needed == 1);
}

static void test_typed(void) {
    yl_engine *e = open_synced(CFG);
    yl_slot s = 12345, s2 = 0;
    yl_hold_info h = {0, 0}, h2 = {0, 0};
    yl_slot_availability av;
    memset(&av, 0, sizeof av);

    CHECK_RC(yl_slot_handle(NULL, SLOT_ID, &s), YL_E_NULL_ARGUMENT);
    CHECK_RC(yl_slot_handle(e, NULL, &s), YL_E_NULL_ARGUMENT);
    CHECK_RC(yl_slot_handle(e, "EX-\xff", &s), YL_E_INVALID_UTF8);
    CHECK_RC(yl_slot_handle(e, "EX-NO-SUCH-SLOT", &s), YL_E_SLOT_NOT_FOUND);
    CHECK(s == 12345, "out written on failure");
    CHECK_RC(yl_slot_handle(e, SLOT_ID, NULL), YL_E_NULL_ARGUMENT);
    CHECK_RC(yl_slot_handle(e, SLOT_ID, &s), YL_OK);
    CHECK_RC(yl_slot_handle(e, "EX-H001-DEV001-20241030-10001100", &s2), YL_OK);
    CHECK(s != s2);

    CHECK_RC(yl_hold(NULL, s, "P1", NULL, YL_PRIORITY_NORMAL, NULL, &h), YL_E_NULL_ARGUMENT);
    CHECK_RC(yl_hold(e, 99999, "P1", NULL, YL_PRIORITY_NORMAL, NULL, &h), YL_E_SLOT_NOT_FOUND);
    CHECK_RC(yl_hold(e, UINT32_MAX, "P1", NULL, YL_PRIORITY_NORMAL, NULL, &h), YL_E_SLOT_NOT_FOUND);
    CHECK_RC(yl_hold(e, s, NULL, NULL, YL_PRIORITY_NORMAL, NULL, &h), YL_E_NULL_ARGUMENT);
    CHECK_RC(yl_hold(e, s, "", NULL, YL_PRIORITY_NORMAL, NULL, &h), YL_E_MISSING_FIELD);
    CHECK_RC(yl_hold(e, s, "P\xff", NULL, YL_PRIORITY_NORMAL, NULL, &h), YL_E_INVALID_UTF8);
    CHECK_RC(yl_hold(e, s, "P1", "C\xff", YL_PRIORITY_NORMAL, NULL, &h), YL_E_INVALID_UTF8);
    CHECK_RC(yl_hold(e, s, "P1", NULL, YL_PRIORITY_NORMAL, "R\xff", &h), YL_E_INVALID_UTF8);
    CHECK_RC(yl_hold(e, s, "P1", NULL, 99, NULL, &h), YL_E_INVALID_FIELD);
    CHECK_RC(yl_hold(e, s, "P1", NULL, -1, NULL, &h), YL_E_INVALID_FIELD);
    CHECK_RC(yl_hold(e, s, "P1", NULL, YL_PRIORITY_NORMAL, NULL, NULL), YL_E_NULL_ARGUMENT);
    CHECK(h.booking_id == 0, "out written on failure");
    CHECK_RC(yl_availability(e, s, &av), YL_OK);
    CHECK(av.held == 0 && av.booked == 0 && av.capacity == 3, "bad input changed the slot: held %u", av.held);

    CHECK_RC(yl_hold(e, s, "P1", "C001", YL_PRIORITY_NORMAL, NULL, &h), YL_OK);
    CHECK(h.booking_id > 0 && h.expires_ms > 0);
    /* Two places left of three: tight (tight_remaining 2), as the byte 1. */
    CHECK_RC(yl_availability(e, s, &av), YL_OK);
    CHECK(av.remaining == 2 && av.tight == 1 && av.closed == 0, "remaining %u tight %u closed %u", av.remaining,
          (unsigned)av.tight, (unsigned)av.closed);
    CHECK_RC(yl_hold(e, s, "P1", NULL, YL_PRIORITY_NORMAL, NULL, &h2), YL_E_DUPLICATE_BOOKING);
    /* Idempotent retry by request id; the same id for another request is refused. */
    CHECK_RC(yl_hold(e, s, "P2", NULL, YL_PRIORITY_NORMAL, "req-1", &h2), YL_OK);
    yl_hold_info h3 = {0, 0};
    CHECK_RC(yl_hold(e, s, "P2", NULL, YL_PRIORITY_NORMAL, "req-1", &h3), YL_OK);
    CHECK(h3.booking_id == h2.booking_id, "retry gave booking %llu, first %llu", (unsigned long long)h3.booking_id,
          (unsigned long long)h2.booking_id);
    CHECK_RC(yl_hold(e, s, "P3", NULL, YL_PRIORITY_NORMAL, "req-1", &h3), YL_E_IDEMPOTENCY_CONFLICT);
    CHECK_RC(yl_hold(e, s, "P3", NULL, YL_PRIORITY_NORMAL, NULL, &h3), YL_OK);
    CHECK_RC(yl_hold(e, s, "P4", NULL, YL_PRIORITY_NORMAL, NULL, &h3), YL_E_SLOT_FULL);

    CHECK_RC(yl_availability(NULL, s, &av), YL_E_NULL_ARGUMENT);
    CHECK_RC(yl_availability(e, 99999, &av), YL_E_SLOT_NOT_FOUND);
    CHECK_RC(yl_availability(e, s, NULL), YL_E_NULL_ARGUMENT);
    CHECK_RC(yl_availability(e, s, &av), YL_OK);
    CHECK(av.capacity == 3 && av.held == 3 && av.booked == 0 && av.remaining == 0, "cap %u held %u booked %u rem %u",
          av.capacity, av.held, av.booked, av.remaining);
    /* tight and closed are bytes (uint8_t, not bool), exactly 0 or 1; a full slot is not tight. */
    CHECK(av.tight == 0 && av.closed == 0, "tight %u closed %u", (unsigned)av.tight, (unsigned)av.closed);
    CHECK(sizeof av.tight == 1 && sizeof av.closed == 1);
    CHECK(slot_count(e, "held") == 3 && slot_count(e, "remaining") == 0, "JSON and typed views disagree");

    CHECK_RC(yl_confirm(NULL, h.booking_id, NULL), YL_E_NULL_ARGUMENT);
    CHECK_RC(yl_confirm(e, 999999, NULL), YL_E_BOOKING_NOT_FOUND);
    CHECK_RC(yl_confirm(e, 0, NULL), YL_E_BOOKING_NOT_FOUND);
    CHECK_RC(yl_confirm(e, h.booking_id, "r\xff"), YL_E_INVALID_UTF8);
    CHECK_RC(yl_confirm(e, h.booking_id, NULL), YL_OK);
    CHECK_RC(yl_confirm(e, h.booking_id, NULL), YL_OK); /* confirming a booked place again is a no-op */
    CHECK_RC(yl_availability(e, s, &av), YL_OK);
    CHECK(av.booked == 1 && av.held == 2 && av.capacity == av.booked + av.held + av.remaining);

    CHECK_RC(yl_release(NULL, h.booking_id, NULL), YL_E_NULL_ARGUMENT);
    CHECK_RC(yl_release(e, 999999, NULL), YL_E_BOOKING_NOT_FOUND);
    CHECK_RC(yl_release(e, h.booking_id, "r\xff"), YL_E_INVALID_UTF8);
    CHECK_RC(yl_release(e, h.booking_id, NULL), YL_OK);
    CHECK_RC(yl_release(e, h.booking_id, NULL), YL_E_ALREADY_CANCELLED);
    CHECK_RC(yl_confirm(e, h.booking_id, NULL), YL_E_ALREADY_CANCELLED);

    /* A hold that outlives its time-to-live cannot be confirmed. */
    CHECK_RC(call_code(e, "advance-clock", "{\"seconds\":901}", NULL), YL_OK);
    CHECK_RC(yl_confirm(e, h2.booking_id, NULL), YL_E_HOLD_EXPIRED);
    CHECK_RC(yl_availability(e, s, &av), YL_OK);
    CHECK(av.held == 0 && av.remaining == 3, "held %u remaining %u", av.held, av.remaining);

    /* A priority hold on the second slot. */
    CHECK_RC(yl_hold(e, s2, "P9", NULL, YL_PRIORITY_REFERRAL, NULL, &h), YL_OK);
    CHECK_RC(yl_release(e, h.booking_id, NULL), YL_OK);
    yl_engine_close(e);
}

static void test_panic(yl_engine *e) {
    CHECK_RC(yl_test_panic(), YL_E_PANIC);
    char buf[512];
    CHECK(yl_last_error_message(buf, sizeof buf, NULL) == YL_OK && has(buf, "panic"), "%s", buf);
    CHECK(yl_last_error_message_zh(buf, sizeof buf, NULL) == YL_OK && has(buf, "崩溃"), "%s", buf);
    /* The library and the engine stay usable. */
    CHECK_RC(call_code(e, "engine-info", "{}", NULL), YL_OK);
    CHECK_RC(yl_test_panic(), YL_E_PANIC);
}

/* yl_call_as / yl_call_as_buf: the host states who acts; a body naming
 * another institution is refused and nothing changes. */
static void test_call_as(yl_engine *e) {
    const char *c001 = "{\"role\":\"community\",\"institution_id\":\"C001\",\"operator\":\"王护士\"}";
    const char *c002 = "{\"role\":\"community\",\"institution_id\":\"C002\"}";
    char *out = NULL;
    int held = slot_count(e, "held");
    CHECK_RC(yl_call_as(e, c002, "pre-book-slot",
                        "{\"patient_id\":\"PAT-AS1\",\"slot_id\":\"EX-H001-DEV001-20241030-09001000\",\"clinic_id\":\"C001\"}", &out),
             YL_E_FORBIDDEN);
    CHECK(out && has(out, "\"code\":\"FORBIDDEN\""), "%s", out ? out : "(null)");
    yl_string_free(out);
    CHECK(slot_count(e, "held") == held, "a refused call changed the slot");
    out = NULL;
    CHECK_RC(yl_call_as(e, c001, "pre-book-slot", "{\"patient_id\":\"PAT-AS1\",\"slot_id\":\"EX-H001-DEV001-20241030-09001000\"}", &out), YL_OK);
    CHECK(out && has(out, "\"clinic_id\":\"C001\""), "%s", out ? out : "(null)");
    yl_string_free(out);
    /* An invalid principal is an input error, with its envelope. */
    out = NULL;
    CHECK_RC(yl_call_as(e, "{\"role\":\"community\"}", "engine-info", "{}", &out), YL_E_INVALID_FIELD);
    CHECK(out && has(out, "INVALID_FIELD"), "%s", out ? out : "(null)");
    yl_string_free(out);
    out = NULL;
    CHECK_RC(yl_call_as(e, NULL, "engine-info", "{}", &out), YL_E_NULL_ARGUMENT);
    yl_string_free(out);
    /* The buffer form replays a kept answer only for the same principal. */
    char buf[8192];
    size_t needed = 0;
    CHECK_RC(yl_call_as_buf(e, c001, "engine-info", "{}", buf, sizeof buf, &needed), YL_OK);
    CHECK(has(buf, "\"institution_id\":\"C001\""), "%s", buf);
    CHECK_RC(yl_call_as_buf(e, c002, "cancel-slot", "{\"booking_id\":\"B000001\",\"institution_id\":\"C001\"}", buf, sizeof buf, &needed),
             YL_E_FORBIDDEN);
}

int main(void) {
    test_version_and_names();
    test_open();
    yl_engine *e = open_synced(CFG);
    test_call_bad_input(e);
    test_call_buf(e);
    test_call_buf_threads(e);
    test_last_error(e);
    test_call_as(e);
    test_panic(e);
    yl_engine_close(e);
    test_typed();
    return finish_suite("errors");
}
