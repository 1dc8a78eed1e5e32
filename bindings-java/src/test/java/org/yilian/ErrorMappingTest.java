package org.yilian;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
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
    }

    @Test
    void panicBecomesYilianInternalError() {
        for (int mode = 0; mode < 6; mode++) { // 0-2: general boundary, 3-5: hot-path boundary
            final int m = mode;
            YilianInternalError e = assertThrows(YilianInternalError.class, () -> NativeMethods.panicForTest(m));
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
                assertThrows(YilianInternalError.class, () -> NativeMethods.panicForTest(m));
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
