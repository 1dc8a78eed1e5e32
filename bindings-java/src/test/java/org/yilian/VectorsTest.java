package org.yilian;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.DynamicContainer;
import org.junit.jupiter.api.DynamicNode;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * The shared vectors (tests/vectors/*.json, rules in its README) through
 * {@link Engine#call}: one dynamic test per case, a fresh in-memory engine each.
 */
class VectorsTest {
    private static final AtomicInteger CASES_FOUND = new AtomicInteger();
    private static final AtomicInteger CASES_PASSED = new AtomicInteger();
    private static final AtomicInteger STEPS_PASSED = new AtomicInteger();
    private static final AtomicInteger FILES = new AtomicInteger();

    static Path vectorsDir() {
        return Paths.get(TestSupport.property("yilian.vectors.dir"));
    }

    static List<Path> vectorFiles() throws IOException {
        Path dir = vectorsDir();
        if (!Files.isDirectory(dir)) {
            throw new AssertionError("no vectors directory at " + dir.toAbsolutePath());
        }
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".json")).sorted().collect(Collectors.toList());
        }
    }

    @TestFactory
    Stream<DynamicNode> sharedVectors() throws IOException {
        List<Path> files = vectorFiles();
        if (files.isEmpty()) {
            throw new AssertionError("no vectors found in " + vectorsDir().toAbsolutePath());
        }
        List<DynamicNode> containers = new ArrayList<>();
        for (Path file : files) {
            JsonNode root = TestSupport.JSON.readTree(file.toFile());
            JsonNode cases = root.get("cases");
            if (cases == null || !cases.isArray() || cases.size() == 0) {
                throw new AssertionError(file + ": no cases");
            }
            FILES.incrementAndGet();
            List<DynamicTest> tests = new ArrayList<>();
            for (JsonNode c : cases) {
                CASES_FOUND.incrementAndGet();
                String name = c.path("name").asText("(unnamed)");
                tests.add(DynamicTest.dynamicTest(name, () -> {
                    int steps = runCase(root.get("config"), c);
                    CASES_PASSED.incrementAndGet();
                    STEPS_PASSED.addAndGet(steps);
                }));
            }
            containers.add(DynamicContainer.dynamicContainer(file.getFileName().toString(), tests));
        }
        return containers.stream();
    }

    @AfterAll
    static void everyCaseRan() {
        System.out.println("vectors: " + FILES.get() + " files, " + CASES_PASSED.get() + " cases, " + STEPS_PASSED.get() + " steps passed");
        assertTrue(CASES_FOUND.get() > 0, "no vector cases found");
        assertEquals(CASES_FOUND.get(), CASES_PASSED.get(), "not every vector case passed");
    }

    /** Runs one case; returns its number of steps. */
    static int runCase(JsonNode fileConfig, JsonNode c) {
        JsonNode config = c.has("config") ? c.get("config") : fileConfig != null ? fileConfig : TestSupport.object();
        JsonNode steps = c.get("steps");
        if (steps == null || !steps.isArray()) {
            fail("case has no steps");
        }
        try (Engine engine = Engine.open(config.toString())) {
            int i = 0;
            for (JsonNode step : steps) {
                runStep(engine, i++, step);
            }
        }
        return steps.size();
    }

    static void runStep(Engine engine, int i, JsonNode step) {
        String command = step.path("command").asText(null);
        if (command == null) {
            fail("step " + i + " has no command");
        }
        String request = step.has("request_text") ? step.get("request_text").asText()
                : step.has("request") ? step.get("request").toString() : "{}";
        String where = "step " + i + " (" + command + " " + abbreviate(request) + ")";
        String data;
        try {
            // A step may state who acts: then it goes through callAs.
            data = step.has("principal") ? engine.callAs(step.get("principal").toString(), command, request) : engine.call(command, request);
        } catch (YilianException e) {
            if (!step.has("expect_error")) {
                throw new AssertionError(where + ": expected success, got " + e.getClass().getSimpleName() + " " + e.getMessage(), e);
            }
            String mismatch = contains(step.get("expect_error"), envelope(e), "");
            if (mismatch != null) {
                fail(where + ": " + mismatch + "; got " + e.getMessage());
            }
            return;
        }
        if (step.has("expect_error")) {
            fail(where + ": expected error " + step.get("expect_error") + ", got success " + abbreviate(data));
        }
        if (step.has("expect")) {
            String mismatch = contains(step.get("expect"), TestSupport.parse(data), "data");
            if (mismatch != null) {
                fail(where + ": " + mismatch + "; data " + abbreviate(data));
            }
        }
    }

    /** The error envelope the exception stands for (the command layer's shape). */
    static JsonNode envelope(YilianException e) {
        ObjectNode env = TestSupport.object();
        env.put("status", "error");
        env.put("code", e.getCode());
        env.put("numeric_code", e.getNumericCode());
        String prefix = e.getCode() + "(" + e.getNumericCode() + "): ";
        env.put("message", e.getMessage().startsWith(prefix) ? e.getMessage().substring(prefix.length()) : e.getMessage());
        env.put("message_zh", e.getMessageZh());
        return env;
    }

    /**
     * Null if {@code actual} contains {@code expected} by the README's rules
     * (objects key by key, arrays element by element with equal lengths,
     * numbers by value), else what differs.
     */
    static String contains(JsonNode expected, JsonNode actual, String path) {
        if (expected.isObject()) {
            if (!actual.isObject()) {
                return path + ": expected an object, got " + actual;
            }
            for (Map.Entry<String, JsonNode> f : expected.properties()) {
                JsonNode a = actual.get(f.getKey());
                if (a == null) {
                    return path + "." + f.getKey() + ": missing";
                }
                String m = contains(f.getValue(), a, path + "." + f.getKey());
                if (m != null) {
                    return m;
                }
            }
            return null;
        }
        if (expected.isArray()) {
            if (!actual.isArray()) {
                return path + ": expected an array, got " + actual;
            }
            if (expected.size() != actual.size()) {
                return path + ": expected " + expected.size() + " elements, got " + actual.size();
            }
            for (int i = 0; i < expected.size(); i++) {
                String m = contains(expected.get(i), actual.get(i), path + "[" + i + "]");
                if (m != null) {
                    return m;
                }
            }
            return null;
        }
        if (expected.isNumber() && actual.isNumber()) {
            // As the Rust runner: compare as f64, so 1 equals 1.0.
            return expected.asDouble() == actual.asDouble() ? null : path + ": expected " + expected + ", got " + actual;
        }
        return expected.equals(actual) ? null : path + ": expected " + expected + ", got " + actual;
    }

    private static String abbreviate(String s) {
        return s.length() <= 200 ? s : s.substring(0, 200) + "…";
    }

    // The matcher is the runner's judge: prove it can say no.
    @Test
    void matcherFollowsTheReadmeRules() {
        JsonNode actual = TestSupport.parse("{\"a\":1,\"b\":[1,{\"c\":\"x\",\"d\":true}],\"e\":null,\"f\":2.5}");
        assertEquals(null, contains(TestSupport.parse("{\"a\":1.0,\"b\":[1,{\"c\":\"x\"}]}"), actual, "data"));
        assertEquals(null, contains(TestSupport.parse("{\"e\":null,\"f\":2.5}"), actual, "data"));
        assertEquals("data.a: expected 2, got 1", contains(TestSupport.parse("{\"a\":2}"), actual, "data"));
        assertEquals("data.z: missing", contains(TestSupport.parse("{\"z\":1}"), actual, "data"));
        assertEquals("data.b: expected 1 elements, got 2", contains(TestSupport.parse("{\"b\":[1]}"), actual, "data"));
        assertEquals("data.b[1].d: expected false, got true", contains(TestSupport.parse("{\"b\":[1,{\"d\":false}]}"), actual, "data"));
        assertEquals("data.a: expected \"1\", got 1", contains(TestSupport.parse("{\"a\":\"1\"}"), actual, "data"));
    }
}
