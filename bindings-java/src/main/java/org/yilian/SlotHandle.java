package org.yilian;

/**
 * A slot resolved once by {@link Engine#slot(String)}: the typed hot path
 * passes an index, not a string. Valid only with the engine that made it.
 */
public final class SlotHandle {
    final Engine owner;
    final int index;
    private final String slotId;

    SlotHandle(Engine owner, int index, String slotId) {
        this.owner = owner;
        this.index = index;
        this.slotId = slotId;
    }

    public String getSlotId() {
        return slotId;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof SlotHandle)) {
            return false;
        }
        SlotHandle other = (SlotHandle) o;
        return other.owner == owner && other.index == index;
    }

    @Override
    public int hashCode() {
        return System.identityHashCode(owner) * 31 + index;
    }

    @Override
    public String toString() {
        return "SlotHandle[" + slotId + " #" + index + "]";
    }
}
