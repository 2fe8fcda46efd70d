package io.qcow4j.tools;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;
import io.qcow4j.core.api.FileImage;
import io.qcow4j.nbd.client.NbdClient;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The copy of convert: the source disk into the target, run by run, as qemu-img convert
 * decides for each run:
 * <ul>
 * <li>a target with a backing file (-B) gets only what the source's top image holds itself;
 *     the rest is left to the backing file;</li>
 * <li>data is judged in chunks (the target's clusters); a chunk that is all zeros is not
 *     written where the target reads zeros already (a new image), and written as zeros
 *     elsewhere (an existing target, -n; an image with a backing file);</li>
 * <li>zero and unallocated runs likewise: nothing, or zeros;</li>
 * <li>{@code -S 0} writes every chunk as data, zeros included (a fully allocated target);
 *     {@code -S N} above the chunk size counts zeros only in runs of N bytes or more.</li>
 * </ul>
 * A reader thread walks the source's block status, reads it in batches of several MiB
 * (decompressing on every core) and finds the zero chunks, while this thread writes the
 * batch before in order, neighbouring data chunks with one request (compressed, with -c,
 * on every core by the engine). A raw source in a regular file, and a read-only qcow2
 * source's batches that lie in one run of data clusters, are not read but mapped, a batch at
 * a time: the target is written straight from the page cache's pages (one copy, in the
 * kernel, instead of a read and a write). The zero chunks are found by {@link ZeroChunks},
 * the target's requests made by {@link ConvertWrites}, the batches mapped by
 * {@link MappedBatches}; this class is the walk and the two threads.
 * <p>
 * A mapped file cut shorter faults on the pages past its new end. Java reads mapped pages
 * only on the reader thread and only where the JVM turns a fault into an InternalError
 * (ByteBuffer.getLong and bulk copies; the vector mismatch of ZeroBytes would crash the JVM),
 * and checks the file's length after; the writes hand the pages to the kernel only (a fault
 * there is EFAULT, an IOException). A batch the writes would read in Java (its zero pieces,
 * a part of a cluster, compression, encryption) is read as usual.
 */
final class ConvertCopy {
    /** Chunk size for a raw target: what qemu-img uses as its buffer granularity. */
    private static final int RAW_CHUNK = 64 * 1024;
    /** Bytes read from the source at once; an NBD source keeps several requests in flight within one read. */
    private static final int BATCH = 4 << 20;
    private static final int NBD_BATCH = 8 << 20;
    /** Batches in flight: one being read, one being written, one ready. */
    private static final int BUFFERS = 3;
    /** A free slot whose batch buffer is not allocated yet. */
    private static final ByteBuffer EMPTY_SLOT = ByteBuffer.allocateDirect(0);

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

    /**
     * What the reader hands over, in disk order: a batch of data, a zero run, or the end (or
     * a failure). A mapped batch's {@code buf} is the mapping, {@code home} the free buffer
     * it stands for (which bounds the mappings in flight) and {@code mapEnd} the end of the
     * mapped bytes in the source's file.
     */
    private record Step(long offset, int length, ByteBuffer buf, byte[] chunks, long runEnd, long zeroTo,
                        long progress, RuntimeException failure, ByteBuffer home, long mapEnd) {
        Step(long offset, int length, ByteBuffer buf, byte[] chunks, long runEnd, long zeroTo,
             long progress, RuntimeException failure) {
            this(offset, length, buf, chunks, runEnd, zeroTo, progress, failure, null, 0);
        }

        boolean isEnd() {
            return progress < 0;
        }
    }

    private final BlockDevice source;
    private final BlockDevice target;
    private final Mode mode;
    private final Progress bar;
    private final int chunk;
    /** The target allocates in clusters (the chunks): a part of one is copied by the engine, in Java. */
    private final boolean targetClusters;
    private final int batchSize;
    private final BlockingQueue<ByteBuffer> free = new ArrayBlockingQueue<>(BUFFERS);
    private final BlockingQueue<Step> steps = new ArrayBlockingQueue<>(BUFFERS + 1);
    private volatile boolean cancelled;
    /** The status of the run after a batch, found while extending it (reader thread). */
    private BlockStatus lookahead;
    private java.util.function.Consumer<String> salvage;
    private static final int SECTOR = 512;
    /** What qemu-img says of any read its qcow2 driver fails (corrupt compressed data, a bad offset): EIO. */
    static final String QEMU_READ_ERROR = "Input/output error";
    /** The source's batches mapped (null: read as usual). */
    private MappedBatches mapped;
    /** The batches' zero chunks, found on the reader thread. */
    private ZeroChunks zeroChunks;
    /** The batches written, on this thread. */
    private final ConvertWrites writes;
    /** The batch the reader is at, and what ended it if it ended without a word (an error from a mapped page). */
    private volatile long readingAt;
    private volatile Throwable readerDied;

    ConvertCopy(BlockDevice source, BlockDevice target, Mode mode, Progress bar) {
        this.source = source;
        this.target = target;
        this.mode = mode;
        this.bar = bar;
        int clusterSize = target instanceof FileImage f ? f.clusterSize() : 0;
        this.targetClusters = clusterSize > 0;
        this.chunk = targetClusters ? clusterSize : RAW_CHUNK;
        int batch = source instanceof NbdClient ? NBD_BATCH : BATCH;
        this.batchSize = Math.max(chunk, batch - batch % chunk);
        this.writes = new ConvertWrites(target, mode, chunk);
    }

    /** Copies the first {@code size} bytes of the source. */
    void run(long size) {
        for (int i = 0; i < BUFFERS; i++) {
            // a slot: its buffer is allocated when a batch is first read into it (a mapped
            // batch needs none: 12 MiB of memory never touched)
            free.add(EMPTY_SLOT);
        }
        // --salvage reads sector by sector; -c, an encrypted or NBD target read the data in Java
        boolean kernelWrites = !mode.compress() && target instanceof FileImage f && !f.isEncrypted();
        mapped = salvage == null && kernelWrites && source instanceof FileImage f
                ? MappedBatches.of(f, targetClusters ? chunk : 0) : null;
        zeroChunks = new ZeroChunks(mode, chunk, mapped == null ? null : ByteBuffer.allocateDirect(64 << 10));
        String program = Program.name(); // the reader's messages speak as this command does
        Thread reader = new Thread(() -> {
            Program.set(program);
            try {
                read(size);
            } catch (Throwable e) {
                readerDied = e; // said by the writes (next)
            }
        }, "qcow4j-convert-reader");
        reader.setDaemon(true);
        reader.start();
        try {
            while (true) {
                Step s = next(reader);
                if (s.failure() != null) {
                    throw s.failure();
                }
                if (s.isEnd()) {
                    break;
                }
                if (s.home() != null) {
                    copyMapped(s);
                } else if (s.buf() != null) {
                    copyBatch(s);
                    free.add(s.buf());
                } else if (s.zeroTo() > s.offset()) {
                    writes.zeros(s.offset(), s.zeroTo());
                }
                bar.update(s.progress());
            }
        } finally {
            stop(reader);
            if (mapped != null) {
                mapped.close();
            }
        }
        writes.flushPendingZeros();
        bar.finish();
    }

    /** --salvage: read errors become zeros, sector by sector, each reported here (from the reader thread). */
    void salvage(java.util.function.Consumer<String> warnings) {
        this.salvage = warnings;
    }

    // ---------------------------------------------------------------- the reader thread

    /** Walks the source's block status and reads what must be copied, ahead of the writes. */
    private void read(long size) {
        try {
            long done = 0; // everything below was handed over (whole chunks)
            long pos = 0;
            while (pos < size && !cancelled) {
                BlockStatus st = lookahead != null && lookahead.offset() == pos ? lookahead : null;
                lookahead = null;
                try {
                    if (st == null) {
                        st = source.blockStatus(pos, statusLength(pos, size));
                    }
                } catch (IOException | RuntimeException e) {
                    throw new CliException("error while reading block status at offset " + pos + ": "
                            + Images.reason(e), 1, e);
                }
                long runEnd = Math.min(size, pos + Math.max(1, st.length()));
                boolean inTop = !mode.targetHasBacking() || st.depth() == 0;
                if (copied(st)) {
                    runEnd = extendRun(pos, runEnd, size);
                    long first = Math.max(pos - pos % chunk, done);
                    long end = Math.min(alignUp(runEnd, chunk), size);
                    for (long b = first; b < end && !cancelled; b += batchSize) {
                        int len = (int) Math.min(batchSize, end - b);
                        ByteBuffer buf = takeFree();
                        if (buf == null) {
                            return;
                        }
                        readingAt = b;
                        MappedBatches.Mapping m = mapped == null ? null : mapped.map(b, len);
                        byte[] flags = m == null ? null : mapped.classify(zeroChunks, m, b, len);
                        if (flags != null) {
                            put(new Step(b, len, m.bytes(), flags, runEnd, 0, b + len, null, buf, m.fileEnd()));
                            continue;
                        }
                        if (m != null) {
                            MappedWindow.release(m.bytes());
                        }
                        if (buf.capacity() < batchSize) {
                            buf = ByteBuffer.allocateDirect(batchSize);
                        }
                        readBatch(buf, b, len);
                        put(new Step(b, len, buf, zeroChunks.classify(buf, len), runEnd, 0, b + len, null));
                    }
                    done = Math.max(done, alignUp(runEnd, chunk));
                    put(new Step(pos, 0, null, null, 0, 0, runEnd, null));
                } else if (inTop && !mode.targetReadsZero() && runEnd > done) {
                    put(new Step(Math.max(pos, done), 0, null, null, 0, runEnd, runEnd, null));
                } else {
                    put(new Step(pos, 0, null, null, 0, 0, runEnd, null));
                }
                pos = runEnd;
            }
            put(new Step(0, 0, null, null, 0, 0, -1, null));
        } catch (RuntimeException e) {
            put(new Step(0, 0, null, null, 0, 0, 0, e));
        } catch (InternalError e) {
            // a fault on a mapped page, said by the JVM later than it happened
            put(new Step(0, 0, null, null, 0, 0, 0, MappedBatches.cutShort(mapped, readingAt, e)));
        }
    }

    /** A run whose bytes are read and copied (else it is zeros to the target, or left to its backing file). */
    private boolean copied(BlockStatus st) {
        boolean inTop = !mode.targetHasBacking() || st.depth() == 0;
        return inTop && (mode.sparseSize() == 0 || st.allocated() && !st.zero());
    }

    /**
     * The end of the run to copy from {@code pos}, with the neighbouring runs that are
     * copied too, up to a batch: a compressed image's block status is one cluster at a
     * time (as QEMU's), and a fragmented image's one host run at a time, and a batch of
     * one cluster would leave the decompression on one core and hand over every 64 KiB.
     * Not with -S above the chunk size: its zero runs are counted within one run, as
     * qemu-img counts them.
     */
    private long extendRun(long pos, long runEnd, long size) {
        if (mode.sparseSize() > chunk) {
            return runEnd;
        }
        while (runEnd < size && runEnd - pos < batchSize && !cancelled) {
            BlockStatus next;
            try {
                next = source.blockStatus(runEnd, statusLength(runEnd, size));
            } catch (IOException | RuntimeException e) {
                break; // reported when the walk gets there
            }
            if (!copied(next)) {
                lookahead = next; // the walk's next step (an NBD source: one round trip less)
                break;
            }
            runEnd = Math.min(size, runEnd + Math.max(1, next.length()));
        }
        return runEnd;
    }

    /**
     * How far to ask the source's block status from {@code pos}: a qcow2 source walks its L2
     * entries to the end of what it is asked, and the first walk, still interpreted, would
     * hold the first batch back by the whole disk's entries (16,384 for 1 GiB: ~10 ms). Not
     * with -S above the chunk size, whose zero runs are counted within one run.
     */
    private long statusLength(long pos, long size) {
        long rest = size - pos;
        return mode.sparseSize() > chunk ? rest : Math.min(rest, 16L * batchSize);
    }

    private void readBatch(ByteBuffer buf, long offset, int length) {
        buf.clear().limit(length);
        try {
            source.read(offset, buf);
        } catch (IOException | RuntimeException e) {
            if (salvage == null) {
                throw new CliException("error while reading at byte " + offset + ": " + Images.reason(e), 1, e)
                        .withQemuWords("error while reading at byte " + offset + ": " + QEMU_READ_ERROR);
            }
            salvageBatch(buf, offset, length);
        }
    }

    /** As qemu-img --salvage: each 512-byte sector read alone, those that fail zeroed and reported. */
    private void salvageBatch(ByteBuffer buf, long offset, int length) {
        for (int at = 0; at < length; at += SECTOR) {
            int n = Math.min(SECTOR, length - at);
            ByteBuffer sector = buf.duplicate().clear().position(at).limit(at + n).slice();
            try {
                source.read(offset + at, sector);
            } catch (IOException | RuntimeException e) {
                salvage.accept("error while reading offset " + (offset + at) + ": "
                        + (Program.dropIn() ? QEMU_READ_ERROR : Images.reason(e)));
                for (int i = 0; i < n; i++) {
                    buf.put(at + i, (byte) 0);
                }
            }
        }
        buf.clear().limit(length);
    }


    /** A free batch buffer, or null once the copy was given up. */
    private ByteBuffer takeFree() {
        while (!cancelled) {
            try {
                ByteBuffer b = free.poll(50, TimeUnit.MILLISECONDS);
                if (b != null) {
                    if (mapped != null) {
                        mapped.unmapWritten();
                    }
                    return b;
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
        }
        return null;
    }

    private void put(Step s) {
        while (!cancelled) {
            try {
                if (steps.offer(s, 50, TimeUnit.MILLISECONDS)) {
                    return;
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /**
     * The reader's next step; should the reader have ended without one (an error from a
     * mapped page thrown where nothing catches it), that error.
     */
    private Step next(Thread reader) {
        try {
            while (true) {
                Step s = steps.poll(50, TimeUnit.MILLISECONDS);
                if (s != null) {
                    return s;
                }
                if (!reader.isAlive() && steps.isEmpty()) {
                    Throwable e = readerDied;
                    if (mapped != null) {
                        throw MappedBatches.cutShort(mapped, readingAt, e);
                    }
                    throw new CliException("error while reading at byte " + readingAt + ": "
                            + (e == null ? "the reader ended" : String.valueOf(e.getMessage())), 1, e);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CliException("interrupted", 1, e);
        }
    }

    /** Ends the reader (after a failure here it may still be reading) and waits for it. */
    private void stop(Thread reader) {
        cancelled = true;
        while (reader.isAlive()) {
            Step s = steps.poll();
            if (s != null && s.home() != null) {
                MappedWindow.release(s.buf());
                free.offer(s.home());
            } else if (s != null && s.buf() != null) {
                free.offer(s.buf());
            }
            try {
                reader.join(10);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    // ---------------------------------------------------------------- the writes, on this thread

    /**
     * A mapped batch, written from the mapping, which is released here (nothing holds on to
     * it after). A file cut shorter faults on its pages in the kernel's copy of a write
     * (EFAULT, an IOException): said as a read error.
     */
    private void copyMapped(Step s) {
        try {
            copyBatch(s);
        } catch (CliException | InternalError e) {
            if (!mapped.shorterThan(s.mapEnd())) {
                throw e;
            }
            throw MappedBatches.cutShort(mapped, s.offset(), e);
        } finally {
            writes.dropData();
            mapped.written(s.buf());
            free.add(s.home());
        }
    }

    private void copyBatch(Step s) {
        writes.copyBatch(s.buf(), s.chunks(), s.offset(), s.length(), s.runEnd());
    }

    private static long alignUp(long v, long a) {
        long r = v % a;
        return r == 0 ? v : v + (a - r);
    }
}
