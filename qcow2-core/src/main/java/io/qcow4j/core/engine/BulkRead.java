package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import io.qcow4j.core.format.CompressedDescriptor;
import io.qcow4j.core.format.L2Entry;

/**
 * A guest read over many clusters in few requests: neighbouring clusters of one kind make
 * one run, a run of data clusters that lie one after the other in the host file is one
 * positional read, a run the backing file answers is one backing read, and the compressed
 * clusters of the request are read together and decompressed on every core. A cluster
 * whose subclusters differ, or a compressed cluster read in part, takes the one-cluster
 * path of {@link ImageIo}.
 */
final class BulkRead {
    private static final int NONE = 0;
    private static final int DATA = 1;
    private static final int ZERO = 2;
    private static final int BACKING = 3;
    /** Compressed bytes held for one batch: they are read into one buffer. */
    private static final int MAX_COMPRESSED_BYTES = 32 << 20;
    /** The compressed buffer kept between requests at most (convert's 4 MiB batches need about 3 MiB). */
    private static final int KEPT_COMPRESSED_BYTES = 8 << 20;

    private final ImageIo io;
    private final ClusterMapper mapper;
    private final Geometry geo;

    // the run being gathered: kind, where it starts in dst and in the guest, its length, its host offset
    private int kind;
    private int runPos;
    private long runGuest;
    private long runLen;
    private long runHost;

    // compressed clusters of the request not yet read: their entries and dst positions
    private long[] zEntry = new long[16];
    private long[] zWhere = new long[16];
    private int[] zPos = new int[16];
    private int zCount;
    private int zBytes;
    /** Compressed bytes of the batch being decompressed, reused; see {@link #compressedBuffer}. */
    private ByteBuffer compressed;
    /** Data runs left for the caller to read after the lock (readPlanned), or null: read at once. */
    private List<DataRead> deferred;

    BulkRead(ImageIo io, ClusterMapper mapper, Geometry geo) {
        this.io = io;
        this.mapper = mapper;
        this.geo = geo;
    }

    /**
     * As {@link #read}, but the runs of data clusters are not read: they are returned, for
     * the caller to read once the image's lock is released (a read-only image only, whose
     * clusters never move). Zero, backing and compressed clusters are filled in here.
     */
    List<DataRead> readPlanned(long offset, ByteBuffer dst) throws IOException {
        deferred = new ArrayList<>();
        try {
            read(offset, dst);
            return deferred;
        } finally {
            deferred = null;
        }
    }

    /**
     * Where guest {@code [offset, offset + length)} (inside the disk) lies in the image's own
     * file when all of it is data clusters of this image one after the other there (no
     * compressed, zero, backing, partly allocated or encrypted cluster, no external data
     * file), else -1. Reads no data: the caller reads the run as it likes (convert maps it).
     */
    long hostRun(long offset, long length) throws IOException {
        if (io.hasDataFile() || io.encrypted()) {
            return -1;
        }
        int cs = geo.clusterSize();
        long coverage = geo.l2Coverage();
        long start = -1;
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            long tableEnd = Math.min(end, (pos / coverage + 1) * coverage);
            long l2 = mapper.l2Table(pos);
            if (l2 == 0) {
                return -1;
            }
            long[] table = mapper.cache().table(l2);
            int words = geo.l2EntryWords();
            int idx = mapper.l2Index(pos);
            for (; pos < tableEnd; idx++) {
                int in = geo.offsetInCluster(pos);
                int n = (int) Math.min(tableEnd - pos, cs - in);
                long entry = table[idx * words];
                if (L2Entry.isCompressed(entry) || !isData(entry, words == 2 ? table[idx * 2 + 1] : 0, in, n)) {
                    return -1;
                }
                long host = mapper.checkedHost(entry, l2, idx) + in;
                if (start < 0) {
                    start = host;
                } else if (host != start + (pos - offset)) {
                    return -1;
                }
                pos += n;
            }
        }
        return start;
    }

    /** The bytes {@code [in, in + n)} of a cluster read its data (as {@link #table} sorts them into DATA). */
    private boolean isData(long entry, long bitmap, int in, int n) {
        if (!geo.extendedL2()) {
            return !(L2Entry.isZero(entry) && geo.version() >= 3) && io.isAllocated(entry);
        }
        int sc = geo.subclusterSize();
        long mask = L2Entry.allocRange(in / sc, (in + n - 1) / sc);
        return (bitmap & mask) == mask && io.isAllocated(entry) && L2Entry.hostOffset(entry) != 0;
    }

    /** Fills {@code dst.remaining()} bytes from guest {@code offset}, which all lie inside the disk. */
    void read(long offset, ByteBuffer dst) throws IOException {
        int base = dst.position();
        int total = dst.remaining();
        kind = NONE;
        zCount = 0;
        zBytes = 0;
        try {
            long coverage = geo.l2Coverage();
            long pos = offset;
            long end = offset + total;
            while (pos < end) {
                long tableEnd = Math.min(end, (pos / coverage + 1) * coverage);
                long l2 = mapper.l2Table(pos);
                if (l2 == 0) {
                    add(dst, base + (int) (pos - offset), pos, tableEnd - pos, BACKING, 0);
                } else {
                    table(dst, base + (int) (pos - offset), pos, tableEnd, l2);
                }
                pos = tableEnd;
            }
            flushRun(dst);
            flushCompressed(dst);
        } finally {
            kind = NONE;
            zCount = 0;
        }
        dst.position(base + total);
    }

    /** The clusters of {@code [pos, end)}, all under L2 table {@code l2}. */
    private void table(ByteBuffer dst, int at, long pos, long end, long l2) throws IOException {
        int cs = geo.clusterSize();
        // a read changes no table: the array stays right even if the cache lets it go
        long[] table = mapper.cache().table(l2);
        int words = geo.l2EntryWords();
        int idx = mapper.l2Index(pos);
        while (pos < end) {
            int in = geo.offsetInCluster(pos);
            int n = (int) Math.min(end - pos, cs - in);
            long entry = table[idx * words];
            if (L2Entry.isCompressed(entry)) {
                if (n == cs) {
                    addCompressed(dst, at, entry, l2, idx);
                } else {
                    flushRun(dst);
                    io.readWithEntry(pos, slice(dst, at, n), entry, 0, l2, idx);
                }
            } else if (!geo.extendedL2()) {
                if (L2Entry.isZero(entry) && geo.version() >= 3) {
                    add(dst, at, pos, n, ZERO, 0);
                } else if (io.isAllocated(entry)) {
                    add(dst, at, pos, n, DATA, mapper.checkedHost(entry, l2, idx) + in);
                } else {
                    add(dst, at, pos, n, BACKING, 0);
                }
            } else {
                subclusters(dst, at, pos, n, entry, table[idx * 2 + 1], l2, idx);
            }
            pos += n;
            at += n;
            idx++;
        }
    }

    /** An extended entry: one run when the subclusters read are all of one kind, else the one-cluster path. */
    private void subclusters(ByteBuffer dst, int at, long pos, int n, long entry, long bitmap, long l2, int idx)
            throws IOException {
        int sc = geo.subclusterSize();
        int in = geo.offsetInCluster(pos);
        long mask = L2Entry.allocRange(in / sc, (in + n - 1) / sc);
        long alloc = bitmap & mask;
        long zero = (bitmap >>> 32) & mask;
        boolean hasHost = io.isAllocated(entry) && (L2Entry.hostOffset(entry) != 0 || io.hasDataFile());
        if (alloc == mask && hasHost) {
            add(dst, at, pos, n, DATA, mapper.checkedHost(entry, l2, idx) + in);
        } else if (alloc == 0 && zero == mask) {
            add(dst, at, pos, n, ZERO, 0);
        } else if (alloc == 0 && zero == 0) {
            add(dst, at, pos, n, BACKING, 0);
        } else {
            flushRun(dst);
            io.readWithEntry(pos, slice(dst, at, n), entry, bitmap, l2, idx);
        }
    }

    /** Adds a piece to the run, or ends the run and starts another. */
    private void add(ByteBuffer dst, int at, long guest, long n, int k, long host) throws IOException {
        if (kind == k && runGuest + runLen == guest && (k != DATA || runHost + runLen == host)
                && runLen + n <= Integer.MAX_VALUE) {
            runLen += n;
            return;
        }
        flushRun(dst);
        kind = k;
        runPos = at;
        runGuest = guest;
        runLen = n;
        runHost = host;
    }

    private void flushRun(ByteBuffer dst) throws IOException {
        if (kind == NONE) {
            return;
        }
        ByteBuffer part = slice(dst, runPos, (int) runLen);
        switch (kind) {
            case DATA -> {
                if (deferred != null) {
                    deferred.add(new DataRead(io.data(), runHost, part));
                } else {
                    io.data().read(runHost, part);
                }
            }
            case ZERO -> ImageIo.zeroFill(part);
            default -> io.readBacking(runGuest, part);
        }
        kind = NONE;
    }

    private void addCompressed(ByteBuffer dst, int at, long entry, long l2, int idx) throws IOException {
        if (zBytes >= MAX_COMPRESSED_BYTES) {
            flushCompressed(dst);
        }
        if (zCount == zEntry.length) {
            zEntry = Arrays.copyOf(zEntry, zCount * 2);
            zWhere = Arrays.copyOf(zWhere, zCount * 2);
            zPos = Arrays.copyOf(zPos, zCount * 2);
        }
        // checked now, so a bad offset fails before anything of the batch is read
        zWhere[zCount] = io.compressedOffset(entry, l2, idx);
        zEntry[zCount] = entry;
        zPos[zCount] = at;
        zBytes += io.compressedSpan(entry);
        zCount++;
    }

    /**
     * Reads the held compressed clusters, each group of neighbours in the host file (QEMU
     * packs them one after the other) with one read, and decompresses them on every core
     * straight into place.
     */
    private void flushCompressed(ByteBuffer dst) throws IOException {
        int count = zCount;
        if (count == 0) {
            return;
        }
        zCount = 0;
        zBytes = 0;
        long[] where = Arrays.copyOf(zWhere, count);
        int[] at = Arrays.copyOf(zPos, count);
        int[] srcLen = new int[count];
        Integer[] order = new Integer[count];
        int total = 0;
        for (int i = 0; i < count; i++) {
            order[i] = i;
            srcLen[i] = io.compressedSpan(zEntry[i]);
            total += srcLen[i];
        }
        Arrays.sort(order, (a, b) -> Long.compare(where[a], where[b]));
        // a group is a union of spans each starting inside the ones before: never longer than their sum
        ByteBuffer in = compressedBuffer(total);
        int[] srcOff = new int[count];
        int fill = 0;
        for (int g = 0; g < count; ) {
            long start = where[order[g]];
            long groupEnd = start + srcLen[order[g]];
            int h = g + 1;
            while (h < count && where[order[h]] <= groupEnd) {
                groupEnd = Math.max(groupEnd, where[order[h]] + srcLen[order[h]]);
                h++;
            }
            int len = (int) (groupEnd - start);
            io.storage().read(start, in.duplicate().limit(fill + len).position(fill));
            for (int k = g; k < h; k++) {
                srcOff[order[k]] = fill + (int) (where[order[k]] - start);
            }
            fill += len;
            g = h;
        }
        int cs = geo.clusterSize();
        // straight into place in a direct buffer (convert's, compare's): no copy
        boolean direct = dst.isDirect();
        Parallel.forEach(count, i -> {
            if (direct) {
                io.decompress(in, srcOff[i], srcLen[i], where[i], dst, at[i]);
            } else {
                ByteBuffer out = scratch(cs);
                io.decompress(in, srcOff[i], srcLen[i], where[i], out, 0);
                dst.put(at[i], out, 0, cs);
            }
        });
    }

    /**
     * The compressed bytes of a batch: one direct buffer, reused (a read lands there without
     * a copy); one for a request larger than {@link #KEPT_COMPRESSED_BYTES} is not kept.
     */
    private ByteBuffer compressedBuffer(int bytes) {
        if (compressed != null && compressed.capacity() >= bytes) {
            return compressed;
        }
        ByteBuffer b = ByteBuffer.allocateDirect(Math.max(bytes, 1 << 20));
        if (bytes <= KEPT_COMPRESSED_BYTES) {
            compressed = b;
        }
        return b;
    }

    private static final ThreadLocal<ByteBuffer> SCRATCH = new ThreadLocal<>();

    /** A cluster-sized direct buffer of this thread, reused across requests. */
    private static ByteBuffer scratch(int size) {
        ByteBuffer b = SCRATCH.get();
        if (b == null || b.capacity() != size) {
            b = ByteBuffer.allocateDirect(size);
            SCRATCH.set(b);
        }
        return b;
    }

    private static ByteBuffer slice(ByteBuffer dst, int at, int n) {
        ByteBuffer s = dst.duplicate();
        s.limit(at + n).position(at);
        return s;
    }
}
