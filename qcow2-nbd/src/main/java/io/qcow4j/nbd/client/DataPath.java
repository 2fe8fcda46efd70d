package io.qcow4j.nbd.client;

import static io.qcow4j.nbd.protocol.Nbd.*;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Reads and writes of any size and alignment as requests the server accepts: pieces of at
 * most the maximum block size (1 MiB when it allows more), up to {@code window} of them in
 * flight at once; unaligned ranges widened to the minimum block size (a write reads the
 * blocks at its ends first); TRIM and WRITE_ZEROES in requests of at most 2 GiB.
 */
final class DataPath {
    /** Largest length of one BLOCK_STATUS, TRIM or WRITE_ZEROES request (they carry no payload). */
    private static final long MAX_UNSIZED = Integer.MAX_VALUE;
    /** Pieces of a large read or write, when the server allows requests this large. */
    private static final int PIECE = 1 << 20;

    private final Transmission tx;
    private final long size;
    private final int minBlock;
    private final int piece;
    private final int window;

    DataPath(Transmission tx, long size, int minBlock, int maxBlock, int window) {
        this.tx = tx;
        this.size = size;
        this.minBlock = minBlock;
        int p = Math.min(PIECE, maxBlock);
        this.piece = p - p % minBlock;
        this.window = window;
    }

    /** The longest BLOCK_STATUS, TRIM or WRITE_ZEROES request, a multiple of the minimum block size. */
    long maxUnsized() {
        return MAX_UNSIZED - MAX_UNSIZED % minBlock;
    }

    /** Reads {@code [offset, offset + dst.remaining())}, which lies within the export. */
    void read(long offset, ByteBuffer dst) throws IOException {
        readAligned(offset, dst);
    }

    /** Writes {@code data} (position 0) at {@code offset}, within the export. */
    void write(long offset, ByteBuffer data) throws IOException {
        int n = data.remaining();
        if (alignDown(offset) == offset && alignUp(offset + n) == offset + n) {
            pipeline(CMD_WRITE, offset, data);
        } else {
            writeUnaligned(offset, data);
        }
    }

    /** Zeros over [offset, end): WRITE_ZEROES for the aligned middle when the server has it, written zeros elsewhere. */
    void writeZeroes(long offset, long end, boolean serverZeroes) throws IOException {
        long start = alignUp(offset);
        long alignedEnd = alignDownToEnd(end);
        if (!serverZeroes || alignedEnd <= start) {
            writeZeroBuffers(offset, end);
            return;
        }
        writeZeroBuffers(offset, start);
        unsized(CMD_WRITE_ZEROES, start, alignedEnd);
        writeZeroBuffers(alignedEnd, end);
    }

    /** TRIM of the whole minimum blocks inside [offset, end). */
    void trim(long offset, long end) throws IOException {
        long start = alignUp(offset);
        long alignedEnd = alignDownToEnd(end);
        if (alignedEnd > start) {
            unsized(CMD_TRIM, start, alignedEnd);
        }
    }

    private void readAligned(long offset, ByteBuffer dst) throws IOException {
        int n = dst.remaining();
        long start = alignDown(offset);
        long end = Math.min(size, alignUp(offset + n));
        if (start == offset && end == offset + n) {
            pipeline(CMD_READ, offset, dst);
            return;
        }
        ByteBuffer whole = ByteBuffer.allocate((int) (end - start));
        pipeline(CMD_READ, start, whole);
        dst.put(whole.slice((int) (offset - start), n));
    }

    /**
     * READ into or WRITE from {@code buf} (position 0 at {@code offset}) in pieces of at most
     * {@link #piece} bytes, up to maxInFlight of them out at once. A piece the server
     * refuses fails the call, after the replies of the others are in.
     */
    private void pipeline(int type, long offset, ByteBuffer buf) throws IOException {
        int length = buf.remaining();
        NbdException first = null;
        long firstAt = 0;
        int next = 0;
        while (next < length || tx.inFlight() > 0) {
            while (next < length && tx.inFlight() < window && first == null) {
                int k = Math.min(piece, length - next);
                ByteBuffer part = buf.slice(buf.position() + next, k);
                Transmission.Request r = tx.submit(type, 0, offset + next, k, type == CMD_WRITE ? part : null);
                r.dst = part;
                next += k;
            }
            if (tx.inFlight() == 0) {
                break;
            }
            Transmission.Request done = tx.awaitAny();
            if (done.error != null && (first == null || done.offset < firstAt)) {
                first = done.error;
                firstAt = done.offset;
            }
        }
        if (first != null) {
            throw first;
        }
    }

    /** TRIM or WRITE_ZEROES over [start, end), in requests of at most MAX_UNSIZED bytes. */
    private void unsized(int type, long start, long end) throws IOException {
        long limit = MAX_UNSIZED - MAX_UNSIZED % minBlock;
        NbdException first = null;
        long pos = start;
        while (pos < end || tx.inFlight() > 0) {
            while (pos < end && tx.inFlight() < window && first == null) {
                int k = (int) Math.min(limit, end - pos);
                tx.submit(type, 0, pos, k, null);
                pos += k;
            }
            if (tx.inFlight() == 0) {
                break;
            }
            Transmission.Request done = tx.awaitAny();
            if (done.error != null && first == null) {
                first = done.error;
            }
        }
        if (first != null) {
            throw first;
        }
    }

    private void writeZeroBuffers(long start, long end) throws IOException {
        if (end <= start) {
            return;
        }
        ByteBuffer zeros = ByteBuffer.allocate((int) Math.min(end - start, 4L << 20));
        for (long pos = start; pos < end; ) {
            int k = (int) Math.min(zeros.capacity(), end - pos);
            zeros.clear().limit(k);
            if (alignDown(pos) == pos && alignUp(pos + k) == pos + k) {
                pipeline(CMD_WRITE, pos, zeros);
            } else {
                writeUnaligned(pos, zeros);
            }
            pos += k;
        }
    }

    /**
     * Read-modify-write of the minimum blocks at both ends of an unaligned write (not
     * atomic against other clients of the export).
     */
    private void writeUnaligned(long offset, ByteBuffer data) throws IOException {
        int n = data.remaining();
        long start = alignDown(offset);
        long end = alignUp(offset + n);
        ByteBuffer whole = ByteBuffer.allocate((int) (end - start));
        int head = (int) Math.min(minBlock, end - start);
        pipeline(CMD_READ, start, whole.slice(0, head));
        long tail = alignDown(end - 1);
        if (tail >= start + head) {
            pipeline(CMD_READ, tail, whole.slice((int) (tail - start), (int) (end - tail)));
        }
        whole.put((int) (offset - start), data, data.position(), n);
        pipeline(CMD_WRITE, start, whole);
    }

    long alignDown(long v) {
        return v - v % minBlock;
    }

    /** Up to the minimum block size, but never past the end of the export (its tail may be short). */
    long alignUp(long v) {
        long r = v % minBlock;
        return r == 0 ? v : Math.min(size, v + (minBlock - r));
    }

    /** Down to the minimum block size, except that the end of the export stays the end. */
    long alignDownToEnd(long v) {
        return v == size ? v : alignDown(v);
    }

}
