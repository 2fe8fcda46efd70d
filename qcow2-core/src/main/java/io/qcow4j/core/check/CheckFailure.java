package io.qcow4j.core.check;

/**
 * The check cannot go on (qemu's negative return code): carries the strerror text that
 * qemu-img prints after "Check failed: ".
 */
final class CheckFailure extends Exception {
    private static final long serialVersionUID = 1L;
    static final String EIO = "Input/output error";
    static final String EINVAL = "Invalid argument";
    static final String EFBIG = "File too large";
    static final String ENOMEM = "Cannot allocate memory";

    CheckFailure(String strerror) {
        super(strerror, null, false, false);
    }

    String strerror() {
        return getMessage();
    }
}
