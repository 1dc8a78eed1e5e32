package org.yilian;

/** 6xxx: request-id problems (IDEMPOTENCY_CONFLICT, REQUEST_IN_PROGRESS). */
public class YilianIdempotencyException extends YilianException {
    private static final long serialVersionUID = 1L;

    public YilianIdempotencyException(String code, int numericCode, String message, String messageZh) {
        super(code, numericCode, message, messageZh);
    }
}
