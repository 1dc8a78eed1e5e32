/* The typed lab translator: lab result codes (standard or the lab's own)
 * into an institution's sub-items, without JSON. Happy path, strictness,
 * NULL and non-UTF-8 arguments, unknown institution, snapshot semantics,
 * a translator outliving its engine, concurrent use, and free(NULL). */
#include <pthread.h>

#include "common.h"

static const char *CFG = "{\"clock_start\":\"2024-10-29T09:00:00+08:00\",\"clock\":\"manual\"}";

static int streq(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

static int last_message_contains(const char *needle) {
    char buf[512];
    return yl_last_error_message(buf, sizeof buf, NULL) == YL_OK && strstr(buf, needle) != NULL;
}

/* Sentinels no pointer the library writes can equal: "not written". */
static const yl_lab_entry UNTOUCHED;
static char not_a_translator;
#define NOT_WRITTEN ((yl_lab_translator *)(void *)&not_a_translator)

typedef struct {
    const yl_lab_translator *t;
    int failures;
} worker_arg;

static void *translate_many(void *p) {
    worker_arg *w = p;
    const char *codes[] = {"WBC", "STD-HEM-002", "NOPE"};
    const yl_lab_entry *out[3];
    for (int i = 0; i < 2000; i++) {
        size_t unmapped = 99;
        int rc = yl_lab_translator_translate(w->t, codes, 3, 0, out, &unmapped);
        if (rc != YL_OK || unmapped != 1 || !out[0] || !streq(out[0]->inst_code, "C-1") || !out[1] ||
            !streq(out[1]->inst_code, "C-2") || out[2] != NULL)
            w->failures++;
    }
    return NULL;
}

int main(void) {
    yl_engine *e = NULL;
    CHECK_RC(yl_engine_open(CFG, &e), YL_OK);
    call_ok(e, "lab-std-item-upsert",
       "{\"items\":[{\"code\":\"STD-HEM-001\",\"name\":\"白细胞计数\",\"specimen_type\":\"全血\",\"workgroup\":\"临检\","
       "\"unit\":\"10^9/L\",\"ref_low\":3.5,\"ref_high\":9.5},"
       "{\"code\":\"STD-HEM-002\",\"name\":\"红细胞计数\",\"specimen_type\":\"全血\",\"workgroup\":\"临检\"},"
       "{\"code\":\"STD-HEM-003\",\"name\":\"血红蛋白\",\"specimen_type\":\"全血\",\"workgroup\":\"临检\"}]}");
    call_ok(e, "lab-inst-item-upsert",
       "{\"institution_id\":\"C001\",\"items\":["
       "{\"code\":\"C-1\",\"name\":\"白细胞\",\"specimen_type\":\"全血\",\"std_code\":\"STD-HEM-001\"},"
       "{\"code\":\"C-2\",\"name\":\"红细胞\",\"specimen_type\":\"全血\",\"std_code\":\"STD-HEM-002\"}]}");
    /* The lab's own code WBC for the standard STD-HEM-001. */
    call_ok(e, "lab-inst-item-upsert",
       "{\"institution_id\":\"H001\",\"items\":[{\"code\":\"WBC\",\"name\":\"白细胞\",\"specimen_type\":\"全血\",\"std_code\":\"STD-HEM-001\"}]}");

    /* ---- happy path: the lab's codes and standard codes; NULL where unmapped */
    yl_lab_translator *t = NULL;
    CHECK_RC(yl_lab_translator_new(e, "C001", "H001", &t), YL_OK);
    CHECK(t != NULL);
    const char *codes[] = {"WBC", "STD-HEM-002", "NOPE", "STD-HEM-001"};
    const yl_lab_entry *out[4];
    size_t unmapped = 99;
    CHECK_RC(yl_lab_translator_translate(t, codes, 4, 0, out, &unmapped), YL_OK);
    CHECK(unmapped == 1, "unmapped %zu", unmapped);
    CHECK(out[0] && streq(out[0]->inst_code, "C-1") && streq(out[0]->inst_name, "白细胞"));
    CHECK(out[0] && streq(out[0]->std_code, "STD-HEM-001") && streq(out[0]->unit, "10^9/L"));
    CHECK(out[0] && streq(out[0]->ref_range, "3.5-9.5"), "ref_range %s", out[0] ? out[0]->ref_range : "-");
    CHECK(out[1] && streq(out[1]->inst_code, "C-2") && streq(out[1]->unit, "") && streq(out[1]->ref_range, ""));
    CHECK(out[2] == NULL);
    /* The lab's code and the standard code are one sub-item, one entry. */
    CHECK(out[3] == out[0]);
    /* `unmapped` is optional. */
    CHECK_RC(yl_lab_translator_translate(t, codes, 2, 0, out, NULL), YL_OK);

    /* ---- strict: an unmapped code is LAB_ITEM_UNMAPPED naming it; nothing written */
    for (int i = 0; i < 4; i++) out[i] = &UNTOUCHED;
    unmapped = 99;
    CHECK_RC(yl_lab_translator_translate(t, codes, 4, 1, out, &unmapped), YL_E_LAB_ITEM_UNMAPPED);
    CHECK(last_message_contains("NOPE"), "the message names the code");
    CHECK(out[0] == &UNTOUCHED && out[3] == &UNTOUCHED && unmapped == 99, "written on success only");
    /* strict is a byte (uint8_t, not bool): any non-zero value means true. */
    CHECK_RC(yl_lab_translator_translate(t, codes, 4, 2, out, &unmapped), YL_E_LAB_ITEM_UNMAPPED);
    CHECK_RC(yl_lab_translator_translate(t, codes, 4, 0x80, out, &unmapped), YL_E_LAB_ITEM_UNMAPPED);
    const char *mapped[] = {"STD-HEM-002", "WBC"};
    CHECK_RC(yl_lab_translator_translate(t, mapped, 2, 1, out, &unmapped), YL_OK);
    CHECK(unmapped == 0 && streq(out[0]->inst_code, "C-2") && streq(out[1]->inst_code, "C-1"));
    /* n == 0: nothing to read or write, NULL arrays allowed. */
    unmapped = 99;
    CHECK_RC(yl_lab_translator_translate(t, NULL, 0, 1, NULL, &unmapped), YL_OK);
    CHECK(unmapped == 0);

    /* ---- NULL arguments */
    yl_lab_translator *t2 = NOT_WRITTEN;
    CHECK_RC(yl_lab_translator_new(NULL, "C001", NULL, &t2), YL_E_NULL_ARGUMENT);
    CHECK(t2 == NULL, "*out is NULL after a failure");
    CHECK_RC(yl_lab_translator_new(e, NULL, "H001", &t2), YL_E_NULL_ARGUMENT);
    CHECK(last_message_contains("institution_id"));
    CHECK_RC(yl_lab_translator_new(e, "C001", NULL, NULL), YL_E_NULL_ARGUMENT);
    CHECK_RC(yl_lab_translator_translate(NULL, codes, 1, 0, out, NULL), YL_E_NULL_ARGUMENT);
    CHECK_RC(yl_lab_translator_translate(t, NULL, 1, 0, out, NULL), YL_E_NULL_ARGUMENT);
    CHECK_RC(yl_lab_translator_translate(t, codes, 1, 0, NULL, NULL), YL_E_NULL_ARGUMENT);
    const char *with_null[] = {"WBC", NULL};
    out[0] = &UNTOUCHED;
    CHECK_RC(yl_lab_translator_translate(t, with_null, 2, 0, out, NULL), YL_E_NULL_ARGUMENT);
    CHECK(last_message_contains("codes[1]"), "the message names the element");
    CHECK(out[0] == &UNTOUCHED, "written on success only");

    /* ---- invalid UTF-8 */
    CHECK_RC(yl_lab_translator_new(e, "C\xff", NULL, &t2), YL_E_INVALID_UTF8);
    CHECK_RC(yl_lab_translator_new(e, "C001", "H\xc3", &t2), YL_E_INVALID_UTF8);
    CHECK(t2 == NULL);
    const char *bad[] = {"WBC", "\xe5\x88"};
    CHECK_RC(yl_lab_translator_translate(t, bad, 2, 0, out, NULL), YL_E_INVALID_UTF8);

    /* ---- unknown institution */
    t2 = NOT_WRITTEN;
    CHECK_RC(yl_lab_translator_new(e, "C999", NULL, &t2), YL_E_LAB_INST_ITEM_NOT_FOUND);
    CHECK(t2 == NULL);

    /* ---- without a lab: standard codes only */
    CHECK_RC(yl_lab_translator_new(e, "C001", NULL, &t2), YL_OK);
    const char *std_and_lab[] = {"STD-HEM-001", "WBC"};
    CHECK_RC(yl_lab_translator_translate(t2, std_and_lab, 2, 0, out, &unmapped), YL_OK);
    CHECK(out[0] && streq(out[0]->inst_code, "C-1") && out[1] == NULL && unmapped == 1);

    /* ---- a snapshot: a later mapping is seen by a new translator only */
    call_ok(e, "lab-inst-item-upsert",
       "{\"institution_id\":\"C001\",\"items\":[{\"code\":\"C-3\",\"name\":\"血红蛋白\",\"specimen_type\":\"全血\",\"std_code\":\"STD-HEM-003\"}]}");
    const char *hgb[] = {"STD-HEM-003"};
    CHECK_RC(yl_lab_translator_translate(t2, hgb, 1, 1, out, NULL), YL_E_LAB_ITEM_UNMAPPED);
    yl_lab_translator_free(t2);
    CHECK_RC(yl_lab_translator_new(e, "C001", NULL, &t2), YL_OK);
    CHECK_RC(yl_lab_translator_translate(t2, hgb, 1, 1, out, NULL), YL_OK);
    CHECK(streq(out[0]->inst_code, "C-3"));
    yl_lab_translator_free(t2);

    /* ---- many threads, one translator */
    enum { THREADS = 4 };
    pthread_t th[THREADS];
    worker_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg){t, 0};
        CHECK(pthread_create(&th[i], NULL, translate_many, &args[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(th[i], NULL) == 0);
        CHECK(args[i].failures == 0, "thread %d: %d failures", i, args[i].failures);
    }

    /* ---- the translator outlives its engine (ASan / valgrind watch the reads) */
    yl_engine_close(e);
    CHECK_RC(yl_lab_translator_translate(t, codes, 2, 1, out, &unmapped), YL_OK);
    CHECK(streq(out[0]->inst_code, "C-1") && streq(out[1]->inst_name, "红细胞"));
    yl_lab_translator_free(t);

    /* ---- free(NULL) is a no-op and leaves the last error alone */
    CHECK_RC(yl_lab_translator_new(NULL, "C001", NULL, &t2), YL_E_NULL_ARGUMENT);
    yl_lab_translator_free(NULL);
    CHECK(yl_last_error_code() == YL_E_NULL_ARGUMENT);

    return finish_suite("translator");
}
