package org.yilian;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** Every kind of bad input gets a typed exception with its code, and changes nothing. */
class BadInputTest extends EngineFixture {
    BadInputTest() {
        super(1);
    }

    static <T extends YilianException> T expect(Class<T> type, String code, Executable call) {
        T e = assertThrows(type, call);
        assertEquals(code, e.getCode(), e.getMessage());
        assertTrue(e.getMessage().startsWith(code + "(" + e.getNumericCode() + "): "), e.getMessage());
        assertFalse(e.getMessageZh().isEmpty());
        return e;
    }

    static void expectNpe(String argument, Executable call) {
        NullPointerException e = assertThrows(NullPointerException.class, call);
        assertEquals(argument + " must not be null", e.getMessage());
    }

    @Test
    void nullArgumentsNameTheArgument() {
        expectNpe("configJson", () -> Engine.open(null));
        expectNpe("command", () -> engine.call(null, "{}"));
        expectNpe("requestJson", () -> engine.call("slot-info", null));
        expectNpe("slotId", () -> engine.slot(null));
        expectNpe("patientId", () -> engine.hold(slot, null));
        expectNpe("patientId", () -> engine.hold(slot, null, "R1", "C001", "normal"));
        expectNpe("slot", () -> engine.hold(null, "PAT001"));
        expectNpe("slot", () -> engine.availability(null));
        expectNpe("bookingId", () -> Engine.parseBookingId(null));
        // Optional arguments may be null.
        Hold h = engine.hold(slot, "PAT001", null, null, null);
        engine.confirm(h.getBookingId(), null);
        engine.release(h.getBookingId(), null);
    }

    @Test
    void badConfig() {
        YilianInputException e = expect(YilianInputException.class, "INVALID_CONFIG", () -> Engine.open("{not json"));
        assertEquals(1006, e.getNumericCode());
        expect(YilianInputException.class, "INVALID_CONFIG", () -> Engine.open("{\"no_such_key\":1}"));
        expect(YilianInputException.class, "INVALID_CONFIG", () -> Engine.open("[]"));
    }

    @Test
    void malformedJson() {
        YilianInputException e = expect(YilianInputException.class, "INVALID_JSON", () -> engine.call("pre-book-slot", "{\"patient_id\": "));
        assertEquals(1001, e.getNumericCode());
        expect(YilianInputException.class, "INVALID_FIELD", () -> engine.call("pre-book-slot", "[1,2]"));
    }

    @Test
    void unknownCommand() {
        expect(YilianInputException.class, "UNKNOWN_COMMAND", () -> engine.call("book-a-slot", "{}"));
        expect(YilianInputException.class, "UNKNOWN_COMMAND", () -> engine.call("", "{}"));
    }

    @Test
    void missingAndWrongTypedFields() {
        expect(YilianInputException.class, "MISSING_FIELD",
                () -> engine.call("pre-book-slot", "{\"project_id\":\"P001\",\"date\":\"2024-10-30\",\"time_slot\":\"09:00-10:00\",\"device_id\":\"DEV001\"}"));
        expect(YilianInputException.class, "INVALID_FIELD", () -> engine.call("pre-book-slot", TestSupport.preBook("PAT001", "nine")));
        expect(YilianInputException.class, "INVALID_FIELD",
                () -> engine.call("pre-book-slot", TestSupport.preBook("PAT001", "09:00-10:00").replace("\"PAT001\"", "[\"x\"]")));
        expect(YilianInputException.class, "MISSING_FIELD", () -> engine.hold(slot, ""));
        expect(YilianInputException.class, "INVALID_FIELD", () -> Engine.parseBookingId("not-an-id"));
        expect(YilianInputException.class, "INVALID_FIELD", () -> engine.confirm(-1));
        expect(YilianInputException.class, "INVALID_FIELD", () -> engine.release(Long.MIN_VALUE));
        expect(YilianInputException.class, "INVALID_FIELD", () -> Engine.formatBookingId(-5));
        assertEquals(1, engine.availability(slot).getRemaining(), "bad input changed nothing");
    }

    @Test
    void unknownSlotAndBooking() {
        YilianNotFoundException e = expect(YilianNotFoundException.class, "SLOT_NOT_FOUND", () -> engine.slot("EX-H001-NOPE"));
        assertEquals(2001, e.getNumericCode());
        expect(YilianNotFoundException.class, "SLOT_NOT_FOUND", () -> engine.call("slot-info", "{\"slot_id\":\"EX-H001-NOPE\"}"));
        expect(YilianNotFoundException.class, "BOOKING_NOT_FOUND", () -> engine.confirm(999_999));
        expect(YilianNotFoundException.class, "BOOKING_NOT_FOUND", () -> engine.release(424_242));
        expect(YilianNotFoundException.class, "BOOKING_NOT_FOUND", () -> engine.call("cancel-slot", "{\"booking_id\":\"B999999\"}"));
    }

    @Test
    void oversizedRequest() {
        try (Engine small = Engine.open("{\"clock_start\":\"2024-10-29T09:00:00+08:00\",\"max_request_bytes\":1024}")) {
            char[] pad = new char[2000];
            Arrays.fill(pad, 'x');
            String big = "{\"slot_id\":\"" + new String(pad) + "\"}";
            YilianInputException e = expect(YilianInputException.class, "REQUEST_TOO_LARGE", () -> small.call("slot-info", big));
            assertEquals(1004, e.getNumericCode());
        }
        // Past the default 1 MiB limit: also exercises the heap path of the string conversion.
        char[] pad = new char[(1 << 20) + 10];
        Arrays.fill(pad, '号');
        String huge = "{\"slot_id\":\"" + new String(pad) + "\"}";
        expect(YilianInputException.class, "REQUEST_TOO_LARGE", () -> engine.call("slot-info", huge));
    }

    @Test
    void wrongState() {
        Hold h = engine.hold(slot, "PAT001");
        engine.confirm(h.getBookingId());
        engine.confirm(h.getBookingId()); // core: confirming a booked booking is a no-op
        assertEquals(1, engine.availability(slot).getBooked());
        expect(YilianStateException.class, "INVALID_STATE", () -> engine.call("book-slot", "{\"booking_id\":\"B000001\"}"));
        engine.release(h.getBookingId());
        expect(YilianStateException.class, "ALREADY_CANCELLED", () -> engine.confirm(h.getBookingId()));
        YilianStateException e = assertThrows(YilianStateException.class, () -> engine.release(h.getBookingId()));
        assertEquals(4, e.getNumericCode() / 1000, e.getMessage());
        expect(YilianStateException.class, "REFUND_NOT_ALLOWED", () -> {
            Hold h2 = engine.hold(slot, "PAT002");
            engine.call("payment-status", "{\"booking_id\":\"" + Engine.formatBookingId(h2.getBookingId()) + "\",\"payment_status\":\"paid\"}");
            engine.call("payment-status", "{\"booking_id\":\"" + Engine.formatBookingId(h2.getBookingId()) + "\",\"payment_status\":\"refunded\"}");
        });
    }

    @Test
    void expiredHold() {
        JsonHold pre = JsonHold.preBook(engine, "PAT001");
        engine.call("advance-clock", "{\"seconds\":901}");
        expect(YilianStateException.class, "HOLD_EXPIRED",
                () -> engine.call("payment-status", "{\"booking_id\":\"" + pre.bookingId + "\",\"payment_status\":\"paid\"}"));
        expect(YilianStateException.class, "HOLD_EXPIRED", () -> engine.confirm(Engine.parseBookingId(pre.bookingId)));
    }

    @Test
    void advancingARealClockIsAStateError() {
        try (Engine real = Engine.open("{}")) {
            expect(YilianStateException.class, "INVALID_STATE", () -> real.call("advance-clock", "{\"seconds\":1}"));
        }
    }

    @Test
    void unpairedSurrogateIsABindingError() {
        YilianBindingException e = expect(YilianBindingException.class, "INVALID_UTF8", () -> engine.call("slot-info", "{\"slot_id\":\"\uD800\"}"));
        assertEquals(8002, e.getNumericCode());
        assertTrue(e.getMessage().contains("requestJson"), e.getMessage());
        expect(YilianBindingException.class, "INVALID_UTF8", () -> engine.hold(slot, "PAT\uDC00"));
    }

    /** A booking made through the command layer. */
    static final class JsonHold {
        final String bookingId;

        private JsonHold(String bookingId) {
            this.bookingId = bookingId;
        }

        static JsonHold preBook(Engine engine, String patient) {
            return new JsonHold(TestSupport.parse(engine.call("pre-book-slot", TestSupport.preBook(patient, "09:00-10:00"))).get("booking_id").asText());
        }
    }
}
