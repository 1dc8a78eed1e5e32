package org.yilian;

/** 1xxx: the request itself is malformed (INVALID_JSON, MISSING_FIELD, INVALID_FIELD, REQUEST_TOO_LARGE, UNKNOWN_COMMAND, INVALID_CONFIG, ...). */
public class YilianInputException extends YilianException {
    private static final long serialVersionUID = 1L;

    public YilianInputException(String code, int numericCode, String message, String messageZh) {
        super(code, numericCode, message, messageZh);
    }
}
