package io.qcow4j.tools;

import io.qcow4j.core.api.BlockDevice;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The writes of convert, on the writing thread: a batch's chunks, as {@link ZeroChunks}
 * judged them, turned into the target's requests (neighbouring data chunks with one
 * request, zero chunks as nothing or as zeros, -S runs counted across batches). Apart from
 * {@link ConvertCopy} so that the copy's reader thread and its writes each fit in a class;
 * all state here belongs to the writing thread.
 */
final class ConvertWrites {
    private final BlockDevice target;
    private final ConvertCopy.Mode mode;
    private final int chunk;
    /** Zero chunks of a data run not yet written (only with -S above the chunk size). */
    private long pendingZeroStart = -1;
    private long pendingZeroEnd;
    /** Data chunks of the current batch not yet written: written together. */
    private ByteBuffer dataBuf;
    private int dataFrom;
    private int dataTo;
    private long dataOffset;

    ConvertWrites(BlockDevice target, ConvertCopy.Mode mode, int chunk) {
        this.target = target;
        this.mode = mode;
        this.chunk = chunk;
    }

    /**
     * A batch of {@code length} bytes at {@code offset}, in a run ending at {@code runEnd},
     * with its chunks' {@code flags}.
     */
    void copyBatch(ByteBuffer buf, byte[] flags, long offset, int length, long runEnd) {
        for (int k = 0; k < flags.length; k++) {
            int at = k * chunk;
            int n = Math.min(chunk, length - at);
            long chunkOffset = offset + at;
            copyChunk(buf, at, n, chunkOffset, chunkOffset + n >= runEnd, flags[k]);
        }
        flushData();
    }

    /** Forgets data chunks not written (their buffer, a mapping, is released after a failed batch). */
    void dropData() {
        dataBuf = null;
    }

    private void copyChunk(ByteBuffer buf, int at, int length, long offset, boolean lastOfRun, byte flags) {
        if (mode.sparseSize() > 0 && (flags & ZeroChunks.ZERO_CHUNK) != 0) {
            flushData();
            if (mode.sparseSize() <= chunk) {
                if (!mode.targetReadsZero()) {
                    zeros(offset, offset + length);
                }
            } else {
                if (pendingZeroStart < 0) {
                    pendingZeroStart = offset;
                }
                pendingZeroEnd = offset + length;
            }
            if (lastOfRun) {
                flushPendingZeros();
            }
            return;
        }
        flushPendingZeros();
        if ((flags & ZeroChunks.ZERO_PIECE) != 0) {
            flushData();
            writePieces(offset, buf.slice(at, length));
            return;
        }
        if (dataBuf == buf && dataTo == at) {
            dataTo += length;
            return;
        }
        flushData();
        dataBuf = buf;
        dataFrom = at;
        dataTo = at + length;
        dataOffset = offset;
    }

    /** Writes the data chunks gathered so far with one request. */
    private void flushData() {
        if (dataBuf == null) {
            return;
        }
        ByteBuffer part = dataBuf.slice(dataFrom, dataTo - dataFrom);
        dataBuf = null;
        writeAt(dataOffset, part);
    }

    /** The zero chunks held back: as zeros when they make a run of -S bytes, else as data. */
    void flushPendingZeros() {
        if (pendingZeroStart < 0) {
            return;
        }
        long start = pendingZeroStart;
        long end = pendingZeroEnd;
        pendingZeroStart = -1;
        if (end - start >= mode.sparseSize()) {
            if (!mode.targetReadsZero()) {
                zeros(start, end);
            }
            return;
        }
        ByteBuffer z = ByteBuffer.allocate(chunk);
        for (long c = start; c < end; c += chunk) {
            z.clear().limit((int) Math.min(chunk, end - c));
            writeAt(c, z);
        }
    }

    /**
     * A chunk with pieces of -S zeros: the pieces are not written, as qemu-img skips them: a
     * raw target keeps its holes there, an existing target (--target-is-zero) its bytes.
     */
    private void writePieces(long offset, ByteBuffer data) {
        int piece = (int) mode.sparseSize();
        for (int p = 0; p < data.limit(); p += piece) {
            ByteBuffer part = data.slice(p, Math.min(piece, data.limit() - p));
            if (!ZeroChunks.isZero(part)) {
                writeAt(offset + p, part);
            }
        }
    }

    private void writeAt(long offset, ByteBuffer data) {
        try {
            if (mode.compress()) {
                target.writeCompressed(offset, data);
            } else {
                target.write(offset, data);
            }
        } catch (IOException | RuntimeException e) {
            throw new CliException("error while writing at byte " + offset + ": " + Images.reason(e), 1, e);
        }
    }

    /**
     * Zeros over [from, to) of the target: zero clusters in a qcow2 image, NBD_CMD_WRITE_ZEROES
     * to an export, zero bytes in a raw file (its writes of up to 1 MiB).
     */
    void zeros(long from, long to) {
        try {
            target.writeZeroes(from, to - from);
        } catch (IOException | RuntimeException e) {
            throw new CliException("error while writing at byte " + from + ": " + Images.reason(e), 1, e);
        }
    }
}
