package org.yilian;

/**
 * A failure reported by the yilian library: unchecked, with the library's
 * stable string code ({@code SLOT_FULL}), its numeric code (3001, grouped by
 * family in thousands and never renumbered) and messages in English and Chinese.
 *
 * <p>Each family has a subclass, so callers can catch what they handle:
 * {@link YilianInputException} (1xxx), {@link YilianNotFoundException} (2xxx),
 * {@link YilianConflictException} (3xxx), {@link YilianStateException} (4xxx),
 * {@link YilianPermissionException} (5xxx), {@link YilianIdempotencyException}
 * (6xxx), {@link YilianStorageException} (7xxx), {@link YilianBindingException}
 * (8xxx) and {@link YilianInternalError} (9xxx, including a caught panic).
 * Messages never contain personal data.
 */
public class YilianException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final String code;
    private final int numericCode;
    private final String messageZh;

    public YilianException(String code, int numericCode, String message, String messageZh) {
        super(code + "(" + numericCode + "): " + message);
        this.code = code;
        this.numericCode = numericCode;
        this.messageZh = messageZh;
    }

    /** The stable string code, e.g. {@code "SLOT_FULL"}. */
    public String getCode() {
        return code;
    }

    /** The stable numeric code, e.g. 3001; its thousands digit is the family. */
    public int getNumericCode() {
        return numericCode;
    }

    /** The message in Chinese (the English one is {@link #getMessage()}). */
    public String getMessageZh() {
        return messageZh;
    }

    /**
     * The exception for an error code, of the subclass of its family. The
     * native library calls this to build what it throws, so the mapping from
     * families to classes lives here only.
     */
    static YilianException fromNative(String code, int numericCode, String message, String messageZh) {
        switch (numericCode / 1000) {
            case 1:
                return new YilianInputException(code, numericCode, message, messageZh);
            case 2:
                return new YilianNotFoundException(code, numericCode, message, messageZh);
            case 3:
                return new YilianConflictException(code, numericCode, message, messageZh);
            case 4:
                return new YilianStateException(code, numericCode, message, messageZh);
            case 5:
                return new YilianPermissionException(code, numericCode, message, messageZh);
            case 6:
                return new YilianIdempotencyException(code, numericCode, message, messageZh);
            case 7:
                return new YilianStorageException(code, numericCode, message, messageZh);
            case 8:
                return new YilianBindingException(code, numericCode, message, messageZh);
            case 9:
                return new YilianInternalError(code, numericCode, message, messageZh);
            default:
                // A family newer than this jar: still typed, still carrying its code.
                return new YilianException(code, numericCode, message, messageZh);
        }
    }
}
