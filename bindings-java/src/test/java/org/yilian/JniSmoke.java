package org.yilian;

import java.util.ArrayList;
import java.util.List;

/**
 * Child-JVM main for {@link NativeLoaderTest#noJniWarnings}: runs every native
 * method, success and failure paths, under {@code -Xcheck:jni}, whose warnings
 * (local reference overflow, calls with an exception pending, ...) go to the
 * JVM's own output where surefire cannot fail on them, but this test can.
 */
public final class JniSmoke {
    private JniSmoke() {}

    public static void main(String[] args) throws Exception {
        for (int round = 0; round < 3; round++) {
            List<String> commands = Engine.commands();
            String[] codes = NativeMethods.errorCodes();
            if (commands.isEmpty() || codes.length == 0) {
                throw new AssertionError("empty lists");
            }
            Engine.parseBookingId(Engine.formatBookingId(7));
            try (Engine e = Engine.open("{\"clock_start\":\"2024-10-29T09:00:00+08:00\",\"clock\":\"manual\"}")) {
                e.call("sync-schedule", TestSupport.schedule(3, 2));
                SlotHandle s = e.slot(TestSupport.SLOT_0900);
                Hold h = e.hold(s, "PAT001", "R1", "C001", "referral");
                e.confirm(h.getBookingId(), "R2");
                e.release(h.getBookingId(), "R3");
                e.availability(s);
                e.checkInvariants();
                e.call("pre-book-slot", TestSupport.preBook("患者\uD842\uDFB7", "09:00-10:00"));
                List<Runnable> failing = new ArrayList<>();
                failing.add(() -> e.call("nope", "{}"));
                failing.add(() -> e.call("slot-info", "{bad"));
                failing.add(() -> e.call(null, "{}"));
                failing.add(() -> e.call("slot-info", "{\"slot_id\":\"\uD800\"}"));
                failing.add(() -> e.slot("EX-NOPE"));
                failing.add(() -> e.hold(s, null));
                failing.add(() -> e.hold(s, "PAT009", null, null, "vip"));
                failing.add(() -> e.confirm(-1));
                failing.add(() -> e.release(99999));
                failing.add(() -> Engine.open("{bad"));
                failing.add(() -> Engine.parseBookingId("x"));
                failing.add(() -> TestHooks.panicForTest(0));
                failing.add(() -> TestHooks.panicForTest(2));
                failing.add(() -> TestHooks.panicForTest(4));
                for (Runnable r : failing) {
                    try {
                        r.run();
                        throw new AssertionError("no exception");
                    } catch (YilianException | NullPointerException expected) {
                        // the point is what -Xcheck:jni says while throwing
                    }
                }
            }
        }
        System.out.println("smoke ok");
    }
}
