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
 * {@link #getErrorCode()} gives the code as an {@link ErrorCode}, the enum of
 * every code generated from the core's table. Messages never contain personal data.
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
     * The code as an {@link ErrorCode} (generated from the core's table, so it
     * also gives the family and the generic messages), or null for a code newer
     * than this jar.
     */
    public ErrorCode getErrorCode() {
        ErrorCode c = ErrorCode.fromNumeric(numericCode);
        return c != null && c.name().equals(code) ? c : null;
    }

    /** The family (the thousands digit of the numeric code), or null for a family newer than this jar. */
    public ErrorCode.Family getFamily() {
        return ErrorCode.Family.fromNumeric(numericCode);
    }

    /**
     * The exception for an error code, of the subclass of its family. The
     * native library calls this to build what it throws, so the mapping from
     * families to classes lives here only.
     */
    static YilianException fromNative(String code, int numericCode, String message, String messageZh) {
        ErrorCode.Family family = ErrorCode.Family.fromNumeric(numericCode);
        if (family == null) {
            // A family newer than this jar: still typed, still carrying its code.
            return new YilianException(code, numericCode, message, messageZh);
        }
        switch (family) {
            case INPUT:
                return new YilianInputException(code, numericCode, message, messageZh);
            case NOT_FOUND:
                return new YilianNotFoundException(code, numericCode, message, messageZh);
            case CONFLICT:
                return new YilianConflictException(code, numericCode, message, messageZh);
            case STATE:
                return new YilianStateException(code, numericCode, message, messageZh);
            case PERMISSION:
                return new YilianPermissionException(code, numericCode, message, messageZh);
            case IDEMPOTENCY:
                return new YilianIdempotencyException(code, numericCode, message, messageZh);
            case STORAGE:
                return new YilianStorageException(code, numericCode, message, messageZh);
            case BINDING:
                return new YilianBindingException(code, numericCode, message, messageZh);
            case INTERNAL:
                return new YilianInternalError(code, numericCode, message, messageZh);
            default:
                return new YilianException(code, numericCode, message, messageZh);
        }
    }
}
