package io.qcow4j.core.engine;

import java.io.IOException;

import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.format.CompressedDescriptor;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.HostOffsets;
import io.qcow4j.core.format.RefcountBlock;
import io.qcow4j.core.format.SnapshotEntry;
import io.qcow4j.core.storage.Storage;

/**
 * Recomputes every cluster's refcount from the references in the image, and writes the
 * result back: first raising counts that are too low (so nothing in use can be handed
 * out), then lowering those that are too high (leaks).
 */
public final class RefcountRebuilder {
    private RefcountRebuilder() {
    }

    /** Repairs the refcounts of an image whose dirty bit was left set, then clears the bit. */
    public static void repairDirty(Qcow2Engine image) throws IOException {
        synchronized (image.lock()) {
            rebuild(image);
            EngineParts p = image.engineParts();
            p.storage().flush();
            image.updateHeader(h -> h.withIncompatibleFeatures(h.incompatibleFeatures() & ~Header.INCOMPAT_DIRTY));
            // not rewriteHeader(): that would prepare the first write, which is what calls this
            image.writeHeader();
            p.storage().flush();
        }
    }

    /** Writes the computed refcounts; returns the number of clusters whose count changed. */
    public static long rebuild(Qcow2Engine image) throws IOException {
        synchronized (image.lock()) {
            EngineParts p = image.engineParts();
            ClusterCounts expected = count(p);
            long changed = 0;
            p.refcounts().setExcluded(expected::used);
            try {
                long end = Math.max(expected.maxCluster() + 1, clusters(p));
                for (long c = 0; c < end; c++) {
                    long want = expected.get(c);
                    if (want > p.refcounts().get(c)) {
                        p.refcounts().set(c, want);
                        changed++;
                    }
                }
                // new refcount blocks are references too: count again before lowering
                expected = count(p);
                end = Math.max(expected.maxCluster() + 1, clusters(p));
                for (long c = 0; c < end; c++) {
                    long want = expected.get(c);
                    long have = p.refcounts().get(c);
                    if (want != have) {
                        p.refcounts().set(c, want);
                        changed++;
                    }
                }
            } finally {
                p.refcounts().setExcluded(null);
            }
            return changed;
        }
    }

    private static long clusters(EngineParts p) {
        int bits = p.geometry().clusterBits();
        return (p.storage().length() + (1L << bits) - 1) >>> bits;
    }

    /** Counts every reference the image's metadata makes. */
    public static ClusterCounts count(EngineParts p) throws IOException {
        ClusterCounts counts = new ClusterCounts();
        Geometry geo = p.geometry();
        Header h = p.header();
        int bits = geo.clusterBits();
        counts.add(0);
        addRange(counts, p.refcounts().tableOffset(), (long) p.refcounts().tableClusters() << bits, bits);
        for (int i = 0; i < p.refcounts().tableEntries(); i++) {
            long block = p.refcounts().tableEntry(i) & RefcountBlock.TABLE_OFFSET_MASK;
            if (block != 0) {
                // a broken refcount structure cannot be rebuilt in place: refuse before writing
                HostOffsets.requireClusterInFile(block, geo.clusterSize(), p.storage().length(), "refcount table",
                        p.refcounts().tableOffset() + 8L * i, o -> "refcount block offset 0x" + Long.toHexString(o) + " invalid");
                counts.add(block >>> bits);
            }
        }
        countL1(p, counts, p.mapper().l1(), p.mapper().l1Offset());
        if (!p.snapshots().isEmpty()) {
            long tableBytes = 0;
            for (SnapshotEntry e : p.snapshots()) {
                tableBytes += e.serializedSize();
            }
            addRange(counts, h.snapshotsOffset(), tableBytes, bits);
            for (SnapshotEntry e : p.snapshots()) {
                long[] l1 = ClusterMapper.readL1(p.storage(), geo, e.l1TableOffset, e.l1Size, "snapshot L1 table");
                countL1(p, counts, l1, e.l1TableOffset);
            }
        }
        countBitmaps(p, counts);
        // the LUKS header area (validated at open): its keyslots must never be freed
        io.qcow4j.core.format.HeaderExtension crypt = h.extension(io.qcow4j.core.format.HeaderExtension.FULL_DISK_ENCRYPTION);
        if (h.cryptMethod() == 2 && crypt != null && crypt.data().length == 16) {
            java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(crypt.data());
            long offset = b.getLong(0);
            long length = b.getLong(8);
            if (offset > 0 && length > 0 && HostOffsets.fits(offset, length, p.storage().length())) {
                addRange(counts, offset, length, bits);
            }
        }
        return counts;
    }

    /** The bitmap directory, every bitmap table and every data cluster, when the extension is valid. */
    private static void countBitmaps(EngineParts p, ClusterCounts counts) throws IOException {
        Header h = p.header();
        io.qcow4j.core.format.HeaderExtension ext = h.extension(io.qcow4j.core.format.HeaderExtension.BITMAPS);
        if (ext == null || h.version() < 3 || (h.autoclearFeatures() & Header.AUTOCLEAR_BITMAPS) == 0) {
            return;
        }
        int bits = p.geometry().clusterBits();
        var be = io.qcow4j.core.format.BitmapsExtension.parse(ext.data(), p.geometry().clusterSize());
        addRange(counts, be.directoryOffset(), be.directorySize(), bits);
        for (var e : io.qcow4j.core.bitmap.BitmapDirectory.read(p.storage(), be, p.geometry().clusterSize(), 0)) {
            addRange(counts, e.tableOffset(), 8L * e.tableSize(), bits);
            for (long t : io.qcow4j.core.bitmap.BitmapDirectory.readTable(p.storage(), e, p.geometry().clusterSize())) {
                long off = io.qcow4j.core.format.BitmapTableEntry.offset(t);
                if (off != 0) {
                    counts.add(off >>> bits);
                }
            }
        }
    }

    private static void countL1(EngineParts p, ClusterCounts counts, long[] l1, long l1Offset) throws IOException {
        int bits = p.geometry().clusterBits();
        Storage storage = p.storage();
        addRange(counts, l1Offset, 8L * l1.length, bits);
        TreeWalk.of(p).walk(l1, l1Offset, new TreeWalk.FileVisitor(storage) {
            @Override
            protected boolean l1Entry(TreeWalk w, int index, long entry) throws IOException {
                if (w.l2() == 0) {
                    return false;
                }
                if (!w.l2InFile()) {
                    throw new CorruptImageException("L1 table", w.l1EntryAt(), "L2 table offset 0x" + Long.toHexString(w.l2()) + " invalid");
                }
                counts.add(w.l2() >>> bits);
                return true;
            }

            @Override
            protected void l2Entry(TreeWalk w) {
                // references outside the file are not counted (as QEMU's check does); reading
                // them fails later with a CorruptImageException
                long end = storage.length();
                if (w.kind() == TreeWalk.Kind.COMPRESSED) {
                    long start = w.compressedOffset() & ~(CompressedDescriptor.SECTOR - 1L);
                    if (start < end) {
                        addRange(counts, start, Math.min(w.compressedSectors() * CompressedDescriptor.SECTOR, end - start), bits);
                    }
                } else if (p.dataFile() == null) {
                    long host = w.host();
                    if (host != 0 && host < end) {
                        counts.add(host >>> bits);
                    }
                }
            }
        });
    }

    static void addRange(ClusterCounts counts, long offset, long length, int bits) {
        if (length <= 0) {
            return;
        }
        for (long c = offset >>> bits; c <= (offset + length - 1) >>> bits; c++) {
            counts.add(c);
        }
    }
}
