package io.qcow4j.core.api;

import java.io.IOException;

/**
 * An internal snapshot operation refused because of what the image is or holds (not a
 * caller mistake, not corruption). Thrown before anything on disk changed.
 */
public final class SnapshotException extends IOException {
    private static final long serialVersionUID = 1L;

    /** Why; each maps to the errno QEMU fails with in the same situation. */
    public enum Reason {
        /** No internal snapshots with an external data file; a v2 image cannot change size (ENOTSUP). */
        NOT_SUPPORTED,
        /** A refcount would pass the largest value refcount_bits can hold (EINVAL in QEMU). */
        REFCOUNT_OVERFLOW,
        /** 65536 snapshots already, or a snapshot table over 64 MiB (EFBIG). */
        TOO_MANY,
        /** Dirty bitmaps exist: QEMU does not switch the disk under them (EBUSY). */
        BITMAPS,
        /** The id QEMU's rule picks is taken (EEXIST). */
        ID_EXISTS
    }

    private final Reason reason;

    public SnapshotException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}
