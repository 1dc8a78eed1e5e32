/* The typed label call of the lab module: the printer's bytes straight into
 * the caller's buffer (TSPL in GBK, ZPL and SVG as UTF-8), the size query,
 * a too-small buffer, and bad arguments. */
#include "common.h"

static const char *CFG = "{\"clock_start\":\"2024-10-29T09:00:00+08:00\",\"clock\":\"manual\"}";

static int contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m) {
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0) return 1;
    return 0;
}

int main(void) {
    yl_engine *e = NULL;
    CHECK_RC(yl_engine_open(CFG, &e), YL_OK);
    call_ok(e, "lab-std-item-upsert",
       "{\"items\":[{\"code\":\"STD-HEM-001\",\"name\":\"白细胞计数\",\"specimen_type\":\"全血\",\"workgroup\":\"临检\"}]}");
    call_ok(e, "lab-resource-upsert", "{\"resources\":[{\"code\":\"STD-P-CBC\",\"name\":\"血常规\",\"items\":[\"STD-HEM-001\"]}]}");
    call_ok(e, "lab-local-code-set", "{\"lab_id\":\"H001\",\"resource_code\":\"STD-P-CBC\",\"local_code\":\"LIS-1001\"}");
    call_ok(e, "lab-inst-item-upsert",
       "{\"institution_id\":\"C001\",\"items\":[{\"code\":\"C-1\",\"name\":\"白细胞\",\"specimen_type\":\"全血\",\"std_code\":\"STD-HEM-001\"}]}");
    call_ok(e, "lab-order-submit",
       "{\"institution_id\":\"C001\",\"lab_id\":\"H001\",\"patient_id\":\"P1\",\"patient\":{\"name\":\"张三\"},\"doctor_id\":\"D1\",\"items\":[\"STD-P-CBC\"]}");
    /* The patient pays at the centre before the specimen is taken. */
    call_ok(e, "lab-order-payment", "{\"order_id\":\"LO000001\",\"payment_status\":\"paid\"}");
    call_ok(e, "specimen-print", "{\"order_id\":\"LO000001\"}");
    const char *barcode = "241029000001";

    size_t need = 0;
    CHECK_RC(yl_specimen_label(e, barcode, "tspl", NULL, 0, &need), YL_E_BUFFER_TOO_SMALL);
    CHECK(need > 100, "need %zu", need);
    uint8_t small[8];
    CHECK_RC(yl_specimen_label(e, barcode, "tspl", small, sizeof small, NULL), YL_E_BUFFER_TOO_SMALL);
    uint8_t *buf = malloc(need);
    size_t got = 0;
    CHECK_RC(yl_specimen_label(e, barcode, "tspl", buf, need, &got), YL_OK);
    CHECK(got == need, "got %zu, need %zu", got, need);
    static const uint8_t CBC_GBK[] = {0xD1, 0xAA, 0xB3, 0xA3, 0xB9, 0xE6}; /* 血常规 */
    static const uint8_t MASKED_GBK[] = {0xD5, 0xC5, 0x2A};                 /* 张* */
    CHECK(contains(buf, got, CBC_GBK, sizeof CBC_GBK), "no 血常规 in GBK");
    CHECK(contains(buf, got, MASKED_GBK, sizeof MASKED_GBK), "no masked name");
    CHECK(contains(buf, got, (const uint8_t *)barcode, strlen(barcode)), "no barcode");
    free(buf);

    uint8_t zpl[4096];
    CHECK_RC(yl_specimen_label(e, barcode, "zpl", zpl, sizeof zpl, &got), YL_OK);
    CHECK(got > 4 && memcmp(zpl, "^XA", 3) == 0, "zpl starts %.3s", (const char *)zpl);
    CHECK(contains(zpl, got, (const uint8_t *)"血常规", strlen("血常规")), "no UTF-8 血常规 in ZPL");

    CHECK_RC(yl_specimen_label(e, "NOPE", "svg", zpl, sizeof zpl, NULL), YL_E_LAB_SPECIMEN_NOT_FOUND);
    CHECK_RC(yl_specimen_label(e, barcode, "bmp", zpl, sizeof zpl, NULL), YL_E_INVALID_FIELD);
    CHECK_RC(yl_specimen_label(e, NULL, "svg", zpl, sizeof zpl, NULL), YL_E_NULL_ARGUMENT);
    CHECK_RC(yl_specimen_label(NULL, barcode, "svg", zpl, sizeof zpl, NULL), YL_E_NULL_ARGUMENT);
    CHECK_RC(yl_specimen_label(e, barcode, "svg", NULL, 10, NULL), YL_E_NULL_ARGUMENT);
    CHECK_RC(yl_specimen_label(e, "\xff", "svg", zpl, sizeof zpl, NULL), YL_E_INVALID_UTF8);

    yl_engine_close(e);
    return finish_suite("lab");
}
