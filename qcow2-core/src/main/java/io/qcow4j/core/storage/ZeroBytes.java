package io.qcow4j.core.storage;

import java.nio.ByteBuffer;

/**
 * Zero detection on data read (convert's -S, backup's zero blocks): a compare with a buffer
 * of zeros, which the JDK's {@code mismatch} runs with vector instructions.
 */
public final class ZeroBytes {
    private static final ByteBuffer ZEROS = ByteBuffer.allocateDirect(64 << 10).asReadOnlyBuffer();

    private ZeroBytes() {
    }

    /** All bytes of {@code buf} between its position and limit are zero. */
    public static boolean isZero(ByteBuffer buf) {
        return isZero(buf, buf.position(), buf.limit());
    }

    /** All bytes of {@code buf} in {@code [from, to)} (absolute indexes) are zero. */
    public static boolean isZero(ByteBuffer buf, int from, int to) {
        for (int at = from; at < to; ) {
            int n = Math.min(to - at, ZEROS.capacity());
            if (buf.slice(at, n).mismatch(ZEROS.slice(0, n)) >= 0) {
                return false;
            }
            at += n;
        }
        return true;
    }
}
