package org.yilian;

/** 3xxx: the pool refuses: full, closed, not yet released, overlapping (SLOT_FULL, DUPLICATE_BOOKING, ...). */
public class YilianConflictException extends YilianException {
    private static final long serialVersionUID = 1L;

    public YilianConflictException(String code, int numericCode, String message, String messageZh) {
        super(code, numericCode, message, messageZh);
    }
}
