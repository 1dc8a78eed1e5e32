package org.yilian;

/**
 * The places of one slot at one moment. Immutable. Always
 * {@code capacity == booked + held + remaining}.
 */
public final class Availability {
    private final int capacity;
    private final int booked;
    private final int held;
    private final int remaining;
    private final int reservedQuota;
    private final int waiting;
    private final boolean tight;
    private final boolean closed;

    public Availability(int capacity, int booked, int held, int remaining, int reservedQuota, int waiting, boolean tight, boolean closed) {
        this.capacity = capacity;
        this.booked = booked;
        this.held = held;
        this.remaining = remaining;
        this.reservedQuota = reservedQuota;
        this.waiting = waiting;
        this.tight = tight;
        this.closed = closed;
    }

    public int getCapacity() {
        return capacity;
    }

    /** Confirmed bookings. */
    public int getBooked() {
        return booked;
    }

    /** Unconfirmed holds (and places set aside for waiters being promoted). */
    public int getHeld() {
        return held;
    }

    public int getRemaining() {
        return remaining;
    }

    /** Places still kept for referral and urgent classes. */
    public int getReservedQuota() {
        return reservedQuota;
    }

    /** Patients on the waitlist. */
    public int getWaiting() {
        return waiting;
    }

    /** 号源紧张: few places left; the screen should urge the patient to confirm. */
    public boolean isTight() {
        return tight;
    }

    /** Service stopped (停诊). */
    public boolean isClosed() {
        return closed;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof Availability)) {
            return false;
        }
        Availability a = (Availability) o;
        return a.capacity == capacity && a.booked == booked && a.held == held && a.remaining == remaining
                && a.reservedQuota == reservedQuota && a.waiting == waiting && a.tight == tight && a.closed == closed;
    }

    @Override
    public int hashCode() {
        int h = capacity;
        h = h * 31 + booked;
        h = h * 31 + held;
        h = h * 31 + remaining;
        h = h * 31 + reservedQuota;
        h = h * 31 + waiting;
        h = h * 31 + (tight ? 1 : 0);
        return h * 31 + (closed ? 1 : 0);
    }

    @Override
    public String toString() {
        return "Availability[capacity=" + capacity + ", booked=" + booked + ", held=" + held + ", remaining=" + remaining
                + ", reservedQuota=" + reservedQuota + ", waiting=" + waiting + ", tight=" + tight + ", closed=" + closed + "]";
    }
}
