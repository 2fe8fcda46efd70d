package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongSupplier;

import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.bitmap.BitmapDirectory;
import io.qcow4j.core.format.BitmapDirectoryEntry;
import io.qcow4j.core.format.BitmapTableEntry;
import io.qcow4j.core.format.BitmapsExtension;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.HeaderExtension;
import io.qcow4j.core.format.HostOffsets;
import io.qcow4j.core.format.RefcountBlock;
import io.qcow4j.core.format.SnapshotEntry;

/**
 * The one walk of the whole metadata graph, shared by the refcount rebuild, check's count
 * of references and dump: each structure that holds clusters (the header, the L1 tables
 * and their trees, the snapshot table, the LUKS header, the refcount table, the bitmap
 * directory, tables and clusters, the refcount blocks) is told to the visitor with its
 * host offset and length, in qemu-img check's order (qemu's calculate_refcounts). The L1
 * trees are walked by {@link TreeWalk}; the refcount table's entries come with a cursor
 * holding their checks ({@link RefcountBlock#requireBlock}). What a structure means, how
 * its tables are read and what to do with a bad one (count, report, print, refuse) stays
 * with the visitor: {@link FileVisitor} reads and refuses as the engine does.
 */
public final class MetadataWalk {
    /** The structures, in the order the walk tells of them (the refcount blocks last, through {@link Visitor#refcountBlock}). */
    public enum Structure {
        HEADER("header"), ACTIVE_L1("L1 table"), SNAPSHOT_L1("snapshot L1 table"), SNAPSHOT_TABLE("snapshot table"),
        CRYPTO_HEADER("LUKS header"), REFCOUNT_TABLE("refcount table"), BITMAP_DIRECTORY("bitmap directory"),
        BITMAP_TABLE("bitmap table"), BITMAP_CLUSTER("bitmap data cluster");

        private final String words;

        Structure(String words) {
            this.words = words;
        }

        /** The structure's name in qcow2's words (error messages). */
        public String words() {
            return words;
        }
    }

    /** Why qemu's check skips a snapshot's L1 table (its entry is corrupt). */
    public enum BadL1 { UNALIGNED, TOO_LARGE }

    /** A bitmap's table as the directory names it. */
    public record BitmapTable(long offset, long entries, String name) {
    }

    /** What the walk meets; each method may throw the user's own failure {@code X}. */
    public abstract static class Visitor<X extends Exception> {
        /** A structure {@code [offset, offset+length)}, {@code length > 0}, that the image references. */
        protected void structure(Structure s, long offset, long length) throws X {
        }

        /** After its {@link #structure}: the tree of an L1 table ({@code snapshot} null for the active one). */
        protected void l1Tree(long offset, int entries, SnapshotEntry snapshot) throws X {
        }

        /** Before the snapshots' L1 tables. */
        protected void snapshots(List<SnapshotEntry> snapshots) throws X {
        }

        /**
         * A snapshot's L1 table, {@code why} not null when qemu's check finds its entry corrupt:
         * true to have it walked (its {@link #structure} and {@link #l1Tree}).
         */
        protected boolean snapshotL1(SnapshotEntry snapshot, BadL1 why) throws X {
            return why == null;
        }

        /** The bitmaps extension (as qemu keeps it) does not parse; check ignores it there (open refused already). */
        protected void badBitmapsExtension(CorruptImageException e) throws X {
        }

        /** Reads and checks the bitmap directory, with the visitor's rules. */
        protected List<BitmapTable> bitmapDirectory(BitmapsExtension be) throws X {
            throw new IllegalStateException("this visitor reads no bitmap directory");
        }

        /** Entries of a bitmap table from entry {@code base} on (checked as the visitor checks), null past the last. */
        protected long[] bitmapTable(BitmapTable table, long base) throws X {
            throw new IllegalStateException("this visitor reads no bitmap table");
        }

        /** A refcount table entry with any bit set: {@code walk}'s cursor describes it. */
        protected void refcountBlock(MetadataWalk walk) throws X {
        }
    }

    /** A visitor in the engine: tables read from the image file and checked with the engine's words. */
    public abstract static class FileVisitor extends Visitor<IOException> {
        protected final EngineParts parts;
        private long[] snapshotL1;

        protected FileVisitor(EngineParts parts) {
            this.parts = parts;
        }

        /**
         * Reads the snapshot's L1 table (checked: {@link ClusterMapper#readL1}) before anything
         * counts it: a table qemu's check would skip ({@code why}) is refused there, in the
         * engine's words, unless it has no entries (then it names nothing).
         */
        @Override
        protected boolean snapshotL1(SnapshotEntry sn, BadL1 why) throws IOException {
            snapshotL1 = ClusterMapper.readL1(parts.storage(), parts.geometry(), sn.l1TableOffset, sn.l1Size,
                    "snapshot L1 table");
            return true;
        }

        /** The L1 table {@link #l1Tree} is told of: the active one in memory, a snapshot's as read. */
        protected long[] l1(SnapshotEntry snapshot) {
            return snapshot == null ? parts.mapper().l1() : snapshotL1;
        }

        @Override
        protected void badBitmapsExtension(CorruptImageException e) throws IOException {
            throw e;
        }

        @Override
        protected List<BitmapTable> bitmapDirectory(BitmapsExtension be) throws IOException {
            List<BitmapTable> out = new ArrayList<>();
            for (BitmapDirectoryEntry e : BitmapDirectory.read(parts.storage(), be, parts.geometry().clusterSize(), 0)) {
                out.add(new BitmapTable(e.tableOffset(), Integer.toUnsignedLong(e.tableSize()), e.name()));
            }
            return out;
        }

        @Override
        protected long[] bitmapTable(BitmapTable t, long base) throws IOException {
            return base == 0
                    ? BitmapDirectory.readTable(parts.storage(), t.offset(), (int) t.entries(), t.name(),
                    parts.geometry().clusterSize())
                    : null;
        }
    }

    /** Refcount table entries copied out of the engine's table at a time. */
    private static final int TABLE_CHUNK = 8192;

    private final int cs;
    private final LongSupplier fileLength;
    private long tableOffset;
    private long index;
    private long entry;

    /** @param fileLength the image file's length now (a repair may grow it while walking) */
    public MetadataWalk(int clusterBits, LongSupplier fileLength) {
        this.cs = 1 << clusterBits;
        this.fileLength = fileLength;
    }

    /** Walks the whole graph of the engine's image, as it stands now, in qemu-img check's order. */
    public static <X extends Exception> void walk(EngineParts p, Visitor<X> v) throws X {
        new MetadataWalk(p.geometry().clusterBits(), p.storage()::length).walkAll(p, v);
    }

    private <X extends Exception> void walkAll(EngineParts p, Visitor<X> v) throws X {
        Header h = p.header();
        v.structure(Structure.HEADER, 0, cs);
        tree(v, Structure.ACTIVE_L1, p.mapper().l1Offset(), p.mapper().l1Size(), null);
        v.snapshots(p.snapshots());
        for (SnapshotEntry sn : p.snapshots()) {
            long l1Size = Integer.toUnsignedLong(sn.l1Size);
            BadL1 why = !HostOffsets.aligned(sn.l1TableOffset, cs) ? BadL1.UNALIGNED
                    : l1Size > Limits.MAX_L1_ENTRIES ? BadL1.TOO_LARGE : null;
            if (v.snapshotL1(sn, why)) {
                tree(v, Structure.SNAPSHOT_L1, sn.l1TableOffset, (int) l1Size, sn);
            }
        }
        // as long as it is on the disk (qemu's measure): an older QEMU's entries have less extra data
        region(v, Structure.SNAPSHOT_TABLE, h.snapshotsOffset(), MetadataRanges.snapshotTableSize(p.snapshots()));
        HeaderExtension crypt = h.extension(HeaderExtension.FULL_DISK_ENCRYPTION);
        if (h.cryptMethod() == 2 && crypt != null && crypt.data().length == 16) {
            ByteBuffer b = ByteBuffer.wrap(crypt.data());
            region(v, Structure.CRYPTO_HEADER, b.getLong(0), b.getLong(8));
        }
        var refcounts = p.refcounts();
        region(v, Structure.REFCOUNT_TABLE, refcounts.tableOffset(), 8L * refcounts.tableEntries());
        bitmaps(p, v);
        int entries = refcounts.tableEntries();
        long[] chunk = new long[Math.min(TABLE_CHUNK, entries)];
        for (int base = 0; base < entries; base += chunk.length) {
            int n = Math.min(chunk.length, entries - base);
            for (int i = 0; i < n; i++) {
                chunk[i] = refcounts.tableEntry(base + i);
            }
            refcountTable(refcounts.tableOffset(), chunk, n, base, v);
        }
    }

    private <X extends Exception> void tree(Visitor<X> v, Structure s, long offset, int entries, SnapshotEntry sn) throws X {
        region(v, s, offset, 8L * entries);
        v.l1Tree(offset, entries, sn);
    }

    private static <X extends Exception> void region(Visitor<X> v, Structure s, long offset, long length) throws X {
        if (length > 0) {
            v.structure(s, offset, length);
        }
    }

    /** The directory, then each bitmap's table and the clusters it names (qemu's qcow2_check_bitmaps_refcounts). */
    private <X extends Exception> void bitmaps(EngineParts p, Visitor<X> v) throws X {
        Header h = p.header();
        HeaderExtension ext = h.extension(HeaderExtension.BITMAPS);
        if (ext == null || h.version() < 3 || (h.autoclearFeatures() & Header.AUTOCLEAR_BITMAPS) == 0) {
            return; // qemu ignores the extension then
        }
        BitmapsExtension be;
        try {
            be = BitmapsExtension.parse(ext.data(), cs);
        } catch (CorruptImageException e) {
            v.badBitmapsExtension(e);
            return;
        }
        region(v, Structure.BITMAP_DIRECTORY, be.directoryOffset(), be.directorySize());
        for (BitmapTable t : v.bitmapDirectory(be)) {
            region(v, Structure.BITMAP_TABLE, t.offset(), 8 * t.entries());
            long base = 0;
            for (long[] chunk = v.bitmapTable(t, base); chunk != null; chunk = v.bitmapTable(t, base)) {
                for (long e : chunk) {
                    long off = BitmapTableEntry.offset(e);
                    if (off != 0) {
                        v.structure(Structure.BITMAP_CLUSTER, off, cs);
                    }
                }
                base += chunk.length;
            }
        }
    }

    /**
     * Walks entries {@code [0, n)} of {@code chunk}, a part of the refcount table at
     * {@code tableOffset} whose first entry has index {@code base} (dump reads the table in
     * parts): each entry with any bit set is told to {@link Visitor#refcountBlock}.
     */
    public <X extends Exception> void refcountTable(long tableOffset, long[] chunk, int n, long base, Visitor<X> v)
            throws X {
        this.tableOffset = tableOffset;
        for (int i = 0; i < n; i++) {
            if (chunk[i] != 0) {
                index = base + i;
                entry = chunk[i];
                v.refcountBlock(this);
            }
        }
    }

    // The cursor: the refcount table entry the visitor is told of, and its checks.

    /** Index of the current refcount table entry. */
    public long index() {
        return index;
    }

    /** The current entry, raw. */
    public long entry() {
        return entry;
    }

    /** File offset of the current entry. */
    public long entryAt() {
        return tableOffset + 8 * index;
    }

    /** The refcount block the entry names (0 for none). */
    public long block() {
        return entry & RefcountBlock.TABLE_OFFSET_MASK;
    }

    /** The entry's reserved bits (0-8). */
    public long reservedBits() {
        return entry & RefcountBlock.TABLE_RESERVED_MASK;
    }

    /** The block is aligned to the cluster. */
    public boolean aligned() {
        return HostOffsets.aligned(block(), cs);
    }

    /** The block's cluster lies inside the file (it may be the header's: see {@link #checkedBlock}). */
    public boolean fitsInFile() {
        return HostOffsets.fits(block(), cs, fileLength.getAsLong());
    }

    /** The block, a whole cluster inside the file past the header; or the refusal of the entry (0: no block). */
    public long checkedBlock() throws CorruptImageException {
        return RefcountBlock.requireBlock(entry, cs, fileLength.getAsLong(), entryAt());
    }
}
