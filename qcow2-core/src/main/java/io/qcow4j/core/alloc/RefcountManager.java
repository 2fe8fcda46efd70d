package io.qcow4j.core.alloc;

import java.io.IOException;

import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.format.RefcountBlock;
import io.qcow4j.core.storage.Storage;

/**
 * Refcount table and blocks ({@code == Host cluster management ==}), and the cluster
 * allocator on top of them: the table and its blocks are read, checked and grown by
 * {@link RefcountTable}, free clusters are found by {@link FreeClusterSearch}; this class
 * changes the counts, in the order below.
 *
 * <p>Ordering, so that a crash (a power failure included) leaves at worst leaked clusters:
 * a new refcount block is written and flushed before the table entry that points at it; a
 * cluster's refcount is raised before the caller references it (the caller's reference
 * reaches the disk only after a flush, see {@code L2Cache}) and lowered only after the
 * caller dropped the reference; a grown refcount table is complete and flushed before the
 * header switches to it.
 *
 * <p>With {@link #deferFrees} on (a writable image), a free only notes the clusters: their
 * refcounts drop in {@link #applyPendingFrees}, which the image calls once the dropped
 * references are durable. Until then {@link #get} already answers the lowered count, but
 * the clusters are not handed out again.
 */
public final class RefcountManager {
    /** QEMU refuses refcount tables above 8 MiB; so do we, before allocating one. */
    public static final long MAX_TABLE_BYTES = 8L << 20;

    /** Receives the new location of the refcount table, to rewrite the header fields. */
    public interface TableMoveListener {
        void refcountTableMoved(long offset, int clusters) throws IOException;
    }

    /** What the engine keeps at a host cluster, for the allocator's guard ({@link #guardAllocations}). */
    public interface MetadataMap {
        /** The engine's words for the metadata the cluster at {@code offset} holds, or null. */
        String at(long offset);
    }

    private final Storage storage;
    private final int clusterBits;
    private final int clusterSize;
    private final int refcountOrder;
    private final long entriesPerBlock;
    private final long maxRefcount;
    private final TableMoveListener listener;
    private final RefcountTable table;
    private final FreeClusterSearch search;
    /** Next free byte for compressed data, or 0 when no cluster is partly used. */
    private long freeByteOffset;
    /** Frees waiting for their dropped references to be durable: cluster index, count. */
    private final java.util.HashMap<Long, Long> pendingFrees = new java.util.HashMap<>();
    private boolean deferFrees;

    public RefcountManager(Storage storage, int clusterBits, int refcountOrder, long tableOffset,
                           int tableClusters, TableMoveListener listener) throws IOException {
        this(storage, clusterBits, refcountOrder, tableOffset, tableClusters, listener, false);
    }

    /**
     * @param untrusted the check's open (qemu's BDRV_O_CHECK): a table qemu would still open,
     *                  to check and rebuild, is loaded wherever the header puts it: none at
     *                  all (0 clusters), over the header or other metadata, past the end of
     *                  the file (those entries read as 0). The checker judges it; only a
     *                  table too large or unaligned is refused, as qemu refuses it.
     */
    public RefcountManager(Storage storage, int clusterBits, int refcountOrder, long tableOffset,
                           int tableClusters, TableMoveListener listener, boolean untrusted) throws IOException {
        this.storage = storage;
        this.clusterBits = clusterBits;
        this.clusterSize = 1 << clusterBits;
        this.refcountOrder = refcountOrder;
        this.entriesPerBlock = RefcountBlock.entriesPerBlock(clusterBits, refcountOrder);
        this.maxRefcount = RefcountBlock.maxRefcount(refcountOrder);
        this.listener = listener;
        this.table = new RefcountTable(storage, clusterBits, refcountOrder, untrusted);
        table.load(tableOffset, tableClusters);
        this.search = new FreeClusterSearch(table);
    }

    public long tableOffset() {
        return table.offset();
    }

    /**
     * Switches to a refcount table written elsewhere (a repair rebuilt the refcount
     * structure and pointed the header at it): reads and validates it like at open.
     */
    public void reload(long offset, int clusters) throws IOException {
        table.load(offset, clusters);
        search.resetHint();
        freeByteOffset = 0;
    }

    public int tableClusters() {
        return table.clusters();
    }

    public long entriesPerBlock() {
        return entriesPerBlock;
    }

    public long maxRefcount() {
        return maxRefcount;
    }

    /** Raw refcount table entry {@code index} (0 past the table). */
    public long tableEntry(long index) {
        return table.entry(index);
    }

    public int tableEntries() {
        return table.entries();
    }

    /**
     * Checks every refcount block offset the table names (aligned, past the header, inside
     * the file), as the first lookup of each would. A writer calls this at open: an operation
     * of several steps (a resize that stores bitmaps, a commit that empties the top) must not
     * find a broken block half-way, after it has changed the file.
     */
    public void validateBlocks() throws IOException {
        table.validateBlocks();
    }

    /**
     * Frees wait for {@link #applyPendingFrees} (see the class comment), for an image whose
     * references reach the disk only after a flush.
     */
    public void deferFrees(boolean on) {
        this.deferFrees = on;
    }

    /** The number of clusters whose frees wait. */
    public int pendingFrees() {
        return pendingFrees.size();
    }

    /**
     * Lowers the refcounts of the waiting frees. Call only right after a flush that made
     * the dropped references durable; the lowered counts reach the disk with the next one
     * (lost, they are leaks). Returns whether anything was lowered.
     */
    public boolean applyPendingFrees() throws IOException {
        if (pendingFrees.isEmpty()) {
            return false;
        }
        java.util.Iterator<java.util.Map.Entry<Long, Long>> it = pendingFrees.entrySet().iterator();
        while (it.hasNext()) {
            java.util.Map.Entry<Long, Long> e = it.next();
            addNow(e.getKey(), -e.getValue());
            it.remove();
        }
        return true;
    }

    /** Refcount of the cluster at index {@code cluster} (host offset / cluster size), waiting frees deducted. */
    public long get(long cluster) throws IOException {
        Long pending = pendingFrees.isEmpty() ? null : pendingFrees.get(cluster);
        return pending == null ? table.stored(cluster) : table.stored(cluster) - pending;
    }

    /**
     * How many of clusters {@code [0, end)} have a refcount other than 0, counting no further
     * than just past {@code limit}: whole refcount blocks read at once (one read per block,
     * not one per cluster).
     */
    public long countInUse(long end, long limit) throws IOException {
        if (!pendingFrees.isEmpty()) {
            long count = 0;
            for (long c = 0; c < end && count <= limit; c++) {
                if (get(c) != 0) {
                    count++;
                }
            }
            return count;
        }
        return table.countStoredInUse(end, limit);
    }

    /** Adds {@code delta} to the refcount of every cluster overlapping [offset, offset+length). */
    public void update(long offset, long length, long delta) throws IOException {
        if (length <= 0) {
            return;
        }
        long first = offset >>> clusterBits;
        long last = (offset + length - 1) >>> clusterBits;
        for (long c = first; c <= last; c++) {
            add(c, delta);
        }
    }

    /**
     * While set, the allocator skips clusters the predicate claims, even with refcount 0:
     * a repair knows of uses that the refcounts do not show yet.
     */
    public void setExcluded(java.util.function.LongPredicate inUse) {
        search.setExcluded(inUse);
    }

    /**
     * Clusters whose refcount says free but that hold live metadata (a corrupt refcount) are
     * never handed out: the allocation fails before anything is written, like QEMU's overlap
     * check. {@code metadata} is the engine's one map of its metadata, asked for every
     * cluster this allocator would hand out.
     */
    public void guardAllocations(MetadataMap metadata) {
        search.setGuard(metadata);
    }

    /**
     * Changes whenever the refcount table's entries or its place change, so that a copy made
     * of them (the engine's sorted index of the refcount blocks) knows it is stale.
     */
    public int tableVersion() {
        return table.version();
    }

    /** Sets the refcount of {@code cluster} to {@code value} (repair), at once. */
    public void set(long cluster, long value) throws IOException {
        addNow(cluster, value - get(cluster));
    }

    private void add(long cluster, long delta) throws IOException {
        if (delta < 0 && deferFrees) {
            long now = get(cluster) + delta;
            if (now < 0) {
                throw table.corrupt(cluster, "refcount of cluster 0x" + Long.toHexString(cluster << clusterBits)
                        + " would drop below zero");
            }
            pendingFrees.merge(cluster, -delta, Long::sum);
            return;
        }
        addNow(cluster, delta);
    }

    private void addNow(long cluster, long delta) throws IOException {
        long rt = cluster / entriesPerBlock;
        if (rt >= table.entries()) {
            if (delta < 0) {
                throw new CorruptImageException("refcount table", table.offset(), "cluster 0x" + Long.toHexString(cluster << clusterBits) + " freed but not refcounted");
            }
            growTable(rt);
        }
        long block = table.blockFor(cluster);
        if (block == 0) {
            if (delta < 0) {
                throw new CorruptImageException("refcount table", table.offset() + rt * 8, "cluster 0x" + Long.toHexString(cluster << clusterBits) + " freed but not refcounted");
            }
            block = allocateBlock(rt);
        }
        long index = cluster % entriesPerBlock;
        long wordOff = block + RefcountBlock.wordOffset(index, refcountOrder);
        long word = storage.readLong(wordOff);
        long old = RefcountBlock.get(word, index, refcountOrder);
        long now = old + delta;
        if (now < 0 || (maxRefcount != Long.MAX_VALUE && now > maxRefcount) || (delta > 0 && now < old)) {
            if (now < 0) {
                throw new CorruptImageException("refcount block", wordOff, "refcount of cluster 0x" + Long.toHexString(cluster << clusterBits) + " would drop below zero");
            }
            throw new IOException("Refcount overflow for cluster 0x" + Long.toHexString(cluster << clusterBits) + " (refcount_bits " + (1 << refcountOrder) + ")");
        }
        storage.writeLong(wordOff, RefcountBlock.set(word, index, refcountOrder, now));
        if (now == 0) {
            search.freed(cluster);
            if (freeByteOffset != 0 && (freeByteOffset >>> clusterBits) == cluster) {
                freeByteOffset = 0;
            }
        }
    }

    /**
     * Allocates {@code n} contiguous clusters with refcount 1. With {@code reserve} the
     * space is zero-filled first (needed before metadata is written through the mapping).
     */
    public long allocate(int n, boolean reserve) throws IOException {
        return allocate(n, reserve ? (long) n << clusterBits : 0);
    }

    /**
     * Allocates {@code n} contiguous clusters with refcount 1, zero-filling their first
     * {@code reserveBytes} bytes (a table smaller than its clusters needs no more).
     */
    public long allocate(int n, long reserveBytes) throws IOException {
        long start = search.find(n);
        long firstFree = search.firstFreeSeen();
        search.checkUnused(start, n);
        long offset = start << clusterBits;
        if (reserveBytes > 0) {
            storage.reserve(offset, Math.min(reserveBytes, (long) n << clusterBits));
        }
        long[] range = search.hold(start, start + n);
        long done = 0;
        try {
            for (; done < n; done++) {
                add(start + done, 1);
            }
        } catch (IOException | RuntimeException e) {
            for (long c = start; c < start + done; c++) {
                try {
                    add(c, -1);
                } catch (IOException ignored) {
                    // leaked at worst
                }
            }
            throw e;
        } finally {
            search.release(range);
        }
        search.allocated(start, n, firstFree);
        return offset;
    }

    /**
     * Drops every refcount block that counts no cluster but itself (after a shrink freed
     * what it counted), as qemu-img's shrink does: the table entry is cleared first, then a
     * block counted elsewhere is freed there, so a crash between leaks it at worst.
     */
    public void dropEmptyBlocks() throws IOException {
        for (int rt = 0; rt < table.entries(); rt++) {
            long block = table.blockFor((long) rt * entriesPerBlock);
            if (block == 0) {
                continue;
            }
            long[] words = new long[clusterSize / 8];
            storage.readLongs(block, words, 0, words.length);
            long self = block >>> clusterBits;
            boolean selfCounted = self / entriesPerBlock == rt;
            if (selfCounted) {
                long index = self % entriesPerBlock;
                int w = (int) (RefcountBlock.wordOffset(index, refcountOrder) / 8);
                words[w] = RefcountBlock.set(words[w], index, refcountOrder, 0);
            }
            boolean empty = true;
            for (long word : words) {
                if (word != 0) {
                    empty = false;
                    break;
                }
            }
            if (!empty) {
                continue;
            }
            table.setEntry(rt, 0);
            if (!selfCounted) {
                free(block, clusterSize);
            }
        }
    }

    /** Lowers the refcount of the clusters overlapping [offset, offset+length) by one. */
    public void free(long offset, long length) throws IOException {
        update(offset, length, -1);
    }

    /**
     * Space for one compressed cluster of {@code len} bytes: packed after the previous
     * one like QEMU does, each host cluster touched gaining one reference.
     */
    public long allocateBytes(int len) throws IOException {
        if (len <= 0 || len > clusterSize) {
            throw new IllegalArgumentException("bad compressed length " + len);
        }
        long off = freeByteOffset;
        if (off != 0) {
            long cluster = off >>> clusterBits;
            long endCluster = (off + len - 1) >>> clusterBits;
            if (table.stored(cluster) >= maxRefcount) {
                // as QEMU: a cluster whose refcount is at the width's maximum takes no more
                off = 0;
            } else if (endCluster == cluster) {
                add(cluster, 1);
            } else if (search.isFree(endCluster)) {
                add(cluster, 1);
                add(endCluster, 1);
            } else {
                off = 0;
            }
        }
        if (off == 0) {
            off = allocate(1, false);
        }
        freeByteOffset = off + len;
        if ((freeByteOffset & (clusterSize - 1)) == 0) {
            freeByteOffset = 0;
        }
        return off;
    }

    /** Allocates the refcount block for table index {@code rt}; returns its offset. */
    private long allocateBlock(long rt) throws IOException {
        long b = search.find(1);
        search.checkUnused(b, 1);
        long off = b << clusterBits;
        storage.reserve(off, clusterSize);
        if (b / entriesPerBlock == rt) {
            // the block describes itself
            long index = b % entriesPerBlock;
            long wordOff = off + RefcountBlock.wordOffset(index, refcountOrder);
            storage.writeLong(wordOff, RefcountBlock.set(0, index, refcountOrder, 1));
        } else {
            long[] range = search.hold(b, b + 1);
            try {
                add(b, 1);
            } finally {
                search.release(range);
            }
        }
        // the block (zeros and its counts) durable before the table names it
        storage.flush();
        table.setEntry(rt, off);
        return off;
    }

    /**
     * Moves the refcount table to a larger one at the end of the image (see {@link
     * RefcountTable#grow}); the old one is freed once the header names the new one.
     */
    private void growTable(long neededIndex) throws IOException {
        long oldOff = table.offset();
        long oldBytes = (long) table.clusters() * clusterSize;
        table.grow(neededIndex, search.pendingEnd(), listener);
        free(oldOff, oldBytes);
    }
}
