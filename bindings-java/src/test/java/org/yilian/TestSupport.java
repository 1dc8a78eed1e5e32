package org.yilian;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Shared fixtures: configs, the schedule of the "handy sequence", JSON helpers, child JVMs. */
final class TestSupport {
    static final ObjectMapper JSON = new ObjectMapper();

    static final String CLOCK = "{\"clock_start\":\"2024-10-29T09:00:00+08:00\",\"clock\":\"manual\"}";
    static final String SLOT_0900 = "EX-H001-DEV001-20241030-09001000";
    static final String SLOT_1000 = "EX-H001-DEV001-20241030-10001100";

    private TestSupport() {}

    static Engine openManual() {
        return Engine.open(CLOCK);
    }

    /** One device, the given hour windows starting 09:00, {@code capacity} places each. */
    static String schedule(int capacity, int hours) {
        StringBuilder slots = new StringBuilder();
        for (int h = 0; h < hours; h++) {
            if (h > 0) {
                slots.append(',');
            }
            slots.append(String.format("{\"start_time\":\"%02d:00\",\"end_time\":\"%02d:00\"}", 9 + h, 10 + h));
        }
        return "{\"hospital_id\":\"H001\",\"schedule_data\":[{\"device_id\":\"DEV001\",\"project_id\":\"P001\",\"date\":\"2024-10-30\",\"capacity\":"
                + capacity + ",\"available_slots\":[" + slots + "]}]}";
    }

    static String slotId(int hourIndex) {
        return String.format("EX-H001-DEV001-20241030-%02d00%02d00", 9 + hourIndex, 10 + hourIndex);
    }

    static String preBook(String patient, String timeSlot) {
        return "{\"patient_id\":\"" + patient + "\",\"project_id\":\"P001\",\"date\":\"2024-10-30\",\"time_slot\":\"" + timeSlot
                + "\",\"device_id\":\"DEV001\",\"clinic_id\":\"C001\"}";
    }

    static JsonNode parse(String json) {
        try {
            return JSON.readTree(json);
        } catch (IOException e) {
            throw new AssertionError("not JSON: " + json, e);
        }
    }

    static ObjectNode object() {
        return JSON.createObjectNode();
    }

    /** The classpath of the code under test (target/classes, target/test-classes), as surefire passes it. */
    static String testClasspath() {
        return property("yilian.test.classes") + java.io.File.pathSeparator + property("yilian.test.test-classes");
    }

    static String property(String name) {
        String v = System.getProperty(name);
        if (v == null || v.isEmpty()) {
            throw new AssertionError("system property " + name + " is not set (run the tests through Maven)");
        }
        return v;
    }

    static Path javaBinary() {
        return Paths.get(System.getProperty("java.home"), "bin", "java");
    }

    /** Output and exit code of a child JVM. */
    static final class Child {
        final int exit;
        final String output;

        Child(int exit, String output) {
            this.exit = exit;
            this.output = output;
        }

        @Override
        public String toString() {
            return "exit " + exit + ":\n" + output;
        }
    }

    /** Runs a child JVM (stdout and stderr merged), killing it after 60 s. */
    static Child runJava(List<String> jvmArgs, String classpath, String mainClass, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(javaBinary().toString());
        cmd.addAll(jvmArgs);
        cmd.add("-cp");
        cmd.add(classpath);
        cmd.add(mainClass);
        for (String a : args) {
            cmd.add(a);
        }
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().remove("LD_LIBRARY_PATH");
        Process p = pb.start();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (InputStream in = p.getInputStream()) {
            byte[] buf = new byte[8192];
            for (int n; (n = in.read(buf)) > 0; ) {
                out.write(buf, 0, n);
            }
        }
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("child JVM timed out: " + cmd);
        }
        return new Child(p.exitValue(), new String(out.toByteArray(), StandardCharsets.UTF_8));
    }
}
