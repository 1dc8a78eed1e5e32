package org.yilian;

/** 8xxx: an argument only the binding can judge, e.g. a string with an unpaired UTF-16 surrogate (INVALID_UTF8). */
public class YilianBindingException extends YilianException {
    private static final long serialVersionUID = 1L;

    public YilianBindingException(String code, int numericCode, String message, String messageZh) {
        super(code, numericCode, message, messageZh);
    }
}
