package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.format.L2Entry;

/**
 * Changes the disk size so that no byte from before ever reads back in the new range.
 *
 * <p>Shrink, in this order (a process killed at any step leaves at worst leaked clusters,
 * and never an old size over unmapped clusters, which would show the backing file):
 * <ol>
 * <li>bitmaps in_use (their stored size may go stale from here on);</li>
 * <li>the new size in the header (flushed): from here the rest is invisible;</li>
 * <li>the cluster the new end cuts through: zero data over its allocated bytes past the
 *     end, and with extended L2 the subclusters wholly past it given zero flags (never
 *     unallocated, which would show the backing file), so a later grow, by us or by QEMU,
 *     reads zeros there even without a backing file;</li>
 * <li>every L2 entry past the new end cleared, then its cluster's refcount dropped;</li>
 * <li>each L2 table wholly past the end: its L1 entry cleared, then the table freed;</li>
 * <li>refcount blocks that count nothing but themselves dropped, then the file cut after
 *     the last cluster in use (as qemu-img); an external data file cut at the new size.</li>
 * </ol>
 *
 * <p>Grow: the L1 table grown, a data file grown (a raw one's new clusters mapped, as QEMU
 * does), then the new range made to read as zeros before the header's new size makes it
 * visible. Over a backing file longer than the old size that is QEMU's way: zero data to
 * the next subcluster boundary, zero flags after it. Otherwise (beyond QEMU) stale bytes in
 * the cluster the old end cut through are zeroed, and any entry a foreign shrink left past
 * the old end is unmapped.
 */
final class ImageResizer {
    private ImageResizer() {
    }

    /** Grows or shrinks the disk (see Qcow2Image.resize and resizeDiscarding). */
    static void resize(Qcow2Engine img, long newSize, boolean discard) throws IOException {
        img.ensureWritable();
        if (newSize < 0) {
            throw new IllegalArgumentException("Image size must be non-negative");
        }
        checkResizable(img, newSize);
        if (newSize < img.header().size()) {
            if (!discard) {
                checkShrinkable(img, newSize);
            }
            shrink(img, newSize);
        } else if (newSize > img.header().size()) {
            grow(img, newSize, false);
        }
    }

    /** Grows the disk as qemu-img resize --preallocation=MODE (OFF: a plain resize). */
    static void resizePreallocated(Qcow2Engine img, long newSize, CreateOptions.Preallocation mode) throws IOException {
        img.ensureWritable();
        if (newSize < img.header().size()) {
            throw new IOException("Preallocation can only be used for growing images");
        }
        checkResizable(img, newSize);
        if (mode == CreateOptions.Preallocation.OFF) {
            resize(img, newSize, false);
        } else if (newSize > img.header().size()) {
            growPreallocated(img, newSize, mode);
        }
    }

    /** Gives a new, empty image its size: nothing is zeroed, the backing file shows through. */
    static void setInitialSize(Qcow2Engine img, long size) throws IOException {
        img.ensureWritable();
        if (size > img.header().size()) {
            grow(img, size, true);
        }
    }

    /** QEMU's refusals, before anything changes. */
    static void checkResizable(Qcow2Engine img, long newSize) throws IOException {
        if (newSize == img.header().size()) {
            return;
        }
        if (img.header().version() < 3 && !img.snapshotEntries.isEmpty()) {
            throw new IOException("Can't resize a v2 image which has snapshots");
        }
        img.bitmaps.checkResizable();
        if (newSize > img.header().size() && backingShowsThrough(img, img.header().size())
                && img.header().version() < 3 && newSize > alignUp(img.header().size(), img.geo.subclusterSize())) {
            // v2 has no zero flag to hide the backing file's data with (qemu-img fails the same way)
            throw new IOException("Failed to zero out new clusters: Operation not supported");
        }
    }

    /** Refuses a shrink that would drop data: a whole cluster past the new end maps something. */
    static void checkShrinkable(Qcow2Engine img, long newSize) throws IOException {
        int cs = img.geo.clusterSize();
        long first = alignUp(newSize, cs);
        for (long off = first; off < img.header().size(); ) {
            if (img.mapper.l2Table(off) == 0) {
                off = nextTable(img.geo, off);
                continue;
            }
            long entry = img.io.entryAt(off);
            if (img.io.isAllocated(entry)) {
                throw new IOException("Cannot shrink the image: data is allocated at offset " + off
                        + ", past the new size " + newSize);
            }
            off += cs;
        }
    }

    static void shrink(Qcow2Engine img, long newSize) throws IOException {
        long old = img.header().size();
        img.mapper.checkWritable(newSize, old - newSize);
        img.bitmaps.beforeGuestWrite();
        // the smaller size durable first: clearing the cut cluster's tail unmaps subclusters,
        // and under the old size the backing file would show through them after a crash
        // (a crash between leaves the tail as it was, which the next grow clears)
        setSize(img, newSize);
        if (img.dataFile == null) {
            clearCutCluster(img, newSize, old);
        }
        unmapPast(img, newSize);
        for (int i = (int) img.geo.l1EntriesFor(newSize); i < img.mapper.l1Size(); i++) {
            img.mapper.dropL2Table(i);
        }
        // the freed clusters' refcounts lowered (their references gone on disk) before
        // the blocks are judged empty and the file is cut after the last one in use
        img.syncMetadata();
        img.refcounts.dropEmptyBlocks();
        img.syncMetadata();
        truncateFile(img);
        if (img.dataFile != null) {
            // the bytes past the end go with it, so a later grow reads zeros there (as QEMU)
            img.dataFile.truncate(newSize);
        }
        img.storage.flush();
    }

    /**
     * Grows the disk. {@code fresh}: a new image being given its size, where nothing can
     * be stale and the backing file's data is meant to show through.
     */
    static void grow(Qcow2Engine img, long newSize, boolean fresh) throws IOException {
        long old = img.header().size();
        img.mapper.checkWritable(old, newSize - old);
        if (!fresh) {
            img.bitmaps.beforeGuestWrite();
        }
        long entries = img.geo.l1EntriesFor(newSize);
        if (entries > img.mapper.l1Size()) {
            img.mapper.growL1((int) Math.min(entries, Integer.MAX_VALUE), img.headerCluster::l1Moved);
        }
        if (img.dataFile != null && img.dataFile.length() < newSize) {
            img.dataFile.extend(newSize);
        } else if (img.dataFile != null && !img.header().dataFileRaw() && !fresh) {
            // qemu-img cuts a data file to the exact size; a raw one keeps its bytes (they are the disk)
            img.dataFile.truncate(newSize);
        }
        if (img.header().dataFileRaw()) {
            // the raw file is the disk: its bytes past the old end are the new range's data
            preallocate(img, img.geo.clusterStart(old), newSize, CreateOptions.Preallocation.METADATA);
        } else if (!fresh && backingShowsThrough(img, old)) {
            zeroNewRange(img, old, newSize);
        } else if (!fresh) {
            clearStale(img, old, newSize);
        }
        setSize(img, newSize);
    }

    /**
     * Maps {@code [from, to)} (cluster-aligned start) to new clusters: preallocation=metadata
     * leaves their data as holes (on a fresh file; clusters reused inside an older file are
     * zeroed), falloc and full write zeros into them; for a raw data file the clusters are
     * the data file's own (host offset = guest offset). With subclusters every subcluster is
     * left unallocated, as qemu-img leaves them.
     */
    static void preallocate(Qcow2Engine img, long from, long to, CreateOptions.Preallocation mode) throws IOException {
        preallocate(img, from, to, mode, false);
    }

    /** {@code zeroFlag}: the new clusters read as zeros by their flag, over holes (QEMU's way over a backing file). */
    private static void preallocate(Qcow2Engine img, long from, long to, CreateOptions.Preallocation mode,
            boolean zeroFlag) throws IOException {
        if (img.encryption != null) {
            // preallocated clusters hold plain zeros or holes, which decrypt to noise, not zeros
            throw new UnsupportedOperationException("qcow4j does not preallocate encrypted images");
        }
        Geometry geo = img.geo;
        int cs = geo.clusterSize();
        boolean fill = mode == CreateOptions.Preallocation.FALLOC || mode == CreateOptions.Preallocation.FULL;
        for (long start = from; start < to; ) {
            long tableEnd = Math.min(to, nextTable(geo, start));
            long l2 = img.mapper.writableL2Table(start);
            int clusters = (int) ((tableEnd - start + cs - 1) / cs);
            long fileEnd = img.storage.length();
            long host = img.dataFile != null ? start : img.refcounts.allocate(clusters, false);
            int first = img.mapper.l2Index(start);
            if (img.dataFile == null && (fill || host < fileEnd && !zeroFlag)) {
                // real zero bytes: asked for, or over clusters an older file may have used
                writeZeros(img.storage, host, (long) clusters * cs);
            }
            for (int i = 0; i < clusters; i++) {
                if (img.dataFile != null && img.io.isAllocated(img.mapper.entry(l2, first + i))) {
                    continue;
                }
                long entry = L2Entry.standard(host + (long) i * cs, true);
                if (zeroFlag && !geo.extendedL2()) {
                    entry |= L2Entry.ZERO;
                }
                img.mapper.setEntry(l2, first + i, entry, zeroFlag && geo.extendedL2() ? L2Entry.ALL_ZERO : 0);
            }
            if (img.dataFile == null) {
                img.storage.extend(host + (long) clusters * cs);
            }
            start = tableEnd;
        }
        if (fill && img.dataFile != null) {
            fillDataFile(img, from, to);
        }
        img.storage.flush();
    }

    /** preallocation=falloc|full of an external data file: its bytes in {@code [from, to)} made real zeros. */
    static void fillDataFile(Qcow2Engine img, long from, long to) throws IOException {
        writeZeros(img.dataFile, from, to - from);
        img.dataFile.flush();
    }

    private static void writeZeros(io.qcow4j.core.storage.Storage s, long offset, long len) throws IOException {
        ByteBuffer zeros = ByteBuffer.allocate((int) Math.min(len, 1 << 20));
        for (long done = 0; done < len; ) {
            int n = (int) Math.min(zeros.capacity(), len - done);
            zeros.clear().limit(n);
            s.write(offset + done, zeros);
            done += n;
        }
    }

    /**
     * resize --preallocation: grows as {@link #grow}, then maps the new whole clusters as
     * {@code mode} asks (a kill between the two leaves a grown image without them).
     */
    static void growPreallocated(Qcow2Engine img, long newSize, CreateOptions.Preallocation mode) throws IOException {
        long old = img.header().size();
        boolean zeroFlag = mode == CreateOptions.Preallocation.METADATA && img.header().version() >= 3
                && backingShowsThrough(img, old);
        grow(img, newSize, false);
        long from = alignUp(old, img.geo.clusterSize());
        if (from < newSize) {
            preallocate(img, from, newSize, mode, zeroFlag);
        }
    }

    // ------------------------------------------------------------ shrink steps

    /**
     * The cluster {@code newSize} cuts through (if any): nothing past the new end in it may
     * read back after a later grow.
     */
    static void clearCutCluster(Qcow2Engine img, long newSize, long old) throws IOException {
        Geometry geo = img.geo;
        if (geo.aligned(newSize)) {
            return;
        }
        long cstart = geo.clusterStart(newSize);
        long end = Math.min(old, cstart + geo.clusterSize());
        int sc = geo.subclusterSize();
        boolean subclusters = geo.extendedL2() && !L2Entry.isCompressed(img.io.entryAt(cstart));
        // with subclusters only the one the end cuts through keeps data: the others lose their bits below
        zeroAllocated(img, newSize, subclusters ? Math.min(end, alignUp(newSize, sc)) : end);
        if (!geo.extendedL2() || img.mapper.l2Table(cstart) == 0) {
            return;
        }
        int firstWhole = (int) ((alignUp(newSize, sc) - cstart) / sc);
        long entry = img.io.entryAt(cstart);
        long bitmap = img.io.bitmapAt(cstart);
        if (firstWhole >= L2Entry.SUBCLUSTERS || L2Entry.isCompressed(entry)) {
            return;
        }
        long range = L2Entry.allocRange(firstWhole, L2Entry.SUBCLUSTERS - 1);
        // zero flags, not unallocated: the old size is still in the header, and an
        // unallocated subcluster would show the backing file if the process died here
        long cleared = (bitmap & ~range) | (range << 32);
        if (cleared != bitmap) {
            long l2 = img.mapper.writableL2Table(cstart);
            int idx = img.mapper.l2Index(cstart);
            // re-read: a copy-on-write of the L2 table keeps the entry as it was
            img.mapper.setEntry(l2, idx, img.mapper.entry(l2, idx), cleared);
        }
    }

    /** Clears every L2 entry from the first whole cluster past {@code newSize} to the end of the L1 table's reach. */
    private static void unmapPast(Qcow2Engine img, long newSize) throws IOException {
        Geometry geo = img.geo;
        int cs = geo.clusterSize();
        long limit = img.mapper.l1Size() * geo.l2Coverage();
        for (long off = alignUp(newSize, cs); off < limit; ) {
            if (img.mapper.l2Table(off) == 0) {
                off = nextTable(geo, off);
                continue;
            }
            img.io.zeroes().unmapCluster(off);
            off += cs;
        }
    }

    /** Cuts the image file after its last cluster with a non-zero refcount (qemu-img does the same). */
    private static void truncateFile(Qcow2Engine img) throws IOException {
        int cs = img.geo.clusterSize();
        long length = img.storage.length();
        long last = (length + cs - 1) / cs - 1;
        while (last > 0 && img.refcounts.get(last) == 0) {
            last--;
        }
        long end = (last + 1) * cs;
        if (end < length) {
            img.storage.flush();
            img.storage.truncate(end);
        }
    }

    // ------------------------------------------------------------ grow steps

    /** Does the backing file (or, unopened, possibly) show data at {@code offset} and past it? */
    private static boolean backingShowsThrough(Qcow2Engine img, long offset) {
        if (img.header().backingFile() == null) {
            return false;
        }
        BlockDevice backing = img.io.backing();
        if (backing == null) {
            return true; // not opened: its size is unknown, so hide it
        }
        return alignUp(backing.size(), 512) > offset;
    }

    /**
     * As QEMU over a longer backing file: zero data from the old end to the next
     * subcluster boundary, then zero flags (whole clusters, or the rest of the subclusters
     * of the cluster the old end cut through) up to the new end.
     */
    private static void zeroNewRange(Qcow2Engine img, long old, long newSize) throws IOException {
        Geometry geo = img.geo;
        int cs = geo.clusterSize();
        int sc = geo.subclusterSize();
        long zs = alignUp(old, sc);
        long headEnd = Math.min(zs, newSize);
        if (headEnd > old) {
            writeZeroData(img, old, headEnd - old);
        }
        for (long off = zs; off < newSize; ) {
            long cstart = geo.clusterStart(off);
            long cend = Math.min(cstart + cs, newSize);
            if (off == cstart) {
                img.io.zeroes().zeroClusterKeepingHost(cstart);
            } else if (L2Entry.isCompressed(img.io.entryAt(cstart))) {
                writeZeroData(img, off, cend - off);
            } else {
                // the end is the disk's end: round it up to a whole subcluster, as QEMU does
                int s0 = (int) ((off - cstart) / sc);
                int s1 = (int) ((alignUp(cend, sc) - cstart) / sc) - 1;
                img.io.zeroes().zeroSubclusters(off, s0, s1);
            }
            off = cstart + cs;
        }
    }

    /** No backing data can show: only what an earlier shrink left behind must go. */
    private static void clearStale(Qcow2Engine img, long old, long newSize) throws IOException {
        Geometry geo = img.geo;
        int cs = geo.clusterSize();
        if (!geo.aligned(old)) {
            zeroAllocated(img, old, Math.min(newSize, geo.clusterStart(old) + cs));
        }
        for (long off = alignUp(old, cs); off < newSize; ) {
            if (img.mapper.l2Table(off) == 0) {
                off = nextTable(geo, off);
                continue;
            }
            long entry = img.io.entryAt(off);
            if (img.io.isAllocated(entry) || (img.io.bitmapAt(off) & L2Entry.ALL_ALLOCATED) != 0) {
                img.io.zeroes().unmapCluster(off);
            }
            off += cs;
        }
    }

    // ------------------------------------------------------------ helpers

    /**
     * Within one cluster: overwrites with zeros the bytes of {@code [from, to)} that this
     * layer holds data for (not zero flags, not unallocated subclusters), when not zero already.
     */
    private static void zeroAllocated(Qcow2Engine img, long from, long to) throws IOException {
        if (to <= from || img.mapper.l2Table(from) == 0) {
            return;
        }
        Geometry geo = img.geo;
        long entry = img.io.entryAt(from);
        if (L2Entry.isCompressed(entry) || !geo.extendedL2()) {
            boolean data = L2Entry.isCompressed(entry)
                    || (img.io.isAllocated(entry) && !(L2Entry.isZero(entry) && geo.version() >= 3));
            if (data) {
                zeroIfNot(img, from, to);
            }
            return;
        }
        long bitmap = img.io.bitmapAt(from);
        long cstart = geo.clusterStart(from);
        int sc = geo.subclusterSize();
        for (long s = from; s < to; ) {
            long subEnd = Math.min(to, cstart + ((s - cstart) / sc + 1) * sc);
            if (L2Entry.subAllocated(bitmap, (int) ((s - cstart) / sc))) {
                zeroIfNot(img, s, subEnd);
                bitmap = img.io.bitmapAt(from); // a write may have copied the cluster
            }
            s = subEnd;
        }
    }

    private static void zeroIfNot(Qcow2Engine img, long from, long to) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate((int) (to - from));
        img.io.readInCluster(from, buf);
        byte[] a = buf.array();
        for (byte b : a) {
            if (b != 0) {
                writeZeroData(img, from, to - from);
                return;
            }
        }
    }

    private static void writeZeroData(Qcow2Engine img, long offset, long length) throws IOException {
        int cs = img.geo.clusterSize();
        for (long off = offset; off < offset + length; ) {
            long n = Math.min(offset + length, img.geo.clusterStart(off) + cs) - off;
            img.io.writeInCluster(off, ByteBuffer.allocate((int) n));
            off += n;
        }
    }

    private static void setSize(Qcow2Engine img, long newSize) throws IOException {
        // the new range's zeros, the cut cluster's cleared tail durable before the size changes
        img.syncMetadata();
        img.bitmaps.resize(newSize);
        img.updateHeader(h -> h.withSize(newSize));
        img.writeHeader();
        img.storage.flush();
    }

    private static long nextTable(Geometry geo, long off) {
        return (off / geo.l2Coverage() + 1) * geo.l2Coverage();
    }

    static long alignUp(long v, long a) {
        return (v + a - 1) / a * a;
    }
}
