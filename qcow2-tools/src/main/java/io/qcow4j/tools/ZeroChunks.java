package io.qcow4j.tools;

import io.qcow4j.core.storage.ZeroBytes;
import java.nio.ByteBuffer;

/**
 * Finds the zero chunks of a batch convert read or mapped (on the reader thread): per chunk,
 * all zeros, or holding a zero piece of -S bytes. Apart from {@link ConvertCopy} with the
 * care a mapping needs (its pages are read in Java only where a fault becomes an
 * InternalError, never by ZeroBytes' vector stub), which the writes need not know.
 */
final class ZeroChunks {
    static final byte ZERO_CHUNK = 1;
    static final byte ZERO_PIECE = 2;

    private final ConvertCopy.Mode mode;
    private final int chunk;
    /** A zero-looking piece of a mapping is copied here to be judged (null: nothing mapped). */
    private final ByteBuffer scratch;

    ZeroChunks(ConvertCopy.Mode mode, int chunk, ByteBuffer scratch) {
        this.mode = mode;
        this.chunk = chunk;
        this.scratch = scratch;
    }

    byte[] classify(ByteBuffer buf, int len) {
        return classify(buf, len, false);
    }

    /** Per chunk: all zeros, or holding a zero piece of -S bytes (when -S is below the chunk size). */
    byte[] classify(ByteBuffer buf, int len, boolean mapped) {
        byte[] flags = new byte[(len + chunk - 1) / chunk];
        if (mode.sparseSize() == 0) {
            return flags;
        }
        boolean pieces = !mode.compress() && mode.targetReadsZero() && mode.sparseSize() < chunk;
        for (int k = 0; k < flags.length; k++) {
            int at = k * chunk;
            int n = Math.min(chunk, len - at);
            if (mapped ? mappedZero(buf, at, at + n) : isZero(buf.slice(at, n))) {
                flags[k] = ZERO_CHUNK;
            } else if (pieces && (mapped ? hasMappedZeroPiece(buf, at, n) : hasZeroPiece(buf.slice(at, n),
                    (int) mode.sparseSize()))) {
                flags[k] = ZERO_PIECE;
            }
        }
        return flags;
    }

    /**
     * Whether mapped bytes {@code [from, to)} are all zero: a look at their first word (data
     * is rarely zero there), then a copy judged by {@link ZeroBytes} (which must not run on
     * the mapping itself: its vector stub's fault is not caught by the JVM).
     */
    private boolean mappedZero(ByteBuffer m, int from, int to) {
        if (to - from >= Long.BYTES && m.getLong(from) != 0) {
            return false;
        }
        for (int at = from; at < to; ) {
            int n = Math.min(to - at, scratch.capacity());
            scratch.clear().put(0, m, at, n);
            if (!ZeroBytes.isZero(scratch, 0, n)) {
                return false;
            }
            at += n;
        }
        return true;
    }

    private boolean hasMappedZeroPiece(ByteBuffer m, int at, int n) {
        int piece = (int) mode.sparseSize();
        for (int p = 0; p < n; p += piece) {
            if (mappedZero(m, at + p, at + Math.min(n, p + piece))) {
                return true;
            }
        }
        return false;
    }

    private static boolean hasZeroPiece(ByteBuffer data, int piece) {
        for (int p = 0; p < data.limit(); p += piece) {
            if (isZero(data.slice(p, Math.min(piece, data.limit() - p)))) {
                return true;
            }
        }
        return false;
    }

    static boolean isZero(ByteBuffer buf) {
        return ZeroBytes.isZero(buf);
    }
}
