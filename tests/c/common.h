/* Shared helpers of the C tests: counted checks and the closing line. */
#ifndef YL_TEST_COMMON_H
#define YL_TEST_COMMON_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yilian.h"

#ifdef _WIN32
#include <direct.h>
#include <io.h>
/* MinGW's C library has no rand_r (test_storm's per-thread random numbers). */
static int rand_r(unsigned *seed) {
    *seed = *seed * 1103515245u + 12345u;
    return (int)((*seed >> 16) & 0x7fff);
}
#endif

static atomic_int g_pass, g_fail;

static void check_failed(const char *file, int line, const char *expr, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "FAIL %s:%d: %s", file, line, expr);
    if (fmt && *fmt) {
        fputs(": ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
}

/* CHECK(cond, "printf format", args...): counts a pass or reports a failure. */
#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (cond) {                                                          \
            atomic_fetch_add(&g_pass, 1);                                    \
        } else {                                                             \
            atomic_fetch_add(&g_fail, 1);                                    \
            check_failed(__FILE__, __LINE__, #cond, "" __VA_ARGS__);         \
        }                                                                    \
    } while (0)

/* The return code must be `want`, and the thread's last error must agree. */
#define CHECK_RC(rc, want)                                                   \
    do {                                                                     \
        int rc_ = (rc), want_ = (want), last_ = yl_last_error_code();       \
        CHECK(rc_ == want_, "got %d (%s), want %d (%s)", rc_, yl_code_name(rc_), want_, \
              yl_code_name(want_));                                          \
        CHECK(last_ == rc_, "last error %d, return code %d", last_, rc_);    \
    } while (0)

/* Prints the runner's closing line; exit status 1 on any failure or on no check at all. */
static int finish_suite(const char *suite) {
    int pass = atomic_load(&g_pass), fail = atomic_load(&g_fail);
    printf("%s: %d passed, %d failed\n", suite, pass, fail);
    fflush(stdout);
    return (fail == 0 && pass > 0) ? 0 : 1;
}

/* Runs a command that must succeed (a test's setup steps). */
static inline void call_ok(yl_engine *e, const char *cmd, const char *req) {
    char *out = NULL;
    int rc = yl_call(e, cmd, req, &out);
    CHECK(rc == YL_OK, "%s: %s", cmd, out ? out : "(null)");
    yl_string_free(out);
}

/* A fresh, empty directory (for a durable engine's data_dir) in `buf`; 0 on
 * failure. Forward slashes only, so it can sit in a JSON string as it is
 * (Windows takes them too). The same tests run on Linux and, against the
 * DLL, under Wine (scripts/cross/windows.sh). */
static int make_temp_dir(char *buf, size_t n) {
#ifdef _WIN32
    const char *tmp = getenv("TEMP");
    if (!tmp || !*tmp) tmp = ".";
    if ((size_t)snprintf(buf, n, "%s/yl-test-XXXXXX", tmp) >= n) return 0;
    for (char *p = buf; *p; p++)
        if (*p == '\\') *p = '/';
    return _mktemp(buf) != NULL && _mkdir(buf) == 0;
#else
    if ((size_t)snprintf(buf, n, "/tmp/yl-test-XXXXXX") >= n) return 0;
    return mkdtemp(buf) != NULL;
#endif
}

/* Removes a directory made by make_temp_dir and everything in it; 0 on success. */
static int remove_temp_dir(const char *dir) {
    char cmd[1024];
#ifdef _WIN32
    char win[512];
    size_t i = 0;
    for (; dir[i] && i + 1 < sizeof win; i++) win[i] = dir[i] == '/' ? '\\' : dir[i];
    win[i] = '\0';
    snprintf(cmd, sizeof cmd, "rmdir /s /q \"%s\"", win);
#else
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
#endif
    return system(cmd);
}

/* An environment integer (storm and bench sizes), with a default. */
static long env_long(const char *name, long dflt) {
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    return (end && *end == '\0' && n > 0) ? n : dflt;
}

#endif
