package io.qcow4j.core.engine;

import java.io.IOException;

import io.qcow4j.core.alloc.RefcountManager;
import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.cache.L2Cache;
import io.qcow4j.core.format.HostOffsets;
import io.qcow4j.core.format.L1Entry;
import io.qcow4j.core.format.L2Entry;
import io.qcow4j.core.storage.Storage;

/**
 * Guest offset to L2 entry, through the active L1 table and the L2 cache. Allocates and
 * copies-on-write L2 tables when a writer asks for one.
 */
public final class ClusterMapper {
    /** Receives a relocated L1 table, to rewrite l1_size and l1_table_offset. */
    public interface L1MoveListener {
        void l1TableMoved(long offset, int entries) throws IOException;
    }

    /** Makes the image's updates durable in order (flush, L2 write-back, flush, frees). */
    public interface MetadataSync {
        void sync() throws IOException;
    }

    /** Waiting frees past which a writer syncs before it goes on (bounds their memory). */
    static final int PENDING_FREES_LIMIT = 1 << 16;

    private final Storage storage;
    private final RefcountManager refcounts;
    private final L2Cache cache;
    private final Geometry geo;
    private final boolean validateData;
    private long l1Offset;
    private long[] l1;
    private MetadataSync sync;
    private final MetadataRanges ranges;

    public ClusterMapper(Storage storage, RefcountManager refcounts, L2Cache cache, Geometry geo,
                         long l1Offset, long[] l1, boolean hasDataFile) {
        this.storage = storage;
        this.refcounts = refcounts;
        this.cache = cache;
        this.geo = geo;
        this.l1Offset = l1Offset;
        this.l1 = l1;
        this.validateData = !hasDataFile;
        this.ranges = new MetadataRanges(geo, this, refcounts, cache);
    }

    /** Which host ranges hold metadata (the active L1 table's among them). */
    public MetadataRanges ranges() {
        return ranges;
    }

    /**
     * Called before an L2 table is changed when the L2 cache's dirty tables fill its budget
     * or too many frees wait: the image syncs, so both stay bounded.
     */
    public void setMetadataSync(MetadataSync sync) {
        this.sync = sync;
    }

    /** Reads and validates an L1 table of {@code entries} entries at {@code offset}. */
    public static long[] readL1(Storage storage, Geometry geo, long offset, int entries, String what) throws IOException {
        if (entries < 0 || entries > Limits.MAX_L1_ENTRIES) {
            throw new CorruptImageException(what, offset, "L1 size " + Integer.toUnsignedString(entries) + " out of range");
        }
        if (entries == 0) {
            return new long[0];
        }
        HostOffsets.requireCluster(offset, geo.clusterSize(), what, offset, o -> "L1 table offset invalid");
        // checked before allocating
        HostOffsets.requireFits(offset, 8L * entries, storage.length(), what, offset,
                o -> "L1 table extends past the end of the file");
        long[] table = new long[entries];
        storage.readLongs(offset, table, 0, entries);
        return table;
    }

    public long l1Offset() {
        return l1Offset;
    }

    public int l1Size() {
        return l1.length;
    }

    public long l1Entry(int index) {
        return l1[index];
    }

    public L2Cache cache() {
        return cache;
    }

    /** Validated L2 table offset for guest {@code offset}, or 0 when none is allocated. */
    public long l2Table(long offset) throws IOException {
        long index = offset / geo.l2Coverage();
        if (index >= l1.length) {
            return 0;
        }
        return l2TableOf(l1, l1Offset, (int) index, storage, geo);
    }

    public static long l2TableOf(long[] l1, long l1Offset, int index, Storage storage, Geometry geo) throws IOException {
        long l2 = L1Entry.l2Offset(l1[index]);
        if (l2 == 0) {
            return 0;
        }
        return HostOffsets.requireClusterInFile(l2, geo.clusterSize(), storage.length(), "L1 table", l1Offset + 8L * index,
                TreeWalk.INVALID_L2);
    }

    /** Index of the entry for {@code offset} inside its L2 table. */
    public int l2Index(long offset) {
        return (int) ((offset >>> geo.clusterBits()) % geo.l2Entries());
    }

    public long entry(long l2, int index) throws IOException {
        return cache.word(l2, index * geo.l2EntryWords());
    }

    public long bitmap(long l2, int index) throws IOException {
        return geo.extendedL2() ? cache.word(l2, index * 2 + 1) : 0;
    }

    /**
     * Writes an entry. With extended L2 the two words are ordered so that no instant shows
     * an allocated subcluster without its host offset.
     */
    public void setEntry(long l2, int index, long entry, long bitmap) throws IOException {
        if (!geo.extendedL2()) {
            cache.setWord(l2, index, entry);
            return;
        }
        long oldBitmap = cache.word(l2, index * 2 + 1);
        boolean bitmapFirst = (bitmap & L2Entry.ALL_ALLOCATED & ~oldBitmap) == 0;
        if (bitmapFirst) {
            cache.setWord(l2, index * 2 + 1, bitmap);
            cache.setWord(l2, index * 2, entry);
        } else {
            cache.setWord(l2, index * 2, entry);
            cache.setWord(l2, index * 2 + 1, bitmap);
        }
    }

    /**
     * Writes {@code count} entries from index {@code index} on (with extended L2, entry and
     * bitmap word pairs) in one update. Each entry's word goes before its bitmap word, which
     * is the safe order when the new bitmaps only gain allocated subclusters.
     */
    public void setEntries(long l2, int index, long[] words, int count) throws IOException {
        cache.setWords(l2, index * geo.l2EntryWords(), words, count * geo.l2EntryWords());
    }

    /**
     * Checks a standard entry's host offset before data is read from it. A cluster past the
     * end of the file (an image cut short) reads as zeros, as in qemu; one in the header or
     * unaligned is corrupt.
     */
    public long checkedHost(long entry, long l2, int index) throws IOException {
        long host = L2Entry.hostOffset(entry);
        if (validateData && host != 0 && !HostOffsets.isCluster(host, geo.clusterSize())) {
            throw invalidHost(host, l2, index);
        }
        return host;
    }

    /** {@link #checkedHost} for changing a cluster or its refcount: it must lie inside the file too. */
    public long checkedHostInFile(long entry, long l2, int index) throws IOException {
        long host = checkedHost(entry, l2, index);
        if (validateData && host != 0 && host >= storage.length()) {
            throw invalidHost(host, l2, index);
        }
        return host;
    }

    private CorruptImageException invalidHost(long host, long l2, int index) {
        return new CorruptImageException("L2 table", l2 + 8L * index * geo.l2EntryWords(), TreeWalk.INVALID_HOST.of(host));
    }

    /**
     * {@link #checkedHost} for a write in place: the cluster must not hold the header, the
     * active L1 table, the refcount table or a block, or a cached L2 table (QEMU's "cached"
     * metadata overlap check), or the write would destroy them.
     */
    public long checkedHostForWrite(long entry, long l2, int index) throws IOException {
        long host = checkedHostInFile(entry, l2, index);
        if (validateData && host != 0) {
            String what = host == l2 ? "its own L2 table" : ranges.at(host);
            if (what != null) {
                throw new CorruptImageException("L2 table", l2 + 8L * index * geo.l2EntryWords(),
                        "cluster offset 0x" + Long.toHexString(host) + " overlaps " + what);
            }
        }
        return host;
    }

    /**
     * Refuses, before anything is written (a bitmap's in_use flag included), a write of
     * {@code [offset, offset+length)} through an L2 table that is invalid or overlaps metadata.
     */
    public void checkWritable(long offset, long length) throws IOException {
        if (length <= 0) {
            return;
        }
        long first = offset / geo.l2Coverage();
        long last = Math.min((offset + length - 1) / geo.l2Coverage(), l1.length - 1L);
        for (long i = first; i <= last; i++) {
            checkedL2ForWrite((int) i);
        }
    }

    private long checkedL2ForWrite(int i) throws IOException {
        long l2 = l2TableOf(l1, l1Offset, i, storage, geo);
        String aliased = l2 == 0 ? null : ranges.nonL2At(l2);
        if (aliased != null) {
            throw new CorruptImageException("L1 table", l1Offset + 8L * i,
                    "L2 table offset 0x" + Long.toHexString(l2) + " overlaps " + aliased);
        }
        return l2;
    }

    /**
     * The L2 table for {@code offset}, allocated or copied so that it may be written:
     * a missing table is allocated zeroed; a shared one (no COPIED flag) is copied.
     */
    public long writableL2Table(long offset) throws IOException {
        long index = offset / geo.l2Coverage();
        if (index >= l1.length) {
            throw new IllegalStateException("offset beyond the L1 table");
        }
        if (sync != null && (cache.dirtyTables() >= cache.capacity() - 1
                || refcounts.pendingFrees() >= PENDING_FREES_LIMIT)) {
            sync.sync();
        }
        int i = (int) index;
        long entry = l1[i];
        long old = checkedL2ForWrite(i);
        if (old != 0 && L1Entry.isCopied(entry)) {
            return old;
        }
        if (old != 0 && refcounts.get(old >>> geo.clusterBits()) == 1) {
            // no longer shared (its snapshot is gone): only the flag was stale
            setL1(i, L1Entry.of(old, true));
            return old;
        }
        long fresh = refcounts.allocate(1, true);
        long[] content = new long[geo.clusterSize() / 8];
        if (old != 0) {
            // shared with a snapshot: the copy points at the same data clusters, whose
            // refcounts already count every L1 tree that reaches them
            System.arraycopy(cache.table(old), 0, content, 0, content.length);
            for (int k = 0; k < content.length; k++) {
                if (content[k] != 0) {
                    storage.writeLong(fresh + 8L * k, content[k]);
                }
            }
        }
        cache.put(fresh, content);
        // the table's refcount and content durable before the L1 entry names it
        storage.flush();
        setL1(i, L1Entry.of(fresh, true));
        if (old != 0) {
            refcounts.free(old, geo.clusterSize());
            cache.invalidate(old);
        }
        return fresh;
    }

    /**
     * Drops the L2 table of active L1 entry {@code index} (its entries already cleared):
     * the L1 entry first, then the table's refcount, so a crash between leaks it at worst.
     */
    public void dropL2Table(int index) throws IOException {
        long l2 = l2TableOf(l1, l1Offset, index, storage, geo);
        if (l2 == 0) {
            return;
        }
        setL1(index, 0);
        cache.invalidate(l2);
        refcounts.free(l2, geo.clusterSize());
    }

    /** Writes active L1 entry {@code index} (on disk and in memory). */
    public void setL1(int index, long value) throws IOException {
        storage.writeLong(l1Offset + 8L * index, value);
        l1[index] = value;
    }

    /**
     * Adopts another active L1 table, already written and already named by the header
     * (an internal snapshot was applied). Every cached L2 table is forgotten.
     */
    public void replaceL1(long offset, long[] table) {
        l1Offset = offset;
        l1 = table;
        cache.clear();
    }

    /** Grows the active L1 table to {@code entries}, relocating it (new table, header, free old). */
    public void growL1(int entries, L1MoveListener listener) throws IOException {
        if (entries <= l1.length) {
            return;
        }
        if (entries > Limits.MAX_L1_ENTRIES) {
            throw new IOException("Image too large: the L1 table would exceed 32 MiB");
        }
        long bytes = 8L * entries;
        int clusters = (int) ((bytes + geo.clusterSize() - 1) >>> geo.clusterBits());
        // like qemu-img, only the table's own bytes are written, not the rest of its cluster
        long fresh = refcounts.allocate(clusters, bytes);
        long[] table = java.util.Arrays.copyOf(l1, entries);
        for (int i = 0; i < l1.length; i++) {
            if (table[i] != 0) {
                storage.writeLong(fresh + 8L * i, table[i]);
            }
        }
        storage.flush();
        long oldOffset = l1Offset;
        long oldBytes = 8L * l1.length;
        listener.l1TableMoved(fresh, entries);
        l1 = table;
        l1Offset = fresh;
        if (oldBytes > 0 && oldOffset != 0) {
            refcounts.free(oldOffset, oldBytes);
        }
    }

    /** Shrinks only the recorded L1 size (entries past it must be unallocated). */
    public long[] l1() {
        return l1;
    }
}
