package io.qcow4j.core.alloc;

import java.io.IOException;

import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.format.HostOffsets;
import io.qcow4j.core.format.RefcountBlock;
import io.qcow4j.core.storage.Storage;

/**
 * The refcount table in memory and the refcount blocks it names ({@code == Host cluster
 * management ==}): loading and checking the table, finding a cluster's block and stored
 * count, and growing the table. {@link RefcountManager} changes counts and allocates on top
 * of it; kept apart so that the table's own rules (its offset checks, its growth's write
 * order) sit in one place.
 *
 * <p>Growth: the larger table and the blocks that count it are written at the end of the
 * image and flushed before the header switches to it; the old table is freed only after.
 */
final class RefcountTable {
    private final Storage storage;
    private final int clusterBits;
    private final int clusterSize;
    private final int refcountOrder;
    private final long entriesPerBlock;
    private final boolean untrusted;
    private long tableOffset;
    private int tableClusters;
    private long[] table;
    /** Bumped by every change of the entries or of the table's place (see {@link RefcountManager#tableVersion}). */
    private int version;

    RefcountTable(Storage storage, int clusterBits, int refcountOrder, boolean untrusted) {
        this.storage = storage;
        this.clusterBits = clusterBits;
        this.clusterSize = 1 << clusterBits;
        this.refcountOrder = refcountOrder;
        this.entriesPerBlock = RefcountBlock.entriesPerBlock(clusterBits, refcountOrder);
        this.untrusted = untrusted;
    }

    /** Reads and validates the table at {@code offset} (see {@link RefcountManager}'s untrusted open). */
    void load(long offset, int clusters) throws IOException {
        // qemu's rules and words first (it refuses these even to check), then ours for a writer
        long bytes = Integer.toUnsignedLong(clusters) * clusterSize;
        if (bytes > RefcountManager.MAX_TABLE_BYTES) {
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
        this.version++;
        this.tableOffset = offset;
        this.tableClusters = clusters;
    }

    long offset() {
        return tableOffset;
    }

    int clusters() {
        return tableClusters;
    }

    long entriesPerBlock() {
        return entriesPerBlock;
    }

    int clusterBits() {
        return clusterBits;
    }

    /** Raw refcount table entry {@code index} (0 past the table). */
    long entry(long index) {
        return index < table.length ? table[(int) index] : 0;
    }

    int entries() {
        return table.length;
    }

    /** Clusters {@code [0, coverageEnd())} have a table entry; nothing past is allocated. */
    long coverageEnd() {
        return (long) table.length * entriesPerBlock;
    }

    /** See {@link RefcountManager#validateBlocks}. */
    void validateBlocks() throws IOException {
        for (int i = 0; i < table.length; i++) {
            if ((table[i] & RefcountBlock.TABLE_OFFSET_MASK) != 0) {
                blockFor((long) i * entriesPerBlock);
            }
        }
    }

    /** The offset of the refcount block counting {@code cluster}, 0 when it has none; checked. */
    long blockFor(long cluster) throws IOException {
        long rt = cluster / entriesPerBlock;
        if (rt >= table.length) {
            return 0;
        }
        return RefcountBlock.requireBlock(table[(int) rt], clusterSize, storage.length(), tableOffset + rt * 8);
    }

    /** The refcount as the refcount block holds it. */
    long stored(long cluster) throws IOException {
        long block = blockFor(cluster);
        if (block == 0) {
            return 0;
        }
        long index = cluster % entriesPerBlock;
        long word = storage.readLong(block + RefcountBlock.wordOffset(index, refcountOrder));
        return RefcountBlock.get(word, index, refcountOrder);
    }

    /**
     * A corrupt refcount of {@code cluster}, located where it is stored: its word in the
     * refcount block, or its table entry when it has no block.
     */
    CorruptImageException corrupt(long cluster, String why) throws IOException {
        long block = blockFor(cluster);
        return new CorruptImageException(block == 0 ? "refcount table" : "refcount block",
                block == 0 ? tableOffset + cluster / entriesPerBlock * 8
                        : block + RefcountBlock.wordOffset(cluster % entriesPerBlock, refcountOrder),
                why);
    }

    /** See {@link RefcountManager#countInUse}, from the stored counts: one read per block. */
    long countStoredInUse(long end, long limit) throws IOException {
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

    int version() {
        return version;
    }

    void setEntry(long rt, long blockOffset) throws IOException {
        table[(int) rt] = blockOffset;
        version++;
        storage.writeLong(tableOffset + rt * 8, blockOffset);
    }

    /**
     * Moves the refcount table to a larger one at the end of the image (past {@code
     * pendingEnd}, the clusters an allocation in progress holds), together with the refcount
     * blocks that describe the new table and themselves. The caller frees the old table.
     */
    void grow(long neededIndex, long pendingEnd, RefcountManager.TableMoveListener listener) throws IOException {
        long entriesPerCluster = clusterSize / 8;
        long start = Math.max(Math.max((storage.length() + clusterSize - 1) >>> clusterBits,
                (long) table.length * entriesPerBlock), pendingEnd);
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
        if (bytes > RefcountManager.MAX_TABLE_BYTES) {
            throw new IOException("Image too large: the refcount table would exceed "
                    + (RefcountManager.MAX_TABLE_BYTES >> 20) + " MiB");
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
        listener.refcountTableMoved(newTableOff, (int) tableClustersNew);
        table = newTable;
        version++;
        tableOffset = newTableOff;
        tableClusters = (int) tableClustersNew;
    }
}
