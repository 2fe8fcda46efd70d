package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;

import io.qcow4j.core.alloc.RefcountManager;
import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.format.L2Entry;

/**
 * Whole clusters of a guest write, all under one L2 table, in few requests: the clusters
 * that need a new host cluster get one contiguous run of them at once, each run of host
 * clusters that follow one another is written with one positional write, and the L2
 * entries are updated together.
 *
 * <p>The order of {@link ImageIo}'s one-cluster path holds for the batch: the new clusters'
 * refcounts, then the data, then the L2 entries, then the old clusters' references are
 * dropped. A process killed anywhere leaks the new clusters at worst.
 */
final class BulkWrite {
    private final ImageIo io;
    private final ClusterMapper mapper;
    private final Geometry geo;
    private final RefcountManager refcounts;

    BulkWrite(ImageIo io, ClusterMapper mapper, Geometry geo, RefcountManager refcounts) {
        this.io = io;
        this.mapper = mapper;
        this.geo = geo;
        this.refcounts = refcounts;
    }

    /**
     * Writes {@code src} (whole clusters, under one L2 table) at cluster-aligned guest
     * {@code offset}; consumes it.
     */
    void write(long offset, ByteBuffer src) throws IOException {
        int cs = geo.clusterSize();
        int k = src.remaining() >>> geo.clusterBits();
        boolean ext = geo.extendedL2();
        int words = geo.l2EntryWords();
        long l2 = mapper.writableL2Table(offset);
        int idx0 = mapper.l2Index(offset);
        long[] table = mapper.cache().table(l2);
        long[] old = new long[k];
        long[] host = new long[k];
        boolean[] fresh = new boolean[k];
        int freshCount = 0;
        for (int j = 0; j < k; j++) {
            int idx = idx0 + j;
            long entry = table[idx * words];
            old[j] = entry;
            boolean compressed = L2Entry.isCompressed(entry);
            if (!compressed && io.isAllocated(entry) && (L2Entry.isCopied(entry) || io.hasDataFile())) {
                host[j] = mapper.checkedHostForWrite(entry, l2, idx);
                continue;
            }
            if (ext && !compressed && !io.isAllocated(entry) && (table[idx * 2 + 1] & L2Entry.ALL_ALLOCATED) != 0) {
                // the reads refuse this entry too; a write must not quietly give it fresh zeros
                throw new CorruptImageException("L2 table", l2 + 16L * idx, "allocated subcluster without a host offset");
            }
            io.requireReleasable(entry, l2, idx);
            fresh[j] = true;
            freshCount++;
        }
        long first = 0;
        if (freshCount > 0) {
            first = io.hasDataFile() ? -1 : refcounts.allocate(freshCount, false);
            int f = 0;
            for (int j = 0; j < k; j++) {
                if (fresh[j]) {
                    host[j] = io.hasDataFile() ? offset + (long) j * cs : first + (long) f++ * cs;
                }
            }
        }
        int base = src.position();
        try {
            for (int j = 0; j < k; ) {
                int r = j + 1;
                while (r < k && host[r] == host[r - 1] + cs) {
                    r++;
                }
                ByteBuffer part = src.duplicate();
                part.limit(base + r * cs).position(base + j * cs);
                io.data().write(host[j], part);
                j = r;
            }
        } catch (IOException e) {
            if (freshCount > 0 && !io.hasDataFile()) {
                try {
                    refcounts.free(first, (long) freshCount * cs);
                } catch (IOException ignored) {
                    // the clusters stay leaked: harmless
                }
            }
            throw e;
        }
        src.position(base + k * cs);
        long[] entries = new long[k * words];
        for (int j = 0; j < k; j++) {
            if (fresh[j] || ext) {
                entries[j * words] = L2Entry.standard(host[j], true);
            } else {
                // in place; a preallocated zero cluster loses its zero flag
                entries[j] = old[j] & ~L2Entry.ZERO;
            }
            if (ext) {
                entries[j * 2 + 1] = L2Entry.ALL_ALLOCATED;
            }
        }
        mapper.setEntries(l2, idx0, entries, k);
        for (int j = 0; j < k; j++) {
            if (fresh[j]) {
                io.release(old[j], l2, idx0 + j);
            }
        }
    }
}
