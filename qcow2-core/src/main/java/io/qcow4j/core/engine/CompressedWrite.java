package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;

import io.qcow4j.core.alloc.RefcountManager;
import io.qcow4j.core.format.CompressedDescriptor;

/**
 * Compressed writes of many clusters: every cluster is compressed on every core first,
 * then the compressed clusters are packed one after the other (as QEMU packs them) and
 * each run that lands contiguous in the file is written at once. A cluster that does not
 * shrink is written plain, as QEMU writes it.
 *
 * <p>Order, per run: the bytes' refcounts (as they are packed), the data, the L2 entries,
 * then the references the old entries held are dropped.
 */
final class CompressedWrite {
    private final ImageIo io;
    private final ClusterMapper mapper;
    private final Geometry geo;
    private final RefcountManager refcounts;

    // the run being packed: where it starts in the file, its bytes, and its clusters' entries
    private long runStart;
    private byte[] run;
    private int runLen;
    private long[] runL2;
    private int[] runIdx;
    private long[] runOld;
    private long[] runEntry;
    private int runCount;

    CompressedWrite(ImageIo io, ClusterMapper mapper, Geometry geo, RefcountManager refcounts) {
        this.io = io;
        this.mapper = mapper;
        this.geo = geo;
        this.refcounts = refcounts;
    }

    /**
     * Writes {@code src} compressed at cluster-aligned {@code offset}: whole clusters, the
     * last one possibly short (the disk's tail, read as zero-padded).
     */
    void write(long offset, ByteBuffer src) throws IOException {
        int cs = geo.clusterSize();
        int n = src.remaining();
        int count = (n + cs - 1) / cs;
        int base = src.position();
        // slot i holds cluster i compressed (its first clen[i] bytes), or plain when clen[i] < 0
        byte[] slots = new byte[count * cs];
        int[] clen = new int[count];
        Parallel.forEach(count, i -> {
            byte[] in = scratch(IN, cs);
            int len = Math.min(cs, n - i * cs);
            src.get(base + i * cs, in, 0, len);
            java.util.Arrays.fill(in, len, cs, (byte) 0);
            byte[] out = scratch(OUT, cs - 1);
            int c = io.compress(in, out);
            clen[i] = c;
            if (c < 0) {
                System.arraycopy(in, 0, slots, i * cs, cs);
            } else {
                System.arraycopy(out, 0, slots, i * cs, c);
            }
        });
        run = new byte[Math.min(count * cs, 8 << 20)];
        runL2 = new long[count];
        runIdx = new int[count];
        runOld = new long[count];
        runEntry = new long[count];
        runCount = 0;
        try {
            for (int i = 0; i < count; i++) {
                long guest = offset + (long) i * cs;
                if (clen[i] < 0) {
                    flush();
                    io.writeInCluster(guest, ByteBuffer.wrap(slots, i * cs, cs));
                    continue;
                }
                long l2 = mapper.writableL2Table(guest);
                int idx = mapper.l2Index(guest);
                long old = mapper.entry(l2, idx);
                io.requireReleasable(old, l2, idx);
                if (runCount > 0 && runLen + clen[i] > run.length) {
                    flush();
                }
                long host = refcounts.allocateBytes(clen[i]);
                if (runCount > 0 && host != runStart + runLen) {
                    // not next to the run: write the run, start another
                    byte[] pending = java.util.Arrays.copyOfRange(slots, i * cs, i * cs + clen[i]);
                    flush();
                    add(host, pending, 0, pending.length, l2, idx, old);
                } else {
                    add(host, slots, i * cs, clen[i], l2, idx, old);
                }
            }
            flush();
        } finally {
            run = null;
            runCount = 0;
        }
        src.position(base + n);
    }

    private void add(long host, byte[] b, int off, int len, long l2, int idx, long old) {
        if (runCount == 0) {
            runStart = host;
            runLen = 0;
        }
        System.arraycopy(b, off, run, runLen, len);
        runLen += len;
        runL2[runCount] = l2;
        runIdx[runCount] = idx;
        runOld[runCount] = old;
        runEntry[runCount] = CompressedDescriptor.of(host, len, geo.clusterBits());
        runCount++;
    }

    /** Writes the packed run, then points the entries at it, then drops the old references. */
    private void flush() throws IOException {
        if (runCount == 0) {
            return;
        }
        int count = runCount;
        runCount = 0;
        io.storage().write(runStart, ByteBuffer.wrap(run, 0, runLen));
        for (int k = 0; k < count; k++) {
            mapper.setEntry(runL2[k], runIdx[k], runEntry[k], 0);
        }
        for (int k = 0; k < count; k++) {
            io.release(runOld[k], runL2[k], runIdx[k]);
        }
    }

    private static final ThreadLocal<byte[]> IN = new ThreadLocal<>();
    private static final ThreadLocal<byte[]> OUT = new ThreadLocal<>();

    private static byte[] scratch(ThreadLocal<byte[]> local, int size) {
        byte[] b = local.get();
        if (b == null || b.length != size) {
            b = new byte[size];
            local.set(b);
        }
        return b;
    }
}
