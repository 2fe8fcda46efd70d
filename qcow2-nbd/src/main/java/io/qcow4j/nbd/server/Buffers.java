package io.qcow4j.nbd.server;

import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Direct buffers for request payloads and read data, kept for reuse: allocating (and later
 * freeing) a direct buffer per request would cost more than the copy it serves. Sizes are
 * powers of two from 4 KiB; at most {@link #RETAINED} bytes stay pooled.
 */
final class Buffers {
    private static final int MIN_SHIFT = 12;
    private static final int MAX_SHIFT = 26;
    private static final long RETAINED = 256L << 20;
    @SuppressWarnings("unchecked")
    private final ConcurrentLinkedDeque<ByteBuffer>[] free = new ConcurrentLinkedDeque[MAX_SHIFT + 1];
    private final AtomicLong pooled = new AtomicLong();

    Buffers() {
        for (int i = MIN_SHIFT; i <= MAX_SHIFT; i++) {
            free[i] = new ConcurrentLinkedDeque<>();
        }
    }

    /** A cleared buffer with at least {@code size} bytes, limited to {@code size}. */
    ByteBuffer take(int size) {
        int shift = shift(size);
        if (shift > MAX_SHIFT) {
            return ByteBuffer.allocateDirect(size);
        }
        ByteBuffer b = free[shift].pollFirst();
        if (b == null) {
            b = ByteBuffer.allocateDirect(1 << shift);
        } else {
            pooled.addAndGet(-b.capacity());
        }
        return b.clear().limit(size);
    }

    void give(ByteBuffer b) {
        if (b == null) {
            return;
        }
        int shift = Integer.numberOfTrailingZeros(b.capacity());
        if (Integer.bitCount(b.capacity()) != 1 || shift < MIN_SHIFT || shift > MAX_SHIFT) {
            return;
        }
        if (pooled.addAndGet(b.capacity()) > RETAINED) {
            pooled.addAndGet(-b.capacity());
            return; // the garbage collector frees it
        }
        free[shift].offerFirst(b);
    }

    private static int shift(int size) {
        return Math.max(MIN_SHIFT, 32 - Integer.numberOfLeadingZeros(Math.max(1, size) - 1));
    }
}
