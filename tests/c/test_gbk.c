/* An engine opened with "text_encoding": "gbk" reads GBK and answers in GBK,
 * as a PowerBuilder or Delphi caller with ANSI strings on a Chinese Windows
 * would use it, through the `_std` (stdcall on 32-bit Windows) forms: Chinese
 * names round-trip, bytes that are not GBK are refused and change nothing, a
 * character GBK lacks comes back as a JSON escape, and the last error's
 * Chinese message is GBK too. The source file is UTF-8; GBK bytes are written
 * as escapes. */
#include "common.h"

/* CT扫描, 放射科, 张三, 不是合法的GBK编码 in GBK. */
#define GBK_CT_SCAN "CT\xc9\xa8\xc3\xe8"
#define GBK_RADIOLOGY "\xb7\xc5\xc9\xe4\xbf\xc6"
#define GBK_ZHANG_SAN "\xd5\xc5\xc8\xfd"
#define GBK_NOT_VALID_GBK "\xb2\xbb\xca\xc7\xba\xcf\xb7\xa8\xb5\xc4GBK\xb1\xe0\xc2\xeb"

static const char *CFG_GBK =
    "{\"clock_start\":\"2024-10-29T09:00:00+08:00\",\"clock\":\"manual\",\"text_encoding\":\"gbk\"}";
static const char *SYNC =
    "{\"hospital_id\":\"H001\",\"schedule_data\":[{\"device_id\":\"DEV001\",\"project_id\":\"P001\","
    "\"date\":\"2024-10-30\",\"capacity\":3,\"available_slots\":[{\"start_time\":\"09:00\",\"end_time\":\"10:00\"}]}]}";

static int has(const char *s, const char *needle) { return s && strstr(s, needle) != NULL; }

/* yl_call_buf_std into a fixed buffer (as PowerBuilder does with a Blob). */
static int call_std(yl_engine *e, const char *cmd, const char *req, char *out, size_t cap) {
    size_t needed = 0;
    int rc = yl_call_buf_std(e, cmd, req, out, cap, &needed);
    CHECK(rc != YL_E_BUFFER_TOO_SMALL, "%s: needs %zu bytes", cmd, needed);
    return rc;
}

/* held places of the slot, via slot-info. */
static int held(yl_engine *e) {
    char out[8192];
    if (call_std(e, "slot-info", "{\"slot_id\":\"EX-H001-DEV001-20241030-09001000\"}", out, sizeof out) != YL_OK) return -1;
    const char *p = strstr(out, "\"held\":");
    return p ? atoi(p + strlen("\"held\":")) : -1;
}

static void test_names_round_trip_in_gbk(yl_engine *e) {
    char out[8192];
    const char *catalog = "{\"hospital_id\":\"H001\",\"projects\":[{\"project_id\":\"P001\",\"project_name\":\"" GBK_CT_SCAN
                          "\",\"department_id\":\"D001\",\"department_name\":\"" GBK_RADIOLOGY "\",\"cost\":500}]}";
    CHECK_RC(call_std(e, "sync-catalog", catalog, out, sizeof out), YL_OK);
    CHECK_RC(call_std(e, "project-info", "{\"project_id\":\"P001\"}", out, sizeof out), YL_OK);
    CHECK(has(out, "\"project_name\":\"" GBK_CT_SCAN "\""), "GBK name back: %s", out);
    CHECK(has(out, "\"department_name\":\"" GBK_RADIOLOGY "\""), "GBK department back");
    CHECK(!has(out, "CT\xe6\x89\xab\xe6\x8f\x8f"), "the answer is not UTF-8");

    /* The library-allocated form answers the same bytes. */
    char *resp = NULL;
    CHECK_RC(yl_call_std(e, "project-info", "{\"project_id\":\"P001\"}", &resp), YL_OK);
    CHECK(resp && strcmp(resp, out) == 0, "yl_call_std and yl_call_buf_std differ");
    yl_string_free_std(resp);
}

static void test_invalid_gbk_is_refused_and_books_nothing(yl_engine *e) {
    char out[8192];
    CHECK_RC(call_std(e, "sync-schedule", SYNC, out, sizeof out), YL_OK);
    CHECK(held(e) == 0);
    /* 0x81 starts a two-byte character; 0x20 cannot end one. */
    const char *bad = "{\"patient_id\":\"P\x81 1\",\"project_id\":\"P001\",\"date\":\"2024-10-30\","
                      "\"time_slot\":\"09:00-10:00\",\"device_id\":\"DEV001\",\"clinic_id\":\"C001\"}";
    CHECK_RC(call_std(e, "pre-book-slot", bad, out, sizeof out), YL_E_INVALID_ENCODING);
    CHECK(has(out, "\"code\":\"INVALID_ENCODING\"") && has(out, "\"numeric_code\":8004"), "envelope: %s", out);
    CHECK(has(out, GBK_NOT_VALID_GBK), "the envelope's Chinese message is GBK: %s", out);
    CHECK(held(e) == 0, "a refused request held a place");

    /* The last error's Chinese message, in GBK, through the _std accessors. */
    CHECK_RC(call_std(e, "pre-book-slot", bad, out, sizeof out), YL_E_INVALID_ENCODING);
    char msg[512];
    size_t needed = 0;
    CHECK(yl_last_error_code_std() == YL_E_INVALID_ENCODING);
    CHECK(yl_last_error_message_zh_std(msg, sizeof msg, &needed) == YL_OK && has(msg, GBK_NOT_VALID_GBK), "zh: %s", msg);
    CHECK(yl_last_error_message_std(msg, sizeof msg, &needed) == YL_OK && has(msg, "not valid GBK"), "en: %s", msg);

    /* The same request in good GBK (patient 张三) holds a place. */
    const char *good = "{\"patient_id\":\"" GBK_ZHANG_SAN "\",\"project_id\":\"P001\",\"date\":\"2024-10-30\","
                       "\"time_slot\":\"09:00-10:00\",\"device_id\":\"DEV001\",\"clinic_id\":\"C001\"}";
    CHECK_RC(call_std(e, "pre-book-slot", good, out, sizeof out), YL_OK);
    CHECK(held(e) == 1, "held %d", held(e));
}

static void test_characters_gbk_lacks_come_back_escaped(yl_engine *e) {
    char out[8192];
    /* Thai ko kai (U+0E01) and an emoji (U+1F600) have no GBK code: sent as JSON escapes. */
    const char *catalog = "{\"hospital_id\":\"H001\",\"projects\":[{\"project_id\":\"P002\",\"project_name\":\""
                          "\\u0e01\\ud83d\\ude00" GBK_CT_SCAN "\",\"department_id\":\"D001\",\"cost\":1}]}";
    CHECK_RC(call_std(e, "sync-catalog", catalog, out, sizeof out), YL_OK);
    CHECK_RC(call_std(e, "project-info", "{\"project_id\":\"P002\"}", out, sizeof out), YL_OK);
    CHECK(has(out, "\"project_name\":\"\\u0e01\\ud83d\\ude00" GBK_CT_SCAN "\""), "escaped, not '?': %s", out);
    CHECK(!has(out, "?"), "no character became '?'");
}

static void test_config_and_encoding_boundaries(void) {
    yl_engine *e = NULL;
    CHECK_RC(yl_engine_open_std("{\"text_encoding\":\"big5\"}", &e), YL_E_INVALID_CONFIG);
    CHECK(e == NULL);
    CHECK_RC(yl_engine_open_std("{\"text_encoding\":7}", &e), YL_E_INVALID_CONFIG);
    /* The engine itself never sees the key: utf-8 opens as the default does. */
    CHECK_RC(yl_engine_open_std("{\"text_encoding\":\"utf-8\"}", &e), YL_OK);
    char out[4096];
    size_t needed = 0;
    /* A UTF-8 engine refuses the same GBK bytes as not UTF-8. */
    CHECK_RC(yl_call_buf_std(e, "project-info", "{\"project_id\":\"" GBK_CT_SCAN "\"}", out, sizeof out, &needed),
             YL_E_INVALID_UTF8);
    /* Its messages are UTF-8 again (不是合法的UTF-8). */
    char msg[512];
    CHECK(yl_last_error_message_zh_std(msg, sizeof msg, NULL) == YL_OK &&
              has(msg, "\xe4\xb8\x8d\xe6\x98\xaf\xe5\x90\x88\xe6\xb3\x95\xe7\x9a\x84UTF-8"),
          "zh: %s", msg);
    yl_engine_close_std(e);
    yl_engine_close_std(NULL);
    CHECK(strcmp(yl_version_std(), yl_version()) == 0);
    CHECK(strcmp(yl_code_name_std(YL_E_INVALID_ENCODING), "INVALID_ENCODING") == 0);
}

int main(void) {
    yl_engine *e = NULL;
    CHECK_RC(yl_engine_open_std(CFG_GBK, &e), YL_OK);
    if (!e) return finish_suite("gbk");
    test_names_round_trip_in_gbk(e);
    test_invalid_gbk_is_refused_and_books_nothing(e);
    test_characters_gbk_lacks_come_back_escaped(e);
    yl_engine_close_std(e);
    test_config_and_encoding_boundaries();
    return finish_suite("gbk");
}
