package org.yilian;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

/** The typed hot path and its value classes, and how they meet the command layer. */
class TypedApiTest extends EngineFixture {
    /** 2024-10-29T09:15:00+08:00: clock_start plus the default 900 s hold time-to-live. */
    static final long EXPIRES_0915 = 1730164500000L;

    TypedApiTest() {
        super(2);
    }

    @Test
    void versionAndCommands() {
        assertEquals(NativeLoader.jarVersion(), Engine.version());
        assertTrue(Engine.commands().contains("pre-book-slot"), Engine.commands().toString());
        assertThrows(UnsupportedOperationException.class, () -> Engine.commands().add("x"));
    }

    @Test
    void holdConfirmRelease() {
        assertEquals(new Availability(2, 0, 0, 2, 0, 0, true, false), engine.availability(slot));
        Hold hold = engine.hold(slot, "PAT001");
        assertEquals(1, hold.getBookingId());
        assertEquals(EXPIRES_0915, hold.getExpiresMs());
        Availability a = engine.availability(slot);
        assertEquals(1, a.getHeld());
        assertEquals(1, a.getRemaining());
        engine.confirm(hold.getBookingId());
        a = engine.availability(slot);
        assertEquals(1, a.getBooked());
        assertEquals(0, a.getHeld());
        engine.release(hold.getBookingId());
        assertEquals(2, engine.availability(slot).getRemaining());
        engine.checkInvariants();
    }

    @Test
    void fullSlotAndDuplicateAreConflicts() {
        engine.hold(slot, "PAT001");
        YilianConflictException dup = assertThrows(YilianConflictException.class, () -> engine.hold(slot, "PAT001"));
        assertEquals("DUPLICATE_BOOKING", dup.getCode());
        engine.hold(slot, "PAT002");
        YilianConflictException full = assertThrows(YilianConflictException.class, () -> engine.hold(slot, "PAT003"));
        assertEquals("SLOT_FULL", full.getCode());
        assertEquals(3001, full.getNumericCode());
        assertTrue(full.getMessageZh().startsWith("号源已满"), full.getMessageZh());
        Availability a = engine.availability(slot);
        assertEquals(0, a.getRemaining());
        assertEquals(a.getCapacity(), a.getBooked() + a.getHeld() + a.getRemaining());
    }

    @Test
    void requestIdMakesHoldIdempotent() {
        Hold first = engine.hold(slot, "PAT001", "REQ-1", "C001", null);
        Hold again = engine.hold(slot, "PAT001", "REQ-1", "C001", null);
        assertEquals(first, again);
        assertEquals(first.hashCode(), again.hashCode());
        assertEquals(1, engine.availability(slot).getHeld());
        YilianIdempotencyException e = assertThrows(YilianIdempotencyException.class, () -> engine.hold(slot, "PAT002", "REQ-1", null, null));
        assertEquals("IDEMPOTENCY_CONFLICT", e.getCode());
        engine.confirm(first.getBookingId(), "REQ-2");
        engine.confirm(first.getBookingId(), "REQ-2"); // replayed, not INVALID_STATE
        engine.release(first.getBookingId(), "REQ-3");
        engine.release(first.getBookingId(), "REQ-3");
    }

    @Test
    void priorityIsParsedByCore() {
        Hold h = engine.hold(slot, "PAT001", null, null, "referral");
        JsonNode booking = TestSupport.parse(engine.call("booking-info", "{\"booking_id\":\"" + Engine.formatBookingId(h.getBookingId()) + "\"}"));
        assertEquals("referral", booking.get("priority").asText());
        YilianInputException e = assertThrows(YilianInputException.class, () -> engine.hold(slot, "PAT002", null, null, "vip"));
        assertEquals("INVALID_FIELD", e.getCode());
    }

    @Test
    void typedAndCommandLayersShareBookings() {
        Hold h = engine.hold(slot, "PAT001");
        String id = Engine.formatBookingId(h.getBookingId());
        assertEquals("B000001", id);
        JsonNode info = TestSupport.parse(engine.call("booking-info", "{\"booking_id\":\"" + id + "\"}"));
        assertEquals("pre-booked", info.get("status").asText());
        assertEquals(TestSupport.SLOT_0900, info.get("slot_id").asText());

        JsonNode pre = TestSupport.parse(engine.call("pre-book-slot", TestSupport.preBook("PAT002", "09:00-10:00")));
        long typed = Engine.parseBookingId(pre.get("booking_id").asText());
        assertEquals(2, typed);
        assertEquals(1, Engine.parseBookingId("B1"));
        engine.confirm(typed);
        info = TestSupport.parse(engine.call("booking-info", "{\"booking_id\":\"B000002\"}"));
        assertEquals("booked", info.get("status").asText());
    }

    @Test
    void expiredHoldCannotBeConfirmed() {
        Hold h = engine.hold(slot, "PAT001");
        engine.call("advance-clock", "{\"seconds\":901}");
        YilianStateException e = assertThrows(YilianStateException.class, () -> engine.confirm(h.getBookingId()));
        assertEquals("HOLD_EXPIRED", e.getCode());
        assertEquals(4002, e.getNumericCode());
        assertEquals(2, engine.availability(slot).getRemaining());
    }

    @Test
    void unicodeRoundTrips() {
        // CJK and a supplementary character (U+20BB7) cross as UTF-16 in and modified UTF-8 out.
        String patient = "患者\uD842\uDFB7甲";
        JsonNode pre = TestSupport.parse(engine.call("pre-book-slot", TestSupport.preBook(patient, "09:00-10:00")));
        JsonNode info = TestSupport.parse(engine.call("booking-info", "{\"booking_id\":\"" + pre.get("booking_id").asText() + "\"}"));
        assertEquals(patient, info.get("patient_id").asText());
        Hold h = engine.hold(engine.slot(TestSupport.SLOT_1000), "病人\uD83D\uDE00");
        assertTrue(h.getBookingId() > 0);
    }

    @Test
    void slotHandlesBelongToTheirEngine() {
        try (Engine other = TestSupport.openManual()) {
            other.call("sync-schedule", TestSupport.schedule(2, 2));
            SlotHandle foreign = other.slot(TestSupport.SLOT_0900);
            assertEquals(foreign.getSlotId(), slot.getSlotId());
            assertNotEquals(foreign, slot);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> engine.hold(foreign, "PAT001"));
            assertTrue(e.getMessage().contains(TestSupport.SLOT_0900), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> engine.availability(foreign));
        }
        assertEquals(slot, engine.slot(TestSupport.SLOT_0900));
        assertEquals(slot.hashCode(), engine.slot(TestSupport.SLOT_0900).hashCode());
        assertNotEquals(slot, engine.slot(TestSupport.SLOT_1000));
    }

    @Test
    void valueClassesPrintTheirFields() {
        assertEquals("Hold[bookingId=7, expiresMs=42]", new Hold(7, 42).toString());
        assertEquals("Availability[capacity=5, booked=1, held=2, remaining=2, reservedQuota=1, waiting=3, tight=true, closed=false]",
                new Availability(5, 1, 2, 2, 1, 3, true, false).toString());
        assertEquals("SlotHandle[" + TestSupport.SLOT_0900 + " #0]", slot.toString());
        assertEquals("Engine[open]", engine.toString());
        assertNotEquals(new Availability(5, 1, 2, 2, 1, 3, true, false), new Availability(5, 1, 2, 2, 1, 3, true, true));
    }
}
