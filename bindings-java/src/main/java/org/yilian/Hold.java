package org.yilian;

/** A hold on one place (预占): confirm (or pay) before {@link #getExpiresMs()}. Immutable. */
public final class Hold {
    private final long bookingId;
    private final long expiresMs;

    public Hold(long bookingId, long expiresMs) {
        this.bookingId = bookingId;
        this.expiresMs = expiresMs;
    }

    /** The typed booking id (the command layer writes it {@code B000001}: {@link Engine#formatBookingId}). */
    public long getBookingId() {
        return bookingId;
    }

    /** When the hold expires, UTC milliseconds since the epoch (the engine's clock). */
    public long getExpiresMs() {
        return expiresMs;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof Hold)) {
            return false;
        }
        Hold h = (Hold) o;
        return h.bookingId == bookingId && h.expiresMs == expiresMs;
    }

    @Override
    public int hashCode() {
        return Long.hashCode(bookingId) * 31 + Long.hashCode(expiresMs);
    }

    @Override
    public String toString() {
        return "Hold[bookingId=" + bookingId + ", expiresMs=" + expiresMs + "]";
    }
}
