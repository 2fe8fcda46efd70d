package io.qcow4j.core.alloc;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.format.HostOffsets;
import io.qcow4j.core.format.RefcountBlock;
import io.qcow4j.core.storage.Storage;

/**
 * Refcount table and blocks ({@code == Host cluster management ==}), and the cluster
 * allocator on top of them.
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

    private final Storage storage;
    private final int clusterBits;
    private final int clusterSize;
    private final int refcountOrder;
    private final long entriesPerBlock;
    private final long maxRefcount;
    private final TableMoveListener listener;
    private final boolean untrusted;
    private long tableOffset;
    private int tableClusters;
    private long[] table;
    private long freeHint;
    /** Clusters chosen by an allocation in progress, not yet refcounted: [start, end) pairs. */
    private final List<long[]> pending = new ArrayList<>();
    /** Next free byte for compressed data, or 0 when no cluster is partly used. */
    private long freeByteOffset;
    /** Clusters the allocator must not hand out whatever their refcount says (repair). */
    private java.util.function.LongPredicate excluded = c -> false;
    private boolean exclusionActive;
    /** Names the metadata the engine knows at a host cluster, or null; see {@link #setAllocationGuard}. */
    private java.util.function.LongFunction<String> guard = c -> null;
    /** Sorted refcount block offsets for {@link #metadataAt}; null when the table changed since. */
    private long[] blockOffsets;
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
        this.untrusted = untrusted;
        this.storage = storage;
        this.clusterBits = clusterBits;
        this.clusterSize = 1 << clusterBits;
        this.refcountOrder = refcountOrder;
        this.entriesPerBlock = RefcountBlock.entriesPerBlock(clusterBits, refcountOrder);
        this.maxRefcount = RefcountBlock.maxRefcount(refcountOrder);
        this.listener = listener;
        loadTable(tableOffset, tableClusters);
        this.freeHint = 1;
    }

    private void loadTable(long offset, int clusters) throws IOException {
        // qemu's rules and words first (it refuses these even to check), then ours for a writer
        long bytes = Integer.toUnsignedLong(clusters) * clusterSize;
        if (bytes > MAX_TABLE_BYTES) {
            throw new CorruptImageException("refcount table", offset, "Reference count table too large");
        }
        if (!HostOffsets.aligned(offset, clusterSize) || !HostOffsets.fits(offset, bytes, Long.MAX_VALUE)) {
            throw new CorruptImageException("refcount table", offset, "Reference count table offset invalid");
        }
        if (!untrusted) {
            if (clusters == 0) {
                throw new CorruptImageException("refcount table", offset, "Image does not contain a reference count table");
            }
            HostOffsets.requireCluster(offset, clusterSize, "refcount table", offset, o -> "Refcount table overlaps the header");
            HostOffsets.requireFits(offset, bytes, storage.length(), "refcount table", offset,
                    o -> "Refcount table extends past the end of the file");
        }
        long[] t = new long[(int) (bytes / 8)];
        if (HostOffsets.fits(offset, bytes, storage.length())) {
            storage.readLongs(offset, t, 0, t.length);
        } else {
            // untrusted, past the end of the file: those bytes read as zeros, as in qemu
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate((int) bytes);
            storage.read(offset, b);
            b.flip().asLongBuffer().get(t);
        }
        this.table = t;
        this.blockOffsets = null;
        this.tableOffset = offset;
        this.tableClusters = clusters;
    }

    public long tableOffset() {
        return tableOffset;
    }

    /**
     * Switches to a refcount table written elsewhere (a repair rebuilt the refcount
     * structure and pointed the header at it): reads and validates it like at open.
     */
    public void reload(long offset, int clusters) throws IOException {
        loadTable(offset, clusters);
        freeHint = 1;
        freeByteOffset = 0;
    }

    public int tableClusters() {
        return tableClusters;
    }

    public long entriesPerBlock() {
        return entriesPerBlock;
    }

    public long maxRefcount() {
        return maxRefcount;
    }

    /** Raw refcount table entry {@code index} (0 past the table). */
    public long tableEntry(long index) {
        return index < table.length ? table[(int) index] : 0;
    }

    public int tableEntries() {
        return table.length;
    }

    /**
     * Checks every refcount block offset the table names (aligned, past the header, inside
     * the file), as the first lookup of each would. A writer calls this at open: an operation
     * of several steps (a resize that stores bitmaps, a commit that empties the top) must not
     * find a broken block half-way, after it has changed the file.
     */
    public void validateBlocks() throws IOException {
        for (int i = 0; i < table.length; i++) {
            if ((table[i] & RefcountBlock.TABLE_OFFSET_MASK) != 0) {
                blockFor((long) i * entriesPerBlock);
            }
        }
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
        return pending == null ? stored(cluster) : stored(cluster) - pending;
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
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocate(clusterSize);
        long count = 0;
        for (long first = 0; first < end && count <= limit; first += entriesPerBlock) {
            long block = blockFor(first);
            if (block == 0) {
                continue;
            }
            buf.clear();
            storage.read(block, buf);
            long n = Math.min(entriesPerBlock, end - first);
            for (long i = 0; i < n; i++) {
                long word = buf.getLong(RefcountBlock.wordOffset(i, refcountOrder));
                if (RefcountBlock.get(word, i, refcountOrder) != 0) {
                    count++;
                }
            }
        }
        return count;
    }

    /** The refcount as the refcount block holds it. */
    private long stored(long cluster) throws IOException {
        long block = blockFor(cluster);
        if (block == 0) {
            return 0;
        }
        long index = cluster % entriesPerBlock;
        long word = storage.readLong(block + RefcountBlock.wordOffset(index, refcountOrder));
        return RefcountBlock.get(word, index, refcountOrder);
    }

    private long blockFor(long cluster) throws IOException {
        long rt = cluster / entriesPerBlock;
        if (rt >= table.length) {
            return 0;
        }
        long entry = table[(int) rt];
        long block = entry & RefcountBlock.TABLE_OFFSET_MASK;
        if (block == 0) {
            return 0;
        }
        return HostOffsets.requireClusterInFile(block, clusterSize, storage.length(), "refcount table", tableOffset + rt * 8,
                o -> "refcount block offset 0x" + Long.toHexString(o) + " invalid");
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
        this.excluded = inUse == null ? c -> false : inUse;
        this.exclusionActive = inUse != null;
    }

    /**
     * Clusters whose refcount says free but that hold live metadata (a corrupt refcount) are
     * never handed out: the allocation fails before anything is written, like QEMU's overlap
     * check. The guard names that metadata for a cluster index, or returns null.
     */
    public void setAllocationGuard(java.util.function.LongFunction<String> metadataAt) {
        this.guard = metadataAt;
    }

    /** "the refcount table" or "a refcount block" when the cluster at {@code offset} is one, else null. */
    public String metadataAt(long offset) {
        long start = offset & -(long) clusterSize;
        if (start >= tableOffset && start - tableOffset < ((long) tableClusters << clusterBits)) {
            return "the refcount table";
        }
        if (blockOffsets == null) {
            blockOffsets = java.util.Arrays.stream(table).map(e -> e & RefcountBlock.TABLE_OFFSET_MASK)
                    .filter(b -> b != 0).sorted().toArray();
        }
        return java.util.Arrays.binarySearch(blockOffsets, start) >= 0 ? "a refcount block" : null;
    }

    private void checkUnused(long start, long n) throws IOException {
        for (long c = start; c < start + n; c++) {
            String what = guard.apply(c);
            if (what != null) {
                long block = blockFor(c);
                long at = block == 0 ? tableOffset + c / entriesPerBlock * 8
                        : block + RefcountBlock.wordOffset(c % entriesPerBlock, refcountOrder);
                throw new CorruptImageException(block == 0 ? "refcount table" : "refcount block", at,
                        "cluster 0x" + Long.toHexString(c << clusterBits) + " has refcount 0 but holds " + what);
            }
        }
    }

    /** Sets the refcount of {@code cluster} to {@code value} (repair), at once. */
    public void set(long cluster, long value) throws IOException {
        addNow(cluster, value - get(cluster));
    }

    private void add(long cluster, long delta) throws IOException {
        if (delta < 0 && deferFrees) {
            long now = get(cluster) + delta;
            if (now < 0) {
                long block = blockFor(cluster);
                throw new CorruptImageException(block == 0 ? "refcount table" : "refcount block",
                        block == 0 ? tableOffset + cluster / entriesPerBlock * 8
                                : block + RefcountBlock.wordOffset(cluster % entriesPerBlock, refcountOrder),
                        "refcount of cluster 0x" + Long.toHexString(cluster << clusterBits) + " would drop below zero");
            }
            pendingFrees.merge(cluster, -delta, Long::sum);
            return;
        }
        addNow(cluster, delta);
    }

    private void addNow(long cluster, long delta) throws IOException {
        long rt = cluster / entriesPerBlock;
        if (rt >= table.length) {
            if (delta < 0) {
                throw new CorruptImageException("refcount table", tableOffset, "cluster 0x" + Long.toHexString(cluster << clusterBits) + " freed but not refcounted");
            }
            growTable(rt);
        }
        long block = blockFor(cluster);
        if (block == 0) {
            if (delta < 0) {
                throw new CorruptImageException("refcount table", tableOffset + rt * 8, "cluster 0x" + Long.toHexString(cluster << clusterBits) + " freed but not refcounted");
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
            freeHint = Math.min(freeHint, cluster);
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
        long start = findFree(n);
        long firstFree = firstFreeSeen;
        checkUnused(start, n);
        long offset = start << clusterBits;
        if (reserveBytes > 0) {
            storage.reserve(offset, Math.min(reserveBytes, (long) n << clusterBits));
        }
        long[] range = {start, start + n};
        pending.add(range);
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
            pending.remove(range);
        }
        // clusters below the first free one stay used: start the next search there
        freeHint = firstFree == start ? start + n : firstFree;
        return offset;
    }

    /**
     * Drops every refcount block that counts no cluster but itself (after a shrink freed
     * what it counted), as qemu-img's shrink does: the table entry is cleared first, then a
     * block counted elsewhere is freed there, so a crash between leaks it at worst.
     */
    public void dropEmptyBlocks() throws IOException {
        for (int rt = 0; rt < table.length; rt++) {
            long block = blockFor((long) rt * entriesPerBlock);
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
            setTableEntry(rt, 0);
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
            if (stored(cluster) >= maxRefcount) {
                // as QEMU: a cluster whose refcount is at the width's maximum takes no more
                off = 0;
            } else if (endCluster == cluster) {
                add(cluster, 1);
            } else if (stored(endCluster) == 0 && !isPending(endCluster) && !excluded.test(endCluster)
                    && guard.apply(endCluster) == null) {
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

    private boolean isPending(long cluster) {
        for (long[] r : pending) {
            if (cluster >= r[0] && cluster < r[1]) {
                return true;
            }
        }
        return false;
    }

    private long pendingEnd() {
        long end = 0;
        for (long[] r : pending) {
            end = Math.max(end, r[1]);
        }
        return end;
    }

    private long firstFreeSeen;

    /** First run of {@code n} free clusters at or after the hint; notes the first free cluster seen. */
    private long findFree(int n) throws IOException {
        firstFreeSeen = -1;
        long found = scanFree(n);
        if (firstFreeSeen < 0 || firstFreeSeen > found) {
            firstFreeSeen = found;
        }
        return found;
    }

    private long scanFree(int n) throws IOException {
        long coverageEnd = (long) table.length * entriesPerBlock;
        long c = Math.max(1, freeHint);
        long runStart = c;
        long run = 0;
        while (run < n) {
            if (c >= coverageEnd && !isPending(c) && c >= pendingEnd() && !excluded.test(c)) {
                // nothing past the table's coverage is allocated
                return runStart + run == c ? runStart : c;
            }
            long block = c < coverageEnd ? blockFor(c) : 0;
            if (block == 0 && c < coverageEnd && !isPendingIn(c, entriesPerBlock) && !exclusionActive) {
                // a missing refcount block: its whole range is free
                if (firstFreeSeen < 0) {
                    firstFreeSeen = c;
                }
                long blockEnd = (c / entriesPerBlock + 1) * entriesPerBlock;
                run += blockEnd - c;
                c = blockEnd;
                continue;
            }
            if (!isPending(c) && !excluded.test(c) && stored(c) == 0) {
                if (firstFreeSeen < 0) {
                    firstFreeSeen = c;
                }
                run++;
            } else {
                run = 0;
                runStart = c + 1;
            }
            c++;
        }
        return runStart;
    }

    private boolean isPendingIn(long c, long blockSize) {
        long blockStart = c - c % blockSize;
        for (long[] r : pending) {
            if (r[0] < blockStart + blockSize && r[1] > blockStart) {
                return true;
            }
        }
        return false;
    }

    /** Allocates the refcount block for table index {@code rt}; returns its offset. */
    private long allocateBlock(long rt) throws IOException {
        long b = findFree(1);
        checkUnused(b, 1);
        long off = b << clusterBits;
        storage.reserve(off, clusterSize);
        if (b / entriesPerBlock == rt) {
            // the block describes itself
            long index = b % entriesPerBlock;
            long wordOff = off + RefcountBlock.wordOffset(index, refcountOrder);
            storage.writeLong(wordOff, RefcountBlock.set(0, index, refcountOrder, 1));
        } else {
            long[] range = {b, b + 1};
            pending.add(range);
            try {
                add(b, 1);
            } finally {
                pending.remove(range);
            }
        }
        // the block (zeros and its counts) durable before the table names it
        storage.flush();
        setTableEntry(rt, off);
        return off;
    }

    private void setTableEntry(long rt, long blockOffset) throws IOException {
        table[(int) rt] = blockOffset;
        blockOffsets = null;
        storage.writeLong(tableOffset + rt * 8, blockOffset);
    }

    /**
     * Moves the refcount table to a larger one at the end of the image, together with the
     * refcount blocks that describe the new table and themselves.
     */
    private void growTable(long neededIndex) throws IOException {
        long entriesPerCluster = clusterSize / 8;
        long start = Math.max(Math.max((storage.length() + clusterSize - 1) >>> clusterBits,
                (long) table.length * entriesPerBlock), pendingEnd());
        long entries = Math.max(neededIndex + 1, (long) table.length * 3 / 2 + 1);
        long tableClustersNew;
        long blocks;
        long firstRt = start / entriesPerBlock;
        while (true) {
            tableClustersNew = (entries + entriesPerCluster - 1) / entriesPerCluster;
            blocks = 1;
            while (true) {
                long lastRt = (start + tableClustersNew + blocks - 1) / entriesPerBlock;
                long need = lastRt - firstRt + 1;
                if (need <= blocks) {
                    break;
                }
                blocks = need;
            }
            long lastRt = firstRt + blocks - 1;
            if (lastRt < entries) {
                break;
            }
            entries = lastRt + 1;
        }
        long bytes = tableClustersNew * clusterSize;
        if (bytes > MAX_TABLE_BYTES) {
            throw new IOException("Image too large: the refcount table would exceed " + (MAX_TABLE_BYTES >> 20) + " MiB");
        }
        long newTableOff = start << clusterBits;
        long areaClusters = tableClustersNew + blocks;
        storage.reserve(newTableOff, areaClusters << clusterBits);
        long[] newTable = new long[(int) (bytes / 8)];
        System.arraycopy(table, 0, newTable, 0, table.length);
        for (long j = 0; j < blocks; j++) {
            long rt = firstRt + j;
            long blockOff = (start + tableClustersNew + j) << clusterBits;
            long covStart = rt * entriesPerBlock;
            long from = Math.max(covStart, start);
            long to = Math.min(covStart + entriesPerBlock, start + areaClusters);
            for (long c = from; c < to; c++) {
                long index = c - covStart;
                long wordOff = blockOff + RefcountBlock.wordOffset(index, refcountOrder);
                long word = storage.readLong(wordOff);
                storage.writeLong(wordOff, RefcountBlock.set(word, index, refcountOrder, 1));
            }
            newTable[(int) rt] = blockOff;
        }
        for (int i = 0; i < newTable.length; i++) {
            if (newTable[i] != 0) {
                storage.writeLong(newTableOff + 8L * i, newTable[i]);
            }
        }
        storage.flush();
        long oldOff = tableOffset;
        long oldBytes = (long) tableClusters * clusterSize;
        listener.refcountTableMoved(newTableOff, (int) tableClustersNew);
        table = newTable;
        blockOffsets = null;
        tableOffset = newTableOff;
        tableClusters = (int) tableClustersNew;
        free(oldOff, oldBytes);
    }
}
