package io.qcow4j.tools;

import io.qcow4j.core.BlockDevice;
import io.qcow4j.core.BlockStatus;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.RawImage;
import io.qcow4j.nbd.client.NbdClient;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The copy of convert: the source disk into the target, run by run, as qemu-img convert
 * decides for each run:
 * <ul>
 * <li>a target with a backing file (-B) gets only what the source's top image holds itself;
 *     the rest is left to the backing file;</li>
 * <li>data is copied in chunks (the target's clusters); a chunk that is all zeros is not
 *     written where the target reads zeros already (a new image), and written as zeros
 *     elsewhere (an existing target, -n; an image with a backing file);</li>
 * <li>zero and unallocated runs likewise: nothing, or zeros;</li>
 * <li>{@code -S 0} writes every chunk as data, zeros included (a fully allocated target);
 *     {@code -S N} above the chunk size counts zeros only in runs of N bytes or more.</li>
 * </ul>
 */
final class ConvertCopy {
    /** Chunk size for a raw target: what qemu-img uses as its buffer granularity. */
    private static final int RAW_CHUNK = 64 * 1024;
    /** Bytes read from the source at once: an NBD source keeps several requests in flight within one read. */
    private static final int BATCH = 8 << 20;

    /**
     * How to copy.
     *
     * @param sparseSize      -S: the shortest run of zeros not written as data (0: none)
     * @param targetHasBacking the target has a backing file: copy the source's top image only
     * @param targetReadsZero the target reads zeros where nothing is written (a new image
     *                        without backing file, or --target-is-zero)
     * @param compress        -c: data chunks are written compressed
     */
    record Mode(long sparseSize, boolean targetHasBacking, boolean targetReadsZero, boolean compress) {
    }

    private final BlockDevice source;
    private final BlockDevice target;
    private final Mode mode;
    private final Progress bar;
    private final int chunk;
    private final ByteBuffer batch;
    /** Zero chunks of a data run not yet written (only with -S above the chunk size). */
    private long pendingZeroStart = -1;
    private java.util.function.Consumer<String> salvage;
    private static final int SECTOR = 512;
    /** What qemu-img says of any read its qcow2 driver fails (corrupt compressed data, a bad offset): EIO. */
    private static final String QEMU_READ_ERROR = "Input/output error";
    private long pendingZeroEnd;

    ConvertCopy(BlockDevice source, BlockDevice target, Mode mode, Progress bar) {
        this.source = source;
        this.target = target;
        this.mode = mode;
        this.bar = bar;
        this.chunk = target instanceof Qcow2Image q ? q.clusterSize() : RAW_CHUNK;
        this.batch = ByteBuffer.allocateDirect(Math.max(chunk, BATCH - BATCH % chunk));
    }

    /** Copies the first {@code size} bytes of the source. */
    void run(long size) {
        long done = 0; // everything below was written (whole chunks)
        long pos = 0;
        while (pos < size) {
            BlockStatus st;
            try {
                st = source.blockStatus(pos, size - pos);
            } catch (IOException | RuntimeException e) {
                throw new CliException("error while reading block status at offset " + pos + ": "
                        + Images.reason(e), 1, e);
            }
            long runEnd = Math.min(size, pos + Math.max(1, st.length()));
            boolean inTop = !mode.targetHasBacking() || st.depth() == 0;
            if (inTop && (mode.sparseSize() == 0 || st.allocated() && !st.zero())) {
                long first = Math.max(pos - pos % chunk, done);
                long end = Math.min(alignUp(runEnd, chunk), size);
                for (long b = first; b < end; b += batch.capacity()) {
                    int len = (int) Math.min(batch.capacity(), end - b);
                    readBatch(b, len);
                    for (int k = 0; k < len; k += chunk) {
                        int n = Math.min(chunk, len - k);
                        copyChunk(batch.slice(k, n), b + k, b + k + n >= runEnd);
                        bar.update(b + k + n);
                    }
                }
                done = Math.max(done, alignUp(runEnd, chunk));
            } else if (inTop && !mode.targetReadsZero() && runEnd > done) {
                zeros(Math.max(pos, done), runEnd);
            }
            pos = runEnd;
            bar.update(pos);
        }
        flushPendingZeros();
        bar.finish();
    }

    /** --salvage: read errors become zeros, sector by sector, each reported here. */
    void salvage(java.util.function.Consumer<String> warnings) {
        this.salvage = warnings;
    }

    private void readBatch(long offset, int length) {
        batch.clear().limit(length);
        try {
            source.read(offset, batch);
        } catch (IOException | RuntimeException e) {
            if (salvage == null) {
                throw new CliException("error while reading at byte " + offset + ": " + Images.reason(e), 1, e)
                        .withQemuWords("error while reading at byte " + offset + ": " + QEMU_READ_ERROR);
            }
            salvageBatch(offset, length);
        }
    }

    /** As qemu-img --salvage: each 512-byte sector read alone, those that fail zeroed and reported. */
    private void salvageBatch(long offset, int length) {
        for (int at = 0; at < length; at += SECTOR) {
            int n = Math.min(SECTOR, length - at);
            ByteBuffer sector = batch.duplicate().clear().position(at).limit(at + n).slice();
            try {
                source.read(offset + at, sector);
            } catch (IOException | RuntimeException e) {
                salvage.accept("error while reading offset " + (offset + at) + ": "
                        + (Program.dropIn() ? QEMU_READ_ERROR : Images.reason(e)));
                for (int i = 0; i < n; i++) {
                    batch.put(at + i, (byte) 0);
                }
            }
        }
        batch.clear().limit(length);
    }

    private void copyChunk(ByteBuffer buf, long offset, boolean lastOfRun) {
        int length = buf.remaining();
        if (mode.sparseSize() > 0 && isZero(buf)) {
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
        write(offset, buf);
    }

    /** The zero chunks held back: as zeros when they make a run of -S bytes, else as data. */
    private void flushPendingZeros() {
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
            write(c, z);
        }
    }

    private void write(long offset, ByteBuffer data) {
        if (!mode.compress() && mode.targetReadsZero() && mode.sparseSize() > 0 && mode.sparseSize() < chunk
                && hasZeroPiece(data, (int) mode.sparseSize())) {
            // the -S pieces of zeros are not written, as qemu-img skips them: a raw target keeps its
            // holes there, an existing target (--target-is-zero) its bytes
            int piece = (int) mode.sparseSize();
            int start = data.position();
            for (int p = start; p < data.limit(); p += piece) {
                ByteBuffer part = data.duplicate();
                part.position(p).limit(Math.min(data.limit(), p + piece));
                if (!isZero(part)) {
                    writeAt(offset + (p - start), part);
                }
            }
            return;
        }
        writeAt(offset, data);
    }

    private void writeAt(long offset, ByteBuffer data) {
        try {
            if (target instanceof Qcow2Image q) {
                if (mode.compress()) {
                    q.writeCompressed(offset, data);
                } else {
                    q.write(offset, data);
                }
            } else if (target instanceof NbdClient nbd) {
                nbd.write(offset, data);
            } else {
                ((RawImage) target).write(offset, data);
            }
        } catch (IOException | RuntimeException e) {
            throw new CliException("error while writing at byte " + offset + ": " + Images.reason(e), 1, e);
        }
    }

    /** Zeros over [from, to) of the target: zero clusters in a qcow2 image, zero bytes in a raw one. */
    private void zeros(long from, long to) {
        try {
            if (target instanceof Qcow2Image q) {
                q.writeZeroes(from, to - from);
                return;
            }
            if (target instanceof NbdClient nbd) {
                nbd.writeZeroes(from, to - from);
                return;
            }
            ByteBuffer z = ByteBuffer.allocate((int) Math.min(1 << 20, to - from));
            for (long p = from; p < to; p += z.capacity()) {
                z.clear().limit((int) Math.min(z.capacity(), to - p));
                ((RawImage) target).write(p, z);
            }
        } catch (IOException | RuntimeException e) {
            throw new CliException("error while writing at byte " + from + ": " + Images.reason(e), 1, e);
        }
    }

    private static boolean hasZeroPiece(ByteBuffer data, int piece) {
        for (int p = data.position(); p < data.limit(); p += piece) {
            ByteBuffer part = data.duplicate();
            part.position(p).limit(Math.min(data.limit(), p + piece));
            if (isZero(part)) {
                return true;
            }
        }
        return false;
    }

    static boolean isZero(ByteBuffer buf) {
        int i = buf.position();
        int end = buf.limit();
        for (; i + 8 <= end; i += 8) {
            if (buf.getLong(i) != 0) {
                return false;
            }
        }
        for (; i < end; i++) {
            if (buf.get(i) != 0) {
                return false;
            }
        }
        return true;
    }

    private static long alignUp(long v, long a) {
        long r = v % a;
        return r == 0 ? v : v + (a - r);
    }
}
