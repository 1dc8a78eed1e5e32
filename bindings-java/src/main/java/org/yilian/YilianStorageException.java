package org.yilian;

/** 7xxx: the durable store failed or is unavailable (STORAGE_ERROR, STORE_LOCKED, STORE_CORRUPT, ENGINE_CLOSED). */
public class YilianStorageException extends YilianException {
    private static final long serialVersionUID = 1L;

    public YilianStorageException(String code, int numericCode, String message, String messageZh) {
        super(code, numericCode, message, messageZh);
    }
}
