package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

import io.qcow4j.core.alloc.RefcountManager;
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
    private final BulkRead bulkRead;
    private final BulkWrite bulkWrite;

    public GuestRanges(ImageIo io, ClusterMapper mapper, Geometry geo, RefcountManager refcounts) {
        this.io = io;
        this.mapper = mapper;
        this.geo = geo;
        this.bulkRead = new BulkRead(io, mapper, geo);
        this.bulkWrite = new BulkWrite(io, mapper, geo, refcounts);
    }

    /** Reads {@code dst.remaining()} bytes at {@code offset}; past {@code diskSize} reads zeros. */
    public void read(long offset, ByteBuffer dst, long diskSize) throws IOException {
        if (offset < diskSize && dst.hasRemaining()) {
            int n = (int) Math.min(dst.remaining(), diskSize - offset);
            ByteBuffer part = dst.duplicate();
            part.limit(part.position() + n);
            bulkRead.read(offset, part);
            dst.position(dst.position() + n);
        }
        ImageIo.zeroFill(dst);
    }

    /** See {@link BulkRead#hostRun}; -1 for a range not all inside the disk. */
    public long hostRun(long offset, long length, long diskSize) throws IOException {
        return offset < 0 || length <= 0 || offset + length > diskSize ? -1 : bulkRead.hostRun(offset, length);
    }

    /**
     * As {@link #read}, with the runs of data clusters returned unread (see
     * {@link BulkRead#readPlanned}); everything else of {@code dst} is filled in.
     */
    public List<DataRead> readPlanned(long offset, ByteBuffer dst, long diskSize) throws IOException {
        List<DataRead> data = List.of();
        if (offset < diskSize && dst.hasRemaining()) {
            int n = (int) Math.min(dst.remaining(), diskSize - offset);
            ByteBuffer part = dst.duplicate();
            part.limit(part.position() + n);
            data = bulkRead.readPlanned(offset, part);
            dst.position(dst.position() + n);
        }
        ImageIo.zeroFill(dst);
        return data;
    }

    /**
     * Writes {@code src} at {@code offset}: the whole clusters under each L2 table in one
     * batch ({@link BulkWrite}), a cluster written in part through the copy-on-write of
     * {@link ImageIo#writeInCluster}.
     */
    public void write(long offset, ByteBuffer src) throws IOException {
        int cs = geo.clusterSize();
        long coverage = geo.l2Coverage();
        while (src.hasRemaining()) {
            int in = geo.offsetInCluster(offset);
            int n;
            ByteBuffer part = src.duplicate();
            if (in == 0 && src.remaining() >= cs) {
                long tableEnd = (offset / coverage + 1) * coverage;
                n = (int) Math.min((long) (src.remaining() / cs) * cs, tableEnd - offset);
                part.limit(part.position() + n);
                bulkWrite.write(offset, part);
            } else {
                n = Math.min(src.remaining(), cs - in);
                part.limit(part.position() + n);
                io.writeInCluster(offset, part);
            }
            src.position(src.position() + n);
            offset += n;
        }
    }

    /** Whether a guest range reads as zeros, by the chain's block status (no data is read). */
    public interface ZeroProbe {
        boolean readsZero(long offset, long length) throws IOException;
    }

    /**
     * Makes a range read as zeros: with {@code zeroFlags} (v3; or v2 without a backing
     * file, where an unmapped cluster reads as zeros and QEMU unmaps) whole clusters
     * without data, zero subclusters with extended L2 entries; zero data elsewhere. As in QEMU, a cluster
     * (subcluster) the range covers only in part still becomes a zero one when it maps no
     * data and {@code probe} finds the rest of it reading as zeros already.
     */
    public void writeZeroes(long offset, long length, long diskSize, boolean zeroFlags, ZeroProbe probe)
            throws IOException {
        long end = offset + length;
        int cs = geo.clusterSize();
        int sc = geo.subclusterSize();
        while (offset < end) {
            long cstart = geo.clusterStart(offset);
            long cend = Math.min(cstart + cs, diskSize);
            long n = Math.min(end, cstart + cs) - offset;
            if (zeroFlags && offset == cstart && offset + n >= cend) {
                io.zeroes().zeroCluster(offset, false);
            } else if (zeroFlags && geo.extendedL2() && !L2Entry.isCompressed(io.entryAt(offset))) {
                zeroPartialCluster(offset, n, sc, diskSize, probe);
            } else if (zeroFlags) {
                zeroInUnit(offset, n, cs, diskSize, probe);
            } else {
                writeZeroData(offset, n);
            }
            offset += n;
        }
    }

    /** Zero flags for the whole subclusters of the range; its ragged ends as {@link #zeroInUnit}. */
    private void zeroPartialCluster(long offset, long n, int sc, long diskSize, ZeroProbe probe) throws IOException {
        long end = offset + n;
        long firstFull = (offset + sc - 1) / sc * sc;
        long lastFull = end / sc * sc;
        long headEnd = Math.min(firstFull, end);
        if (offset < headEnd) {
            zeroInUnit(offset, headEnd - offset, sc, diskSize, probe);
        }
        if (firstFull < lastFull) {
            long cstart = geo.clusterStart(offset);
            io.zeroes().zeroSubclusters(offset, (int) ((firstFull - cstart) / sc), (int) ((lastFull - cstart) / sc) - 1);
        }
        long tailStart = Math.max(lastFull, headEnd);
        if (tailStart < end) {
            zeroInUnit(tailStart, end - tailStart, sc, diskSize, probe);
        }
    }

    /**
     * Zeros part of one cluster ({@code unit} = cluster size) or subcluster: the whole unit
     * becomes a zero one when it maps no data of its own and the rest of it reads as zeros
     * (QEMU's choice, so the image maps as QEMU's twin does); otherwise zero data is written.
     */
    private void zeroInUnit(long offset, long n, int unit, long diskSize, ZeroProbe probe) throws IOException {
        long ustart = offset / unit * unit;
        long uend = Math.min(ustart + unit, diskSize);
        long end = offset + n;
        if (mapsNoData(offset) && probe.readsZero(ustart, offset - ustart) && probe.readsZero(end, uend - end)) {
            if (geo.extendedL2()) {
                int sub = geo.offsetInCluster(ustart) / unit;
                io.zeroes().zeroSubclusters(ustart, sub, sub);
            } else {
                io.zeroes().zeroCluster(ustart, false);
            }
        } else {
            writeZeroData(offset, n);
        }
    }

    /** The cluster (with extended L2, the subcluster) at {@code offset} is unallocated or zero. */
    private boolean mapsNoData(long offset) throws IOException {
        long entry = io.entryAt(offset);
        if (L2Entry.isCompressed(entry)) {
            return false;
        }
        if (geo.extendedL2()) {
            return !L2Entry.subAllocated(io.bitmapAt(offset), geo.offsetInCluster(offset) / geo.subclusterSize());
        }
        return !io.isAllocated(entry) || L2Entry.isZero(entry);
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
                io.zeroes().zeroCluster(c, true);
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
                io.zeroes().unmapCluster(off);
            }
        }
    }
}
