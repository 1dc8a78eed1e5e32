package org.yilian;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The typed lab calls: specimen labels and the lab translator, on the catalogue of tests/tests/lab_common.rs. */
class LabTest {
    private Engine engine;

    @BeforeEach
    void open() throws IOException {
        engine = TestSupport.openManual();
        setup(engine);
    }

    @AfterEach
    void close() {
        engine.close();
    }

    /** tests/data/lab, beside the shared vectors. */
    private static String data(String name) throws IOException {
        Path dir = Paths.get(TestSupport.property("yilian.vectors.dir")).resolveSibling("data").resolve("lab");
        return new String(Files.readAllBytes(dir.resolve(name)), StandardCharsets.UTF_8);
    }

    private static void call(Engine e, String command, ObjectNode request) {
        e.call(command, request.toString());
    }

    /** The same command sequence as lab_common.rs's setup. */
    static void setup(Engine e) throws IOException {
        call(e, "lab-std-item-import", TestSupport.object().put("content", data("lab-standard-items.csv")));
        call(e, "lab-resource-import", TestSupport.object().put("content", data("lab-panels.csv")));
        String[][] local = {{"STD-P-CBC", "LIS-1001"}, {"STD-P-LFT", "LIS-2001"}, {"STD-P-RFT", "LIS-2002"}, {"STD-P-INF", "LIS-3001"},
                {"STD-P-HBA1C", "LIS-1010"}, {"STD-P-COAG", "LIS-4001"}, {"STD-P-ELE", "LIS-2005"}};
        for (String[] l : local) {
            call(e, "lab-local-code-set", TestSupport.object().put("lab_id", "H001").put("resource_code", l[0]).put("local_code", l[1]));
        }
        call(e, "lab-mapping-import",
                TestSupport.object().put("institution_id", "C001").put("kind", "items").put("content", data("community-items-C001.csv")));
        ObjectNode projects = TestSupport.object().put("institution_id", "C001");
        ArrayNode p = projects.putArray("projects");
        p.addObject().put("code", "C001-XCG").put("name", "血常规").put("std_code", "STD-P-CBC");
        p.addObject().put("code", "C001-GGN").put("name", "肝功能").put("std_code", "STD-P-LFT");
        p.addObject().put("code", "C001-CRB").put("name", "传染病四项").put("std_code", "STD-P-INF");
        p.addObject().put("code", "C001-NX").put("name", "凝血四项");
        call(e, "lab-inst-project-upsert", projects);
        ObjectNode items = TestSupport.object().put("institution_id", "C001");
        items.putArray("items").addObject().put("code", "C001-0108").put("name", "糖化血红蛋白").put("specimen_type", "全血").put("std_code", "STD-HEM-010");
        call(e, "lab-inst-item-upsert", items);
        ObjectNode lab = TestSupport.object().put("institution_id", "H001");
        ArrayNode li = lab.putArray("items");
        li.addObject().put("code", "WBC").put("name", "白细胞").put("specimen_type", "全血").put("std_code", "STD-HEM-001");
        li.addObject().put("code", "HGB").put("name", "血红蛋白").put("specimen_type", "全血").put("std_code", "STD-HEM-003");
        call(e, "lab-inst-item-upsert", lab);
    }

    /** Submits a blood count for 张三丰, records its payment and prints it: the tubes' barcodes. */
    private List<String> barcodes() {
        ObjectNode order = TestSupport.object().put("institution_id", "C001").put("lab_id", "H001").put("patient_id", "P001")
                .put("doctor_id", "D01").put("doctor_name", "李医生").put("diagnosis", "发热待查");
        order.putObject("patient").put("name", "张三丰").put("sex", "男").put("age", "45岁").put("phone", "13800138000");
        order.putArray("items").add("C001-XCG");
        String orderId = TestSupport.parse(engine.call("lab-order-submit", order.toString())).get("order_id").asText();
        // The patient pays at the centre before the specimen is taken.
        engine.call("lab-order-payment", TestSupport.object().put("order_id", orderId).put("payment_status", "paid").toString());
        List<String> out = new ArrayList<>();
        TestSupport.parse(engine.call("specimen-print", TestSupport.object().put("order_id", orderId).toString())).get("specimens")
                .forEach(s -> out.add(s.get("barcode").asText()));
        assertFalse(out.isEmpty());
        return out;
    }

    private static boolean startsWith(byte[] bytes, String prefix) {
        byte[] p = prefix.getBytes(StandardCharsets.US_ASCII);
        return bytes.length >= p.length && Arrays.equals(Arrays.copyOf(bytes, p.length), p);
    }

    @Test
    void tsplLabelIsGbkWithTheMaskedName() {
        String barcode = barcodes().get(0);
        byte[] tspl = engine.specimenLabel(barcode, "tspl");
        assertTrue(startsWith(tspl, "SIZE 50 mm"), new String(tspl, StandardCharsets.ISO_8859_1));
        String text = new String(tspl, Charset.forName("GBK"));
        assertTrue(text.contains("张**"), text);
        assertFalse(text.contains("张三丰"), text);
        assertTrue(text.contains(barcode), text);
        // Not UTF-8: the masked name's UTF-8 bytes are absent.
        assertFalse(new String(tspl, StandardCharsets.ISO_8859_1).contains(new String("张".getBytes(StandardCharsets.UTF_8), StandardCharsets.ISO_8859_1)));
        // The same bytes as the command layer's label.
        String b64 = TestSupport.parse(engine.call("specimen-label", TestSupport.object().put("barcode", barcode).put("format", "tspl").toString()))
                .get("label").get("content_base64").asText();
        assertTrue(Arrays.equals(java.util.Base64.getDecoder().decode(b64), tspl));
    }

    @Test
    void zplAndSvgLabelsAreUtf8() {
        String barcode = barcodes().get(0);
        byte[] zpl = engine.specimenLabel(barcode, "zpl");
        assertTrue(startsWith(zpl, "^XA"));
        String text = new String(zpl, StandardCharsets.UTF_8);
        assertTrue(text.contains("张**") && !text.contains("张三丰"), text);
        String svg = new String(engine.specimenLabel(barcode, "svg"), StandardCharsets.UTF_8);
        assertTrue(svg.contains("<svg"), svg);
    }

    @Test
    void labelErrors() {
        String barcode = barcodes().get(0);
        YilianNotFoundException nf = assertThrows(YilianNotFoundException.class, () -> engine.specimenLabel("NOPE", "zpl"));
        assertEquals("LAB_SPECIMEN_NOT_FOUND", nf.getCode());
        YilianInputException bad = assertThrows(YilianInputException.class, () -> engine.specimenLabel(barcode, "pdf"));
        assertEquals("INVALID_FIELD", bad.getCode());
        NullPointerException npe = assertThrows(NullPointerException.class, () -> engine.specimenLabel(null, "zpl"));
        assertTrue(npe.getMessage().contains("barcode"), npe.getMessage());
        npe = assertThrows(NullPointerException.class, () -> engine.specimenLabel(barcode, null));
        assertTrue(npe.getMessage().contains("format"), npe.getMessage());
    }

    @Test
    void translatorMapsLabAndStandardCodes() {
        try (LabTranslator t = engine.labTranslator("C001", "H001")) {
            assertEquals("C001", t.getInstitutionId());
            assertEquals("H001", t.getLabId());
            Map<String, String> results = new LinkedHashMap<>();
            results.put("WBC", "6.1");
            results.put("STD-HEM-002", "4.8");
            results.put("HGB", "145");
            results.put("NOPE-1", "1");
            Map<String, String> expected = new LinkedHashMap<>();
            expected.put("C001-0101", "6.1");
            expected.put("C001-0102", "4.8");
            expected.put("C001-0103", "145");
            Map<String, String> got = t.translate(results, false);
            assertEquals(expected, got);
            assertEquals(new ArrayList<>(expected.keySet()), new ArrayList<>(got.keySet()));
            assertThrows(UnsupportedOperationException.class, () -> got.put("x", "y"));
            // Strict by default, as in Python: an unmapped code is a conflict naming it.
            YilianConflictException c = assertThrows(YilianConflictException.class, () -> t.translate(results));
            assertEquals("LAB_ITEM_UNMAPPED", c.getCode());
            assertTrue(c.getMessage().contains("NOPE-1"), c.getMessage());
            results.remove("NOPE-1");
            assertEquals(expected, t.translate(results));
            assertTrue(t.translate(new HashMap<>()).isEmpty());

            LabTranslator.Entry wbc = t.lookup("WBC");
            assertEquals("C001-0101", wbc.getInstCode());
            assertEquals("STD-HEM-001", wbc.getStdCode());
            assertEquals(wbc, t.lookup("STD-HEM-001"));
            assertTrue(wbc.toString().contains("C001-0101"), wbc.toString());
            assertNull(t.lookup("NOPE-1"));
            assertTrue(t.size() > 2);
        }
    }

    @Test
    void translatorWithoutLabUnderstandsOnlyStandardCodes() {
        try (LabTranslator t = engine.labTranslator("C001", null)) {
            assertNull(t.getLabId());
            Map<String, String> results = new HashMap<>();
            results.put("WBC", "6.1");
            results.put("STD-HEM-001", "6.1");
            Map<String, String> expected = new HashMap<>();
            expected.put("C001-0101", "6.1");
            assertEquals(expected, t.translate(results, false));
        }
    }

    @Test
    void translatorErrors() {
        YilianNotFoundException nf = assertThrows(YilianNotFoundException.class, () -> engine.labTranslator("C999", null));
        assertEquals("LAB_INST_ITEM_NOT_FOUND", nf.getCode());
        assertThrows(NullPointerException.class, () -> engine.labTranslator(null, "H001"));
        try (LabTranslator t = engine.labTranslator("C001", "H001")) {
            assertThrows(NullPointerException.class, () -> t.translate(null));
            Map<String, String> withNull = new HashMap<>();
            withNull.put(null, "1");
            NullPointerException npe = assertThrows(NullPointerException.class, () -> t.translate(withNull, false));
            assertTrue(npe.getMessage().contains("code"), npe.getMessage());
            assertThrows(NullPointerException.class, () -> t.lookup(null));
        }
    }

    @Test
    void closedTranslatorAndEngine() throws InterruptedException {
        LabTranslator t = engine.labTranslator("C001", "H001");
        Map<String, String> results = new HashMap<>();
        results.put("WBC", "6.1");
        // A snapshot: it outlives the engine that made it.
        engine.close();
        assertThrows(IllegalStateException.class, () -> engine.labTranslator("C001", null));
        assertThrows(IllegalStateException.class, () -> engine.specimenLabel("X", "zpl"));
        assertEquals("6.1", t.translate(results).get("C001-0101"));
        // Racing closers: exactly one frees the handle, all return.
        CountDownLatch go = new CountDownLatch(1);
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            Thread th = new Thread(() -> {
                try {
                    go.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                t.close();
            });
            th.start();
            threads.add(th);
        }
        go.countDown();
        for (Thread th : threads) {
            th.join();
        }
        assertTrue(t.isClosed());
        t.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> t.translate(results));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> t.lookup("WBC"));
        assertThrows(IllegalStateException.class, t::size);
        assertTrue(t.toString().contains("closed"));
    }
}
