// Release day (放号日): many clinics book the county hospital's exam slots at once.
// Java 8 source; needs only the yilian jar:
//   javac --release 8 -cp yilian-0.1.0.jar -d out examples/java/ReleaseDay.java
//   java -cp yilian-0.1.0.jar:out ReleaseDay
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.yilian.Availability;
import org.yilian.Engine;
import org.yilian.Hold;
import org.yilian.SlotHandle;
import org.yilian.YilianConflictException;
import org.yilian.YilianException;
import org.yilian.YilianInputException;

public class ReleaseDay {
    static final int THREADS = 8;
    static final int PATIENTS_PER_THREAD = 150;
    static final String[] WINDOWS = {"09:00-10:00", "10:00-11:00", "14:00-15:00"};
    static final Pattern BOOKING_ID = Pattern.compile("\"booking_id\":\"(B\\d+)\"");

    public static void main(String[] args) throws Exception {
        System.out.println("yilian " + Engine.version());
        // The clock starts the day before the exams, when the slots are open for booking.
        try (Engine engine = Engine.open("{\"clock_start\":\"2024-10-29T09:00:00+08:00\"}")) {
            engine.call("sync-schedule", "{\"hospital_id\":\"H001\",\"schedule_data\":[{\"device_id\":\"DEV001\",\"project_id\":\"P001\","
                    + "\"date\":\"2024-10-30\",\"capacity\":20,\"available_slots\":[{\"start_time\":\"09:00\",\"end_time\":\"10:00\"},"
                    + "{\"start_time\":\"10:00\",\"end_time\":\"11:00\"},{\"start_time\":\"14:00\",\"end_time\":\"15:00\"}]}]}");

            try {
                engine.call("pre-book-slot", "{\"patient_id\": ");
            } catch (YilianInputException e) {
                System.out.println("bad input is typed: " + e.getClass().getSimpleName() + " " + e.getCode() + " / " + e.getMessageZh());
            }

            // The typed hot path: a slot resolved once, then hold and confirm without JSON.
            SlotHandle first = engine.slot("EX-H001-DEV001-20241030-09001000");
            Hold walkIn = engine.hold(first, "WALK-IN-1");
            engine.confirm(walkIn.getBookingId());
            System.out.println("walk-in " + walkIn + " = " + Engine.formatBookingId(walkIn.getBookingId()) + ", now " + engine.availability(first));

            final AtomicInteger paid = new AtomicInteger();
            final AtomicInteger cancelled = new AtomicInteger();
            final AtomicInteger full = new AtomicInteger();
            ExecutorService pool = Executors.newFixedThreadPool(THREADS);
            List<Future<?>> clinics = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                final int clinic = t;
                clinics.add(pool.submit(() -> {
                    Random rnd = new Random(clinic);
                    for (int i = 0; i < PATIENTS_PER_THREAD; i++) {
                        String patient = "C" + clinic + "-PAT" + i;
                        String window = WINDOWS[rnd.nextInt(WINDOWS.length)];
                        try {
                            // Command layer, as a HIS sends it: pre-book (预约), then pay or cancel.
                            String data = engine.call("pre-book-slot", "{\"patient_id\":\"" + patient + "\",\"project_id\":\"P001\",\"date\":\"2024-10-30\","
                                    + "\"time_slot\":\"" + window + "\",\"device_id\":\"DEV001\",\"clinic_id\":\"C00" + clinic + "\"}");
                            Matcher m = BOOKING_ID.matcher(data);
                            if (!m.find()) {
                                throw new IllegalStateException("no booking_id in " + data);
                            }
                            if (rnd.nextInt(10) < 7) {
                                engine.call("payment-status", "{\"booking_id\":\"" + m.group(1) + "\",\"payment_status\":\"paid\"}");
                                paid.incrementAndGet();
                            } else {
                                engine.call("cancel-slot", "{\"booking_id\":\"" + m.group(1) + "\"}");
                                cancelled.incrementAndGet();
                            }
                        } catch (YilianConflictException e) {
                            full.incrementAndGet(); // SLOT_FULL: the pool said no, nobody was overbooked
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : clinics) {
                f.get(5, TimeUnit.MINUTES);
            }
            pool.shutdown();

            int overbooked = 0;
            for (String window : WINDOWS) {
                String slotId = "EX-H001-DEV001-20241030-" + window.replace(":", "").replace("-", "");
                Availability a = engine.availability(engine.slot(slotId));
                System.out.println(slotId + " " + a);
                if (a.getBooked() + a.getHeld() > a.getCapacity()) {
                    overbooked++;
                }
            }
            engine.checkInvariants();
            System.out.println("paid " + paid + ", cancelled " + cancelled + ", refused (full) " + full + ", overbooked slots " + overbooked);
            if (overbooked != 0 || paid.get() == 0 || full.get() == 0) {
                System.exit(1);
            }
        } catch (YilianException e) {
            System.err.println("yilian error " + e.getCode() + ": " + e.getMessage() + " / " + e.getMessageZh());
            System.exit(2);
        }
    }
}
