package io.qcow4j.tools;

import io.qcow4j.core.api.FileImage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Convert's source batches read in place: a raw source in a regular file, or a qcow2
 * source's batch lying in one run of data clusters, is mapped read-only and the target is
 * written straight from the page cache's pages (one copy, in the kernel, instead of a read
 * and a write). This class maps a batch, finds its zero chunks on the mapping where a fault
 * is an exception, says a source file cut short while being read as one error line, and
 * unmaps the batches written, on the reader thread (munmap's page-table walk and TLB flush
 * off the writing thread).
 */
final class MappedBatches implements AutoCloseable {
    /** A batch's bytes mapped, and the end of those bytes in the source's file. */
    record Mapping(ByteBuffer bytes, long fileEnd) {
    }

    private final MappedWindow window;
    private final FileImage source;
    /** The target's cluster size, or 0 for a raw target: a part of a cluster is copied by the engine, in Java. */
    private final int targetCluster;
    /** Mapped batches the writes are done with, to unmap (on the reader thread, or at the end). */
    private final ConcurrentLinkedQueue<ByteBuffer> written = new ConcurrentLinkedQueue<>();

    private MappedBatches(MappedWindow window, FileImage source, int targetCluster) {
        this.window = window;
        this.source = source;
        this.targetCluster = targetCluster;
    }

    /** The source's file ready to be mapped a batch at a time, or null (not a regular file). */
    static MappedBatches of(FileImage source, int targetCluster) {
        MappedWindow window = MappedWindow.ofFile(source);
        return window == null ? null : new MappedBatches(window, source, targetCluster);
    }

    /**
     * The batch {@code [offset, offset + length)} of the disk mapped, or null when it does not
     * lie in one run of the file now, or is a part of the target's cluster (read as usual).
     */
    Mapping map(long offset, int length) {
        if (targetCluster > 0 && length % targetCluster != 0) {
            return null;
        }
        try {
            long host = source.hostRun(offset, length); // a raw image: the offset itself
            if (host < 0) {
                return null;
            }
            ByteBuffer m = window.mapOwn(host, length);
            return m == null ? null : new Mapping(m, host + length);
        } catch (IOException | RuntimeException e) {
            return null; // the ordinary read says what is wrong, if anything
        }
    }

    /**
     * {@link ZeroChunks#classify} on a mapping, or null when a chunk has zero pieces (written piece by
     * piece, which reads them in Java on the writing thread: the batch is read as usual).
     * The file's length is checked after: pages cut off meanwhile read as anything.
     */
    byte[] classify(ZeroChunks zeroChunks, Mapping m, long offset, int length) {
        byte[] flags;
        try {
            flags = zeroChunks.classify(m.bytes(), length, true);
        } catch (InternalError e) {
            throw cutShort(this, offset, e);
        }
        if (shorterThan(m.fileEnd())) {
            throw cutShort(this, offset, null);
        }
        for (byte f : flags) {
            if (f == ZeroChunks.ZERO_PIECE) {
                return null;
            }
        }
        return flags;
    }

    /** A mapped batch the writes are done with: unmapped by the reader's next {@link #unmapWritten}. */
    void written(ByteBuffer mapping) {
        written.add(mapping);
    }

    /** Unmaps the mapped batches already written. */
    void unmapWritten() {
        for (ByteBuffer m; (m = written.poll()) != null; ) {
            MappedWindow.release(m);
        }
    }

    /** The source's file is now shorter than {@code end} (or its length cannot be had). */
    boolean shorterThan(long end) {
        try {
            return window.fileSize() < end;
        } catch (IOException | RuntimeException e) {
            return true;
        }
    }

    /**
     * The error of a batch at {@code offset} whose file was cut shorter while being copied
     * ({@code batches} null: no mapping, the length unknown).
     */
    static CliException cutShort(MappedBatches batches, long offset, Throwable e) {
        String size;
        try {
            size = batches == null ? "unknown" : String.valueOf(batches.window.fileSize());
        } catch (IOException | RuntimeException x) {
            size = "unknown";
        }
        return new CliException("error while reading at byte " + offset + ": the source file was cut short while"
                + " being read (now " + size + " bytes)", 1, e)
                .withQemuWords("error while reading at byte " + offset + ": " + ConvertCopy.QEMU_READ_ERROR);
    }

    /** Unmaps what is left and closes the file (the mappings made stay valid until released). */
    @Override
    public void close() {
        unmapWritten();
        window.close();
    }
}
