package org.yilian;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

/** Per test: a manual-clock engine synced with two hours of {@code capacity} places, and the 09:00 slot. */
abstract class EngineFixture {
    private final int capacity;
    Engine engine;
    SlotHandle slot;

    EngineFixture(int capacity) {
        this.capacity = capacity;
    }

    @BeforeEach
    void open() {
        engine = TestSupport.openManual();
        engine.call("sync-schedule", TestSupport.schedule(capacity, 2));
        slot = engine.slot(TestSupport.SLOT_0900);
    }

    @AfterEach
    void close() {
        engine.close();
    }
}
