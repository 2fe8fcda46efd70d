package io.qcow4j.core.engine;

import java.io.IOException;
import java.util.function.LongSupplier;

import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.format.CompressedDescriptor;
import io.qcow4j.core.format.HostOffsets;
import io.qcow4j.core.format.L1Entry;
import io.qcow4j.core.format.L2Entry;
import io.qcow4j.core.storage.Storage;

/**
 * The one walk of an L1 tree (an L1 table, the L2 tables it names, the clusters those
 * name), shared by the refcount rebuild, the snapshot refcounts ({@link SnapshotTree}),
 * check and dump. It goes through the L1 entries, has the visitor read each L2 table it
 * asks for, classifies every entry as qemu does ({@link Kind}) and holds the checks of
 * each host offset read on the way ({@link HostOffsets}), with the engine's words for a
 * refusal. What a reference means, and what to do with a bad one (refuse, report, print),
 * stays with the visitor.
 */
public final class TreeWalk {
    /** qemu's cluster types of an L2 entry (qcow2_get_cluster_type). */
    public enum Kind {
        UNALLOCATED, ZERO_PLAIN, ZERO_ALLOC, NORMAL, COMPRESSED;

        /** Whether the entry holds a host cluster of its own (normal, or zero with a preallocated cluster). */
        public boolean hasHostCluster() {
            return this == NORMAL || this == ZERO_ALLOC;
        }
    }

    /** What the walk meets; each method may throw the user's own failure {@code X}. */
    public abstract static class Visitor<X extends Exception> {
        /**
         * A non-zero L1 entry (its L2 offset may be 0 when only reserved bits are set, or
         * invalid): true to have its table read ({@link #readTable}) and walked.
         */
        protected boolean l1Entry(TreeWalk walk, int index, long entry) throws X {
            return true;
        }

        /** Reads the L2 table at {@code l2} into {@code table} (cluster_size / 8 words). */
        protected void readTable(long l2, long[] table) throws X {
            throw new IllegalStateException("this visitor reads no L2 table");
        }

        /**
         * Whether {@link #l2Entry} hears of plain zero entries (one word, only the zero flag):
         * they own nothing, and a visitor that only counts or checks host clusters says no,
         * so that the walk skips them in its own loop (most entries of a big zeroed disk).
         */
        protected boolean plainZeroEntries() {
            return true;
        }

        /** An entry of the table with any bit set; {@code walk}'s cursor describes it. */
        protected void l2Entry(TreeWalk walk) throws X {
        }

        /** After the table's entries. */
        protected void l2Done(TreeWalk walk, int index) throws X {
        }
    }

    /** A visitor in the engine: L2 tables are read whole from the image file. */
    public abstract static class FileVisitor extends Visitor<IOException> {
        private final Storage storage;

        protected FileVisitor(Storage storage) {
            this.storage = storage;
        }

        @Override
        protected void readTable(long l2, long[] table) throws IOException {
            storage.readLongs(l2, table, 0, table.length);
        }
    }

    /** The engine's words for a refused L2 table offset, a standard cluster's, a compressed cluster's. */
    static final HostOffsets.Why INVALID_L2 = o -> "L2 table offset 0x" + Long.toHexString(o)
            + " invalid (unaligned, in the header or past the end of the file)";
    static final HostOffsets.Why INVALID_HOST = o -> "cluster offset 0x" + Long.toHexString(o)
            + " invalid (unaligned, in the header or past the end of the file)";
    static final HostOffsets.Why COMPRESSED_OUTSIDE = o -> "compressed cluster offset 0x" + Long.toHexString(o)
            + " outside the image";

    private final int bits;
    private final int cs;
    private final boolean extendedL2;
    private final boolean dataFile;
    private final LongSupplier fileLength;
    private final long[] table;

    private long l1Offset;
    private int l1Index;
    private long l2;
    private int index;
    private long entry;
    private long bitmap;
    private Kind kind;

    /**
     * @param dataFile   the image has an external data file (standard clusters are not in the image file)
     * @param fileLength the image file's length now (a repair may grow it while walking)
     */
    public TreeWalk(int clusterBits, boolean extendedL2, boolean dataFile, LongSupplier fileLength) {
        this(clusterBits, extendedL2, dataFile, fileLength, new long[(1 << clusterBits) / 8]);
    }

    /** @param table where L2 tables are read (cluster_size / 8 words): check reuses its own, for its memory */
    public TreeWalk(int clusterBits, boolean extendedL2, boolean dataFile, LongSupplier fileLength, long[] table) {
        this.bits = clusterBits;
        this.cs = 1 << clusterBits;
        this.extendedL2 = extendedL2;
        this.dataFile = dataFile;
        this.fileLength = fileLength;
        if (table.length != cs / 8) {
            throw new IllegalArgumentException("an L2 table has " + cs / 8 + " words, not " + table.length);
        }
        this.table = table;
    }

    /** A walk over the engine's image file, with its geometry. */
    public static TreeWalk of(EngineParts p) {
        return new TreeWalk(p.geometry().clusterBits(), p.geometry().extendedL2(), p.dataFile() != null,
                p.storage()::length);
    }

    /** qemu's type of an L2 entry, in an image with this geometry. */
    public static Kind kind(long entry, boolean extendedL2, boolean dataFile) {
        if (L2Entry.isCompressed(entry)) {
            return Kind.COMPRESSED;
        }
        if ((entry & L2Entry.ZERO) != 0 && !extendedL2) {
            return (entry & L2Entry.OFFSET_MASK) != 0 ? Kind.ZERO_ALLOC : Kind.ZERO_PLAIN;
        }
        if ((entry & L2Entry.OFFSET_MASK) == 0) {
            // offset 0 is a real place in an external data file; COPIED tells them apart
            return dataFile && L2Entry.isCopied(entry) ? Kind.NORMAL : Kind.UNALLOCATED;
        }
        return Kind.NORMAL;
    }

    /** Walks the tree of an L1 table held in memory, from the file offset {@code l1Offset}. */
    public <X extends Exception> void walk(long[] l1, long l1Offset, Visitor<X> v) throws X {
        walk(l1, 0, l1.length, 0, l1Offset, v);
    }

    /**
     * Walks entries {@code [from, from+n)} of {@code chunk}, a part of the L1 table at
     * {@code l1Offset} whose first entry has index {@code base} (a long table is read in parts).
     */
    public <X extends Exception> void walk(long[] chunk, int from, int n, int base, long l1Offset, Visitor<X> v) throws X {
        this.l1Offset = l1Offset;
        for (int j = from; j < from + n; j++) {
            long e = chunk[j];
            if (e == 0) {
                continue;
            }
            l1Index = base + j - from;
            l2 = L1Entry.l2Offset(e);
            if (v.l1Entry(this, l1Index, e)) {
                v.readTable(l2, table);
                walkTable(v);
                v.l2Done(this, l1Index);
            }
        }
    }

    /** Walks one L2 table at {@code l2} already read into {@code words} (dump shows one table). */
    public <X extends Exception> void walkTable(long l2, long[] words, Visitor<X> v) throws X {
        this.l2 = l2;
        System.arraycopy(words, 0, table, 0, table.length);
        walkTable(v);
    }

    private <X extends Exception> void walkTable(Visitor<X> v) throws X {
        int w = extendedL2 ? 2 : 1;
        int entries = cs / (8 * w);
        boolean zeros = v.plainZeroEntries() || w == 2;
        for (int i = 0; i < entries; i++) {
            long e = table[i * w];
            long b = w == 2 ? table[i * w + 1] : 0;
            if (e == 0 && b == 0 || !zeros && e == L2Entry.ZERO) {
                continue;
            }
            index = i;
            entry = e;
            bitmap = b;
            kind = kind(e, extendedL2, dataFile);
            v.l2Entry(this);
        }
    }

    // The cursor: the L1 entry being walked and the L2 entry the visitor is told of.

    /** The L2 table offset of the current L1 entry (0 when it has none). */
    public long l2() {
        return l2;
    }

    /** File offset of the current L1 entry. */
    public long l1EntryAt() {
        return l1Offset + 8L * l1Index;
    }

    /** The current L2 table's words, as read (a repair may change them in place). */
    public long[] table() {
        return table;
    }

    /** Index of the current L2 entry in its table. */
    public int index() {
        return index;
    }

    public long entry() {
        return entry;
    }

    /** The subcluster bitmap of an extended entry, else 0. */
    public long bitmap() {
        return bitmap;
    }

    public Kind kind() {
        return kind;
    }

    /** File offset of the current L2 entry. */
    public long entryAt() {
        return l2 + 8L * index * (extendedL2 ? 2 : 1);
    }

    /** The standard entry's host offset (bits 9-55). */
    public long host() {
        return L2Entry.hostOffset(entry);
    }

    /** The compressed entry's host offset (not aligned). */
    public long compressedOffset() {
        return CompressedDescriptor.hostOffset(entry, bits);
    }

    /** Sectors of the compressed entry's data, the first included. */
    public long compressedSectors() {
        return CompressedDescriptor.additionalSectors(entry, bits) + 1;
    }

    // The checks, with the engine's words for a refusal.

    /** The current L1 entry names a whole cluster inside the file, past the header. */
    public boolean l2InFile() {
        return HostOffsets.clusterInFile(l2, cs, fileLength.getAsLong());
    }

    /** The current L1 entry's table is aligned to the cluster (check reports it, reads it anyway). */
    public boolean l2Aligned() {
        return HostOffsets.aligned(l2, cs);
    }

    /** {@link #l2InFile}, or the refusal of the L1 entry. */
    public long checkedL2() throws CorruptImageException {
        return HostOffsets.requireClusterInFile(l2, cs, fileLength.getAsLong(), "L1 table", l1EntryAt(), INVALID_L2);
    }

    /** The standard entry's host cluster: aligned, past the header, starting inside the file; or the refusal. */
    public long checkedHost() throws CorruptImageException {
        return HostOffsets.requireClusterStartsInFile(host(), cs, fileLength.getAsLong(), "L2 table", entryAt(), INVALID_HOST);
    }

    /** The compressed entry's data: past the header and starting inside the file; or the refusal. */
    public long checkedCompressed() throws CorruptImageException {
        return HostOffsets.requireStartsInFile(compressedOffset(), cs, fileLength.getAsLong(), "L2 table", entryAt(),
                COMPRESSED_OUTSIDE);
    }
}
