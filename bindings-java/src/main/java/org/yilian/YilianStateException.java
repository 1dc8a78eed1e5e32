package org.yilian;

/** 4xxx: the booking is in a state that does not allow the step (INVALID_STATE, HOLD_EXPIRED, ...). */
public class YilianStateException extends YilianException {
    private static final long serialVersionUID = 1L;

    public YilianStateException(String code, int numericCode, String message, String messageZh) {
        super(code, numericCode, message, messageZh);
    }
}
