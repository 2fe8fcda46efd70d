package io.qcow4j.core.engine;

import java.io.IOException;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;
import io.qcow4j.core.format.L2Entry;

/** Block status of a run: per cluster (or subcluster run), merged while nothing changes. */
final class BlockStatusWalker {
    /** Where the L2 table for a guest offset is: the image's active L1 table, or a snapshot's. */
    interface L2Lookup {
        /** Validated L2 table offset for guest {@code offset}, or 0 when none is allocated. */
        long l2Table(long offset) throws IOException;
    }

    private BlockStatusWalker() {
    }

    static BlockStatus status(Qcow2Engine img, long offset, long length) throws IOException {
        return status(img, img.mapper::l2Table, img.header().size(), offset, length);
    }

    /** The status through the L2 tables {@code tables} finds, for a disk of {@code size} bytes. */
    static BlockStatus status(Qcow2Engine img, L2Lookup tables, long size, long offset, long length) throws IOException {
        if (offset < 0 || offset >= size || length <= 0) {
            throw new IllegalArgumentException("Block status out of range: offset " + offset + " (image size " + size + ")");
        }
        long end = Math.min(size, offset + length);
        BlockStatus first = shown(img, piece(img, tables, offset, end));
        long covered = first.length();
        // merge following pieces of the same kind, with contiguous host offsets
        while (offset + covered < end) {
            BlockStatus next = shown(img, piece(img, tables, offset + covered, end));
            if (!continues(first, covered, next)) {
                break;
            }
            covered += next.length();
        }
        return first.withRange(offset, covered);
    }

    /** QEMU gives no host offset for this layer's clusters of an encrypted image (the bytes there are not the guest's). */
    private static BlockStatus shown(Qcow2Engine img, BlockStatus s) {
        if (img.encryption == null || s.depth() != 0 || s.hostOffset() < 0) {
            return s;
        }
        return new BlockStatus(s.offset(), s.length(), s.allocated(), s.zero(), s.data(), s.depth(), -1, s.compressed());
    }

    /** The range reads as zeros by block status through the chain (QEMU's test before zeroing a whole cluster). */
    static boolean readsZero(Qcow2Engine img, long offset, long length) throws IOException {
        long end = Math.min(offset + length, img.header().size());
        while (offset < end) {
            BlockStatus st = status(img, offset, end - offset);
            if (!st.zero()) {
                return false;
            }
            offset += st.length();
        }
        return true;
    }

    /**
     * Whether this layer alone maps the run at {@code offset} (data, zero or compressed
     * clusters: QEMU's bdrv_is_allocated), and how far: clusters (with extended L2,
     * subclusters) of one kind, within one L2 table, as QEMU's qcow2 driver reports runs.
     */
    static BlockStatus own(Qcow2Engine img, long offset, long length) throws IOException {
        long size = img.header().size();
        if (offset < 0 || offset >= size || length <= 0) {
            throw new IllegalArgumentException("Block status out of range: offset " + offset + " (image size " + size + ")");
        }
        var geo = img.geo;
        long coverage = geo.l2Coverage();
        long end = Math.min(Math.min(size, offset + length), (offset / coverage + 1) * coverage);
        if (img.mapper.l2Table(offset) == 0) {
            return new BlockStatus(offset, end - offset, false, false, false, 0, -1, false);
        }
        int unit = geo.extendedL2() ? geo.subclusterSize() : geo.clusterSize();
        int kind = kind(img, offset);
        long pos = (offset / unit + 1) * unit;
        while (pos < end && kind(img, pos) == kind) {
            pos += unit;
        }
        boolean zero = kind == ZERO_PLAIN || kind == ZERO_ALLOC;
        return new BlockStatus(offset, Math.min(pos, end) - offset, kind >= NORMAL, zero, kind == NORMAL || kind == COMPRESSED,
                0, -1, kind == COMPRESSED);
    }

    private static final int UNALLOCATED_PLAIN = 0;
    private static final int UNALLOCATED_ALLOC = 1;
    private static final int NORMAL = 2;
    private static final int ZERO_PLAIN = 3;
    private static final int ZERO_ALLOC = 4;
    private static final int COMPRESSED = 5;

    /** QEMU's kind of the cluster (subcluster) at {@code offset}, whose L2 table exists. */
    private static int kind(Qcow2Engine img, long offset) throws IOException {
        long entry = img.io.entryAt(offset);
        if (L2Entry.isCompressed(entry)) {
            return COMPRESSED;
        }
        boolean allocated = img.io.isAllocated(entry);
        if (!img.geo.extendedL2()) {
            if (L2Entry.isZero(entry) && img.geo.version() >= 3) {
                return allocated ? ZERO_ALLOC : ZERO_PLAIN;
            }
            return allocated ? NORMAL : UNALLOCATED_PLAIN;
        }
        long bitmap = img.io.bitmapAt(offset);
        int sub = img.geo.offsetInCluster(offset) / img.geo.subclusterSize();
        if (L2Entry.subAllocated(bitmap, sub)) {
            return NORMAL;
        }
        if (L2Entry.subZero(bitmap, sub)) {
            return allocated ? ZERO_ALLOC : ZERO_PLAIN;
        }
        return allocated ? UNALLOCATED_ALLOC : UNALLOCATED_PLAIN;
    }

    private static boolean continues(BlockStatus a, long covered, BlockStatus b) {
        if (a.allocated() != b.allocated() || a.zero() != b.zero() || a.data() != b.data()
                || a.depth() != b.depth() || a.compressed() || b.compressed()) {
            return false;
        }
        if (a.hostOffset() < 0 || b.hostOffset() < 0) {
            return a.hostOffset() < 0 && b.hostOffset() < 0;
        }
        return a.hostOffset() + covered == b.hostOffset();
    }

    /** Status of the run at {@code offset} within its cluster. */
    private static BlockStatus piece(Qcow2Engine img, L2Lookup tables, long offset, long end) throws IOException {
        var geo = img.geo;
        long l2 = tables.l2Table(offset);
        if (l2 == 0) {
            // no L2 table: its whole range is unallocated in this layer (one step, not one per
            // cluster, on a huge sparse disk)
            long coverage = geo.l2Coverage();
            return below(img, offset, Math.min(end - offset, coverage - offset % coverage), -1);
        }
        int cs = geo.clusterSize();
        int in = geo.offsetInCluster(offset);
        long n = Math.min(end - offset, cs - in);
        int idx = img.mapper.l2Index(offset);
        long entry = img.mapper.entry(l2, idx);
        if (L2Entry.isCompressed(entry)) {
            return new BlockStatus(offset, n, true, false, true, 0, -1, true);
        }
        if (!geo.extendedL2()) {
            boolean allocated = img.io.isAllocated(entry);
            if (L2Entry.isZero(entry) && geo.version() >= 3) {
                long host = allocated ? img.mapper.checkedHost(entry, l2, idx) + in : -1;
                return new BlockStatus(offset, n, true, true, false, 0, host, false);
            }
            if (allocated) {
                return holes(img, new BlockStatus(offset, n, true, false, true, 0, img.mapper.checkedHost(entry, l2, idx) + in, false));
            }
            return below(img, offset, n, -1);
        }
        long bitmap = img.mapper.bitmap(l2, idx);
        int sc = geo.subclusterSize();
        int sub = in / sc;
        boolean alloc = L2Entry.subAllocated(bitmap, sub);
        boolean zero = !alloc && L2Entry.subZero(bitmap, sub);
        int last = sub + 1;
        while (last < 32 && L2Entry.subAllocated(bitmap, last) == alloc
                && (!alloc && L2Entry.subZero(bitmap, last)) == zero) {
            last++;
        }
        n = Math.min(n, (long) last * sc - in);
        // qemu reports the host offset of every subcluster of an allocated cluster, data or not
        long host = img.io.isAllocated(entry) ? img.mapper.checkedHost(entry, l2, idx) + in : -1;
        if (alloc) {
            return holes(img, new BlockStatus(offset, n, true, false, true, 0, host, false));
        }
        if (zero) {
            return new BlockStatus(offset, n, true, true, false, 0, host, false);
        }
        return below(img, offset, n, host);
    }

    /**
     * A data run of a metadata-preallocated image, cut where the host file's holes begin or
     * end; a hole (or the run past the file's end) reads as zeros, so it is reported as
     * zero and data both, as QEMU reports it.
     */
    private static BlockStatus holes(Qcow2Engine img, BlockStatus s) throws IOException {
        if (!img.holes.metadataPreallocated()) {
            return s;
        }
        long run = img.holes.run(s.hostOffset(), s.length());
        if (run == 0) {
            return s;
        }
        return new BlockStatus(s.offset(), Math.abs(run), true, run < 0, true, 0, s.hostOffset(), false);
    }

    /**
     * Nothing in this layer: what the backing file says, or (no backing file, or past its
     * end) an unallocated zero run of this layer, as qemu reports it: depth 0 here, and the
     * host offset of an allocated cluster whose subclusters are unallocated.
     */
    private static BlockStatus below(Qcow2Engine img, long offset, long n, long host) throws IOException {
        BlockDevice backing = img.io.backing();
        if (backing != null && offset < backing.size()) {
            long len = Math.min(n, backing.size() - offset);
            return backing.blockStatus(offset, len).deeper();
        }
        return new BlockStatus(offset, n, false, true, false, 0, host, false);
    }
}
