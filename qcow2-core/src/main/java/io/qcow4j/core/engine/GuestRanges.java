package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;

import io.qcow4j.core.format.L2Entry;

/**
 * Guest requests that span clusters, cut into the per-cluster steps of {@link ImageIo}.
 * The caller checks the range, sets the bitmaps' in_use flags before and records the
 * dirty range after; nothing here touches the header or the bitmaps.
 */
public final class GuestRanges {
    private final ImageIo io;
    private final ClusterMapper mapper;
    private final Geometry geo;

    public GuestRanges(ImageIo io, ClusterMapper mapper, Geometry geo) {
        this.io = io;
        this.mapper = mapper;
        this.geo = geo;
    }

    /** Reads {@code dst.remaining()} bytes at {@code offset}; past {@code diskSize} reads zeros. */
    public void read(long offset, ByteBuffer dst, long diskSize) throws IOException {
        int cs = geo.clusterSize();
        while (dst.hasRemaining()) {
            if (offset >= diskSize) {
                ImageIo.zeroFill(dst);
                return;
            }
            int n = (int) Math.min(Math.min(dst.remaining(), cs - geo.offsetInCluster(offset)), diskSize - offset);
            ByteBuffer part = dst.duplicate();
            part.limit(part.position() + n);
            io.readInCluster(offset, part);
            dst.position(dst.position() + n);
            offset += n;
        }
    }

    /** Writes {@code src} at {@code offset}, one cluster at a time. */
    public void write(long offset, ByteBuffer src) throws IOException {
        int cs = geo.clusterSize();
        while (src.hasRemaining()) {
            int n = Math.min(src.remaining(), cs - geo.offsetInCluster(offset));
            ByteBuffer part = src.duplicate();
            part.limit(part.position() + n);
            io.writeInCluster(offset, part);
            src.position(src.position() + n);
            offset += n;
        }
    }

    /**
     * Makes a range read as zeros: zero flags for whole clusters (v3, {@code zeroFlags}),
     * zero subclusters with extended L2 entries, zero data elsewhere.
     */
    public void writeZeroes(long offset, long length, long diskSize, boolean zeroFlags) throws IOException {
        long end = offset + length;
        int cs = geo.clusterSize();
        int sc = geo.subclusterSize();
        while (offset < end) {
            long cstart = geo.clusterStart(offset);
            long cend = Math.min(cstart + cs, diskSize);
            long n = Math.min(end, cstart + cs) - offset;
            if (zeroFlags && offset == cstart && offset + n >= cend) {
                io.zeroCluster(offset, false);
            } else if (zeroFlags && geo.extendedL2() && !L2Entry.isCompressed(io.entryAt(offset))) {
                zeroPartialCluster(offset, n, sc);
            } else {
                writeZeroData(offset, n);
            }
            offset += n;
        }
    }

    /** Zero flags for the whole subclusters of the range, zero data for its ragged ends. */
    private void zeroPartialCluster(long offset, long n, int sc) throws IOException {
        long end = offset + n;
        long firstFull = (offset + sc - 1) / sc * sc;
        long lastFull = end / sc * sc;
        if (firstFull >= lastFull) {
            writeZeroData(offset, n);
            return;
        }
        if (offset < firstFull) {
            writeZeroData(offset, firstFull - offset);
        }
        long cstart = geo.clusterStart(offset);
        io.zeroSubclusters(offset, (int) ((firstFull - cstart) / sc), (int) ((lastFull - cstart) / sc) - 1);
        if (lastFull < end) {
            writeZeroData(lastFull, end - lastFull);
        }
    }

    private void writeZeroData(long offset, long n) throws IOException {
        io.writeInCluster(offset, ByteBuffer.allocate((int) n));
    }

    /** Frees the clusters the range covers whole (the disk's tail cluster counts as whole). */
    public void discard(long offset, long length, long diskSize) throws IOException {
        long end = offset + length;
        int cs = geo.clusterSize();
        long c = geo.clusterStart(offset + cs - 1);
        while (c < end) {
            long cend = Math.min(c + cs, diskSize);
            if (c >= offset && cend <= end) {
                io.zeroCluster(c, true);
            }
            c += cs;
        }
    }

    /** Unmaps every cluster under an allocated L2 table, so the backing file shows through. */
    public void unmapAll(long diskSize) throws IOException {
        int cs = geo.clusterSize();
        for (int i = 0; i < mapper.l1Size(); i++) {
            long start = i * geo.l2Coverage();
            if (mapper.l2Table(start) == 0) {
                continue;
            }
            long end = Math.min(diskSize, start + geo.l2Coverage());
            for (long off = start; off < end; off += cs) {
                io.unmapCluster(off);
            }
        }
    }
}
