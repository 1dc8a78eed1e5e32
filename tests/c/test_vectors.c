/* Runs every case of the tests/vectors JSON files through yl_call and again through
 * yl_call_buf, by the matching rules of tests/vectors/README.md.
 *
 * The yl_call_buf pass starts every other step with a 16-byte buffer, so most
 * steps go through YL_E_BUFFER_TOO_SMALL and a retry with *needed bytes: the
 * retry must return the kept envelope, not run the command a second time (a
 * re-run pre-book-slot would answer DUPLICATE_BOOKING and fail the case).
 *
 * usage: test_vectors DIR   (exit 1 if DIR holds no vector file or no case) */
#include <dirent.h>
#include <stdbool.h>

#include <cjson/cJSON.h>

#include "common.h"

enum mode { MODE_CALL, MODE_BUF };

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return NULL; }
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) { fclose(f); return NULL; }
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    if (buf) buf[n] = '\0';
    fclose(f);
    return buf;
}

/* `actual` contains `expected`: objects key by key (extra keys allowed),
 * arrays of equal length element by element, scalars equal (numbers by value). */
static bool contains(const cJSON *e, const cJSON *a, const char *path, char *why, size_t whylen) {
    char sub[512];
    if (cJSON_IsObject(e)) {
        if (!cJSON_IsObject(a)) { snprintf(why, whylen, "%s: expected an object", path); return false; }
        for (const cJSON *c = e->child; c; c = c->next) {
            snprintf(sub, sizeof sub, "%s.%s", path, c->string);
            const cJSON *ac = cJSON_GetObjectItemCaseSensitive(a, c->string);
            if (!ac) { snprintf(why, whylen, "%s: missing", sub); return false; }
            if (!contains(c, ac, sub, why, whylen)) return false;
        }
        return true;
    }
    if (cJSON_IsArray(e)) {
        if (!cJSON_IsArray(a)) { snprintf(why, whylen, "%s: expected an array", path); return false; }
        int ne = cJSON_GetArraySize(e), na = cJSON_GetArraySize(a);
        if (ne != na) { snprintf(why, whylen, "%s: expected %d elements, got %d", path, ne, na); return false; }
        const cJSON *ac = a->child;
        int i = 0;
        for (const cJSON *c = e->child; c; c = c->next, ac = ac->next, i++) {
            snprintf(sub, sizeof sub, "%s[%d]", path, i);
            if (!contains(c, ac, sub, why, whylen)) return false;
        }
        return true;
    }
    bool ok;
    if (cJSON_IsNumber(e)) ok = cJSON_IsNumber(a) && e->valuedouble == a->valuedouble;
    else if (cJSON_IsString(e)) ok = cJSON_IsString(a) && strcmp(e->valuestring, a->valuestring) == 0;
    else if (cJSON_IsBool(e)) ok = cJSON_IsBool(a) && (cJSON_IsTrue(e) == cJSON_IsTrue(a));
    else if (cJSON_IsNull(e)) ok = cJSON_IsNull(a);
    else ok = false;
    if (!ok) {
        char *es = cJSON_PrintUnformatted(e), *as = cJSON_PrintUnformatted(a);
        snprintf(why, whylen, "%s: expected %s, got %s", path, es ? es : "?", as ? as : "?");
        cJSON_free(es);
        cJSON_free(as);
    }
    return ok;
}

/* One step through the chosen function (its _as form when the step states a
 * principal): returns a malloc'ed envelope (or NULL) and its code. */
static char *run_step(yl_engine *e, enum mode mode, int step, const char *who, const char *cmd, const char *req, int *rc) {
    if (mode == MODE_CALL) {
        char *out = NULL;
        *rc = who ? yl_call_as(e, who, cmd, req, &out) : yl_call(e, cmd, req, &out);
        if (!out) return NULL;
        char *copy = strdup(out);
        yl_string_free(out);
        return copy;
    }
    size_t cap = (step % 2 == 0) ? 16 : 65536, needed = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    *rc = who ? yl_call_as_buf(e, who, cmd, req, buf, cap, &needed) : yl_call_buf(e, cmd, req, buf, cap, &needed);
    if (*rc == YL_E_BUFFER_TOO_SMALL) {
        CHECK(needed > cap, "needed %zu with cap %zu", needed, cap);
        CHECK(buf[0] == '\0', "a too-small buffer must be left an empty string");
        free(buf);
        cap = needed;
        buf = malloc(cap);
        if (!buf) return NULL;
        size_t again = 0;
        *rc = who ? yl_call_as_buf(e, who, cmd, req, buf, cap, &again) : yl_call_buf(e, cmd, req, buf, cap, &again);
        CHECK(again == needed, "needed %zu then %zu", needed, again);
    }
    CHECK(*rc == YL_E_BUFFER_TOO_SMALL || strlen(buf) + 1 == needed, "needed %zu for %zu bytes", needed,
          strlen(buf));
    return buf;
}

/* Runs one case; returns the number of steps run, or -1 with `why` set. */
static int run_case(const cJSON *file_config, const cJSON *kase, enum mode mode, char *why, size_t whylen) {
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(kase, "config");
    if (!cfg) cfg = file_config;
    char *cfg_text = cfg ? cJSON_PrintUnformatted(cfg) : NULL;
    yl_engine *e = NULL;
    int rc = yl_engine_open(cfg_text ? cfg_text : "{}", &e);
    cJSON_free(cfg_text);
    if (rc != YL_OK || !e) { snprintf(why, whylen, "open failed: %d", rc); return -1; }

    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(kase, "steps");
    int n = 0, result = 0;
    if (!cJSON_IsArray(steps)) { snprintf(why, whylen, "case has no steps"); result = -1; }
    for (const cJSON *s = steps ? steps->child : NULL; s && result == 0; s = s->next, n++) {
        const cJSON *command = cJSON_GetObjectItemCaseSensitive(s, "command");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(s, "request_text");
        const cJSON *request = cJSON_GetObjectItemCaseSensitive(s, "request");
        if (!cJSON_IsString(command)) { snprintf(why, whylen, "step %d has no command", n); result = -1; break; }
        char *req = NULL;
        if (text) {
            if (!cJSON_IsString(text)) { snprintf(why, whylen, "step %d: request_text must be a string", n); result = -1; break; }
            req = strdup(text->valuestring);
        } else {
            req = request ? cJSON_PrintUnformatted(request) : strdup("{}");
        }
        const cJSON *principal = cJSON_GetObjectItemCaseSensitive(s, "principal");
        char *who = principal ? cJSON_PrintUnformatted(principal) : NULL;
        int code = -1;
        char *out = req ? run_step(e, mode, n, who, command->valuestring, req, &code) : NULL;
        free(req);
        cJSON_free(who);
        cJSON *env = out ? cJSON_Parse(out) : NULL;
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(env, "status");
        const cJSON *expect_error = cJSON_GetObjectItemCaseSensitive(s, "expect_error");
        const cJSON *expect = cJSON_GetObjectItemCaseSensitive(s, "expect");
        char detail[1024] = "";
        if (!env || !cJSON_IsString(status)) {
            snprintf(why, whylen, "step %d (%s): envelope is not JSON: %.200s", n, command->valuestring, out ? out : "(none)");
            result = -1;
        } else {
            bool success = strcmp(status->valuestring, "success") == 0;
            const cJSON *num = cJSON_GetObjectItemCaseSensitive(env, "numeric_code");
            /* The return code is the envelope's: 0 for success, else numeric_code. */
            int want_rc = success ? YL_OK : (cJSON_IsNumber(num) ? num->valueint : -1);
            if (code != want_rc || yl_last_error_code() != code) {
                snprintf(why, whylen, "step %d (%s): returned %d, last error %d, envelope says %d", n,
                         command->valuestring, code, yl_last_error_code(), want_rc);
                result = -1;
            } else if (expect_error) {
                if (success) {
                    snprintf(why, whylen, "step %d (%s): expected an error, got %.300s", n, command->valuestring, out);
                    result = -1;
                } else if (!contains(expect_error, env, "", detail, sizeof detail)) {
                    snprintf(why, whylen, "step %d (%s): %s; envelope %.300s", n, command->valuestring, detail, out);
                    result = -1;
                }
            } else if (!success) {
                snprintf(why, whylen, "step %d (%s): expected success, got %.300s", n, command->valuestring, out);
                result = -1;
            } else if (expect && !contains(expect, cJSON_GetObjectItemCaseSensitive(env, "data"), "data", detail, sizeof detail)) {
                snprintf(why, whylen, "step %d (%s): %s; envelope %.300s", n, command->valuestring, detail, out);
                result = -1;
            }
        }
        cJSON_Delete(env);
        free(out);
    }
    yl_engine_close(e);
    return result == 0 ? n : -1;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s VECTORS_DIR\n", argv[0]); return 2; }
    DIR *d = opendir(argv[1]);
    if (!d) { perror(argv[1]); return 1; }
    char *names[256];
    int nfiles = 0;
    for (struct dirent *ent; (ent = readdir(d)) && nfiles < 256;) {
        size_t len = strlen(ent->d_name);
        if (len > 5 && strcmp(ent->d_name + len - 5, ".json") == 0) names[nfiles++] = strdup(ent->d_name);
    }
    closedir(d);
    qsort(names, (size_t)nfiles, sizeof names[0], cmp_names);

    const char *mode_name[] = {"yl_call", "yl_call_buf"};
    int cases[2] = {0, 0}, steps[2] = {0, 0};
    for (int f = 0; f < nfiles; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[1], names[f]);
        char *text = read_file(path);
        cJSON *doc = text ? cJSON_Parse(text) : NULL;
        free(text);
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "cases");
        CHECK(cJSON_IsArray(list) && cJSON_GetArraySize(list) > 0, "%s: no cases", names[f]);
        const cJSON *file_config = cJSON_GetObjectItemCaseSensitive(doc, "config");
        for (int m = MODE_CALL; m <= MODE_BUF; m++) {
            for (const cJSON *c = list ? list->child : NULL; c; c = c->next) {
                const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
                char why[2048] = "";
                int n = run_case(file_config, c, (enum mode)m, why, sizeof why);
                CHECK(n >= 0, "%s / %s via %s: %s", names[f], cJSON_IsString(name) ? name->valuestring : "?",
                      mode_name[m], why);
                cases[m]++;
                if (n > 0) steps[m] += n;
            }
        }
        cJSON_Delete(doc);
        free(names[f]);
    }
    for (int m = MODE_CALL; m <= MODE_BUF; m++)
        printf("vectors via %s: %d files, %d cases, %d steps\n", mode_name[m], nfiles, cases[m], steps[m]);
    CHECK(nfiles > 0 && cases[MODE_CALL] > 0, "no vector found in %s", argv[1]);
    return finish_suite("vectors");
}
