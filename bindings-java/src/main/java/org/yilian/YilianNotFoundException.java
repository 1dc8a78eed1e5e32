package org.yilian;

/** 2xxx: something named in the request does not exist (SLOT_NOT_FOUND, BOOKING_NOT_FOUND, ...). */
public class YilianNotFoundException extends YilianException {
    private static final long serialVersionUID = 1L;

    public YilianNotFoundException(String code, int numericCode, String message, String messageZh) {
        super(code, numericCode, message, messageZh);
    }
}
