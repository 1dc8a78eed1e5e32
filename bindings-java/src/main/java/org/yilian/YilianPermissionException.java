package org.yilian;

/** 5xxx: this institution may not act on that object (FORBIDDEN). */
public class YilianPermissionException extends YilianException {
    private static final long serialVersionUID = 1L;

    public YilianPermissionException(String code, int numericCode, String message, String messageZh) {
        super(code, numericCode, message, messageZh);
    }
}
