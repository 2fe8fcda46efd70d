package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.format.L2Entry;

/**
 * Clusters that read as zeros without data, or as whatever lies below: the zero flag (v3),
 * the subcluster zero bits (extended L2), an unallocated entry. Write zeroes, discard,
 * resize and commit's emptying end here. As for every write of {@link ImageIo}, the new
 * entry is written before the reference the old one held is dropped.
 */
final class ZeroClusters {
    private final ImageIo io;
    private final ClusterMapper mapper;
    private final Geometry geo;

    ZeroClusters(ImageIo io, ClusterMapper mapper, Geometry geo) {
        this.io = io;
        this.mapper = mapper;
        this.geo = geo;
    }

    /**
     * Makes one whole cluster read as zeros without writing data (v3). With
     * {@code discard} the entry may become unallocated where nothing shows through.
     */
    void zeroCluster(long offset, boolean discard) throws IOException {
        long l2 = mapper.l2Table(offset);
        BlockDevice backing = io.backing();
        boolean backed = backing != null && offset < backing.size();
        if (l2 == 0 && !backed && (discard || geo.version() < 3)) {
            // a discard where nothing shows through has nothing to do, nor has a v2 zero
            // write (which unmaps); a v3 zero write still records zero flags, as QEMU does
            // (qemu-img map reports them present)
            return;
        }
        l2 = mapper.writableL2Table(offset);
        int idx = mapper.l2Index(offset);
        long entry = mapper.entry(l2, idx);
        long newEntry;
        long newBitmap = 0;
        if (geo.extendedL2()) {
            newEntry = 0;
            newBitmap = backed || !discard ? L2Entry.ALL_ZERO : 0;
        } else if (geo.version() >= 3 && (backed || !discard || io.isAllocated(entry))) {
            newEntry = L2Entry.ZERO;
        } else {
            newEntry = 0;
        }
        if (io.hasDataFile() && io.isAllocated(entry) && !L2Entry.isCompressed(entry)) {
            if (io.dataFileRaw()) {
                // the data file must stay a valid raw image: real zeros
                io.data().write(geo.clusterStart(offset), ByteBuffer.allocate(geo.clusterSize()));
                return;
            }
            newEntry = geo.extendedL2() ? entry : (entry | L2Entry.ZERO);
        }
        if (newEntry == entry && newBitmap == mapper.bitmap(l2, idx)) {
            return;
        }
        io.requireReleasable(entry, l2, idx);
        mapper.setEntry(l2, idx, newEntry, newBitmap);
        if (!io.hasDataFile() || L2Entry.isCompressed(entry)) {
            io.release(entry, l2, idx);
        }
    }

    /**
     * Makes one whole cluster read as zeros whatever lies below, keeping a host cluster it
     * has (QEMU's zeroing without unmap, v3): the zero flag, or with extended L2 every
     * subcluster zero. A compressed cluster is dropped.
     */
    void zeroClusterKeepingHost(long offset) throws IOException {
        long l2 = mapper.writableL2Table(offset);
        int idx = mapper.l2Index(offset);
        long entry = mapper.entry(l2, idx);
        long bitmap = mapper.bitmap(l2, idx);
        boolean compressed = L2Entry.isCompressed(entry);
        long newEntry = compressed ? 0 : entry;
        long newBitmap = bitmap;
        if (geo.extendedL2()) {
            newBitmap = L2Entry.ALL_ZERO;
        } else {
            newEntry |= L2Entry.ZERO;
        }
        if (newEntry == entry && newBitmap == bitmap) {
            return;
        }
        mapper.setEntry(l2, idx, newEntry, newBitmap);
        if (compressed) {
            io.release(entry, l2, idx);
        }
    }

    /** With extended L2: marks subclusters {@code s0..s1} zero. */
    void zeroSubclusters(long offset, int s0, int s1) throws IOException {
        long l2 = mapper.writableL2Table(offset);
        int idx = mapper.l2Index(offset);
        long entry = mapper.entry(l2, idx);
        long bitmap = mapper.bitmap(l2, idx);
        long range = L2Entry.allocRange(s0, s1);
        long newBitmap = (bitmap & ~range) | (range << 32);
        if (L2Entry.isCompressed(entry)) {
            throw new IllegalStateException("subcluster zeroing of a compressed cluster");
        }
        if (io.isAllocated(entry) && !L2Entry.isCopied(entry) && !io.hasDataFile()) {
            // shared host cluster: write the zeros as data through the COW path instead
            io.writeInCluster(geo.clusterStart(offset) + (long) s0 * geo.subclusterSize(),
                    ByteBuffer.allocate((s1 - s0 + 1) * geo.subclusterSize()));
            return;
        }
        mapper.setEntry(l2, idx, entry, newBitmap);
    }

    /**
     * Makes the cluster at {@code offset} unallocated (entry 0): whatever lies below shows
     * through again. The entry goes first, the reference is dropped after.
     */
    void unmapCluster(long offset) throws IOException {
        long l2 = mapper.l2Table(offset);
        if (l2 == 0) {
            return;
        }
        int idx = mapper.l2Index(offset);
        long entry = mapper.entry(l2, idx);
        if (entry == 0 && mapper.bitmap(l2, idx) == 0) {
            return;
        }
        io.requireReleasable(entry, l2, idx);
        l2 = mapper.writableL2Table(offset);
        mapper.setEntry(l2, idx, 0, 0);
        if (!io.hasDataFile() || L2Entry.isCompressed(entry)) {
            io.release(entry, l2, idx);
        }
    }
}
