package org.yilian;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Every error code of the core maps to its family's class; a panic is a YilianInternalError. */
class ErrorMappingTest {
    static final Map<String, Class<? extends YilianException>> FAMILIES = new HashMap<>();

    static {
        FAMILIES.put("input", YilianInputException.class);
        FAMILIES.put("not_found", YilianNotFoundException.class);
        FAMILIES.put("conflict", YilianConflictException.class);
        FAMILIES.put("state", YilianStateException.class);
        FAMILIES.put("permission", YilianPermissionException.class);
        FAMILIES.put("idempotency", YilianIdempotencyException.class);
        FAMILIES.put("storage", YilianStorageException.class);
        FAMILIES.put("binding", YilianBindingException.class);
        FAMILIES.put("internal", YilianInternalError.class);
    }

    @BeforeAll
    static void load() {
        NativeLoader.ensureLoaded();
    }

    @Test
    void everyCoreCodeMapsToItsFamilyClass() {
        String[] rows = NativeMethods.errorCodes();
        assertTrue(rows.length >= 30, "too few codes: " + rows.length);
        Set<String> familiesSeen = new HashSet<>();
        Set<Integer> numbers = new HashSet<>();
        for (String row : rows) {
            String[] f = row.split(":");
            assertEquals(3, f.length, row);
            int numeric = Integer.parseInt(f[0]);
            String code = f[1];
            String family = f[2];
            assertTrue(numbers.add(numeric), "duplicate " + numeric);
            Class<? extends YilianException> expected = FAMILIES.get(family);
            assertNotNull(expected, "family " + family + " of " + code + " has no Java class");
            YilianException e = YilianException.fromNative(code, numeric, "m", "z");
            assertSame(expected, e.getClass(), code + " (" + numeric + ", " + family + ")");
            assertEquals(code, e.getCode());
            assertEquals(numeric, e.getNumericCode());
            assertEquals("z", e.getMessageZh());
            assertEquals(code + "(" + numeric + "): m", e.getMessage());
            familiesSeen.add(family);
        }
        assertEquals(FAMILIES.keySet(), familiesSeen, "every family has at least one code");
    }

    @Test
    void unknownFamilyStaysTyped() {
        YilianException e = YilianException.fromNative("FUTURE_CODE", 12001, "m", "z");
        assertSame(YilianException.class, e.getClass());
        assertEquals(12001, e.getNumericCode());
        assertNull(e.getErrorCode());
        assertNull(e.getFamily());
    }

    /** ErrorCode.java is generated from the core's table (tools/gen-bindings): it matches the library's. */
    @Test
    void generatedErrorCodeEnumMatchesTheLibrary() {
        String[] rows = NativeMethods.errorCodes();
        ErrorCode[] all = ErrorCode.values();
        assertEquals(rows.length, all.length, "ErrorCode.java is stale: run cargo run -p yilian-gen-bindings");
        for (int i = 0; i < rows.length; i++) {
            String[] f = rows[i].split(":");
            ErrorCode c = all[i];
            assertEquals(Integer.parseInt(f[0]), c.getNumericCode(), rows[i]);
            assertEquals(f[1], c.name(), rows[i]);
            assertEquals(f[2], c.getFamily().getCoreName(), rows[i]);
            assertEquals(c.getNumericCode() / 1000, c.getFamily().getDigit(), rows[i]);
            assertTrue(!c.getMessage().isEmpty() && !c.getMessageZh().isEmpty(), rows[i]);
            assertSame(c, ErrorCode.fromNumeric(c.getNumericCode()));
            assertSame(c, ErrorCode.fromName(c.name()));
            YilianException e = YilianException.fromNative(c.name(), c.getNumericCode(), c.getMessage(), c.getMessageZh());
            assertSame(c, e.getErrorCode());
            assertSame(c.getFamily(), e.getFamily());
            assertSame(FAMILIES.get(c.getFamily().getCoreName()), e.getClass(), rows[i]);
        }
        assertEquals(FAMILIES.size(), ErrorCode.Family.values().length);
        assertNull(ErrorCode.fromNumeric(12001));
        assertNull(ErrorCode.fromName("FUTURE_CODE"));
        assertNull(ErrorCode.fromName(null));
        assertSame(ErrorCode.SLOT_FULL, ErrorCode.fromName("SLOT_FULL"));
        assertEquals("号源已满", ErrorCode.SLOT_FULL.getMessageZh());
    }

    @Test
    void panicBecomesYilianInternalError() {
        for (int mode = 0; mode < 6; mode++) { // 0-2: general boundary, 3-5: hot-path boundary
            final int m = mode;
            YilianInternalError e = assertThrows(YilianInternalError.class, () -> TestHooks.panicForTest(m));
            assertEquals("PANIC", e.getCode());
            assertEquals(9002, e.getNumericCode());
            if (mode % 3 < 2) {
                assertTrue(e.getMessage().contains("yilian test panic"), e.getMessage());
                assertTrue(e.getMessage().contains("lib.rs:"), "panic location in " + e.getMessage());
            } else {
                assertTrue(e.getMessage().contains("non-string payload"), e.getMessage());
            }
            assertTrue(e.getMessageZh().contains("异常崩溃"), e.getMessageZh());
        }
        // Caught at the boundary: the JVM and the library carry on.
        try (Engine engine = TestSupport.openManual()) {
            engine.call("sync-schedule", TestSupport.schedule(1, 1));
            for (int i = 0; i < 200; i++) {
                final int m = i % 6;
                assertThrows(YilianInternalError.class, () -> TestHooks.panicForTest(m));
            }
            assertEquals(1, engine.availability(engine.slot(TestSupport.SLOT_0900)).getRemaining());
        }
    }

    @Test
    void internalErrorIsAYilianException() {
        // Chosen on purpose (see YilianInternalError): catchable with every other library failure.
        assertTrue(YilianException.class.isAssignableFrom(YilianInternalError.class));
        assertTrue(RuntimeException.class.isAssignableFrom(YilianException.class));
    }
}
