package io.qcow4j.tools;

import io.qcow4j.core.BlockDevice;
import java.nio.ByteBuffer;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * Convert's reads of the source, one batch ahead on a thread of their own, so that reading
 * batch k+1 (from an NBD server, say) overlaps writing batch k, as qemu-img overlaps its
 * reads and writes. Two direct buffers take turns; the source is read by that one thread
 * only (its other calls, block status, are made by the caller: every source serializes them).
 */
final class PrefetchReads implements AutoCloseable {
    /** Bytes read from the source at {@code offset}, position 0 to limit. */
    record Batch(long offset, ByteBuffer data) {
    }

    private final BlockDevice source;
    private final ByteBuffer[] buffers;
    private final ExecutorService reader = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "qcow4j-convert-read");
        t.setDaemon(true);
        return t;
    });
    private int next;
    private Future<Batch> pending;

    PrefetchReads(BlockDevice source, int capacity) {
        this.source = source;
        // direct: socket reads (an NBD source) and file writes go without a copy through a JDK buffer
        this.buffers = new ByteBuffer[] {ByteBuffer.allocateDirect(capacity), ByteBuffer.allocateDirect(capacity)};
    }

    int capacity() {
        return buffers[0].capacity();
    }

    /** Starts reading {@code [offset, offset + length)}; returns the batch asked for before it, once read (or null). */
    Batch submit(long offset, int length) {
        ByteBuffer buf = buffers[next];
        next ^= 1;
        Future<Batch> previous = pending;
        pending = reader.submit(() -> {
            buf.clear().limit(length);
            try {
                source.read(offset, buf);
            } catch (Exception e) {
                throw new CliException("error while reading at byte " + offset + ": " + Images.reason(e), 1, e);
            }
            return new Batch(offset, buf.flip());
        });
        return previous == null ? null : get(previous);
    }

    /** The last batch asked for, once read (or null when there is none). */
    Batch finish() {
        Future<Batch> last = pending;
        pending = null;
        return last == null ? null : get(last);
    }

    private static Batch get(Future<Batch> f) {
        try {
            return f.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof CliException c) {
                throw c;
            }
            throw new CliException("error while reading: " + Images.reason(e.getCause()), 1, e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CliException("interrupted", 1, e);
        }
    }

    /** Lets a read in progress end (never interrupted: that would close the source's channel), then stops the thread. */
    @Override
    public void close() {
        reader.shutdown();
        if (pending != null) {
            try {
                pending.get();
            } catch (ExecutionException | InterruptedException | RuntimeException e) {
                // the command failed already; this read's outcome no longer matters
            }
        }
    }
}
