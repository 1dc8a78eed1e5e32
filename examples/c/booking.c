/* yilian from C: open a durable engine, sync the source's example schedule,
 * pre-book, pay, book, cancel, and print every envelope. Then reopen the data
 * directory to show the state survived.
 *
 *   usage: booking [DATA_DIR]   (default: a new directory under /tmp) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yilian.h"

/* Runs one command and prints its envelope; returns the code. `*response`
 * receives the envelope, to be released with yl_string_free. */
static int call_kept(yl_engine *e, const char *command, const char *request, char **response) {
    *response = NULL;
    int rc = yl_call(e, command, request, response);
    printf("> %s %s\n< [%d %s] %s\n\n", command, request, rc, yl_code_name(rc), *response ? *response : "(none)");
    return rc;
}

/* As call_kept, then frees the envelope. */
static int call(yl_engine *e, const char *command, const char *request) {
    char *response;
    int rc = call_kept(e, command, request, &response);
    yl_string_free(response);
    return rc;
}

/* Copies the value of "booking_id" out of an envelope (good enough for a demo;
 * real code would use a JSON parser). */
static int booking_id_of(yl_engine *e, const char *command, const char *request, char *id, size_t cap) {
    char *response;
    int rc = call_kept(e, command, request, &response);
    const char *p = response ? strstr(response, "\"booking_id\":\"") : NULL;
    id[0] = '\0';
    if (rc == YL_OK && p) {
        p += strlen("\"booking_id\":\"");
        size_t n = strcspn(p, "\"");
        if (n < cap) {
            memcpy(id, p, n);
            id[n] = '\0';
        }
    }
    yl_string_free(response);
    return rc == YL_OK && id[0] ? YL_OK : (rc ? rc : YL_E_INTERNAL);
}

/* Pre-books or books (`command`) a patient into a period of DEV001 on
 * 2024-10-30 for clinic C001; copies the booking id as booking_id_of does. */
static int book(yl_engine *e, const char *command, const char *patient, const char *time_slot, char *id, size_t cap) {
    char request[256];
    snprintf(request, sizeof request,
             "{\"patient_id\":\"%s\",\"project_id\":\"P001\",\"date\":\"2024-10-30\","
             "\"time_slot\":\"%s\",\"device_id\":\"DEV001\",\"clinic_id\":\"C001\"}",
             patient, time_slot);
    return booking_id_of(e, command, request, id, cap);
}

static yl_engine *open_engine(const char *dir) {
    char config[1024];
    /* The directory is put into JSON as is: keep it free of quotes and backslashes. */
    snprintf(config, sizeof config, "{\"data_dir\":\"%s\",\"clock_start\":\"2024-10-29T09:00:00+08:00\"}", dir);
    yl_engine *e = NULL;
    int rc = yl_engine_open(config, &e);
    if (rc != YL_OK) {
        char msg[512];
        yl_last_error_message(msg, sizeof msg, NULL);
        fprintf(stderr, "yl_engine_open: %d %s: %s\n", rc, yl_code_name(rc), msg);
        return NULL;
    }
    return e;
}

int main(int argc, char **argv) {
    char tmpl[] = "/tmp/yilian-example-XXXXXX";
    const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
    if (!dir || strpbrk(dir, "\"\\")) {
        fprintf(stderr, "need a data directory without quotes or backslashes\n");
        return 1;
    }
    printf("yilian %s, data in %s\n\n", yl_version(), dir);
    yl_engine *e = open_engine(dir);
    if (!e) return 1;

    int failures = 0;
    /* The source's sync-schedule example (one CT device, two periods). */
    failures += call(e, "sync-schedule",
                     "{\"hospital_id\":\"H001\",\"schedule_data\":[{\"device_id\":\"DEV001\",\"project_id\":\"P001\","
                     "\"date\":\"2024-10-30\",\"available_slots\":[{\"start_time\":\"09:00\",\"end_time\":\"10:00\"},"
                     "{\"start_time\":\"14:00\",\"end_time\":\"15:00\"}]}]}") != YL_OK;
    failures += call(e, "real-time-slots",
                     "{\"project_id\":\"P001\",\"date\":\"2024-10-30\",\"time_slot\":\"09:00-10:00\"}") != YL_OK;

    /* A community clinic pre-books (预约, held 15 minutes) and the patient pays. */
    char first[32], second[32], request[256];
    failures += book(e, "pre-book-slot", "PAT001", "09:00-10:00", first, sizeof first) != YL_OK;
    snprintf(request, sizeof request, "{\"booking_id\":\"%s\",\"payment_status\":\"paid\"}", first);
    failures += call(e, "payment-status", request) != YL_OK;

    /* Another patient books the afternoon directly. */
    failures += book(e, "book-slot", "PAT002", "14:00-15:00", second, sizeof second) != YL_OK;

    /* The first patient cancels; the place returns to the pool. */
    snprintf(request, sizeof request, "{\"booking_id\":\"%s\"}", first);
    failures += call(e, "cancel-slot", request) != YL_OK;
    failures += call(e, "real-time-slots",
                     "{\"project_id\":\"P001\",\"date\":\"2024-10-30\",\"time_slot\":\"09:00-10:00\"}") != YL_OK;

    /* An error is an envelope too. */
    failures += call(e, "cancel-slot", request) != YL_E_ALREADY_CANCELLED;
    yl_engine_close(e);

    /* Reopen: the bookings are where we left them. */
    e = open_engine(dir);
    if (!e) return 1;
    snprintf(request, sizeof request, "{\"booking_id\":\"%s\"}", second);
    failures += call(e, "booking-info", request) != YL_OK;
    yl_engine_close(e);

    printf(failures ? "example: %d step(s) went wrong\n" : "example: all steps as expected\n", failures);
    return failures ? 1 : 0;
}
