package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;

import io.qcow4j.core.alloc.RefcountManager;
import io.qcow4j.core.api.AmendException;
import io.qcow4j.core.format.RefcountBlock;
import io.qcow4j.core.storage.Storage;

/**
 * Rewrites the refcount structure with another entry width (amend's refcount_bits), as
 * QEMU does it and crash-safely:
 * <ol>
 * <li>walks over the old table, allocating (through the old structure, so they are
 *     counted) a new block for every range of the new width that holds a non-zero count,
 *     then the new table; again until a walk allocates nothing more;</li>
 * <li>one more walk writes the new blocks, then the new table, and flushes;</li>
 * <li>one header write switches refcount_order and the table (flushed);</li>
 * <li>the caller frees the old blocks and table through the new structure.</li>
 * </ol>
 * Killed before step 3 the new structure is leaked under the old one; after it the old
 * structure is leaked under the new one. Nothing else changes.
 */
final class RefcountWidthChange {
    /** What the walks report: QEMU's status callback (work done of a total). */
    interface Status {
        void status(long done, long total);
    }

    private final Qcow2Engine img;
    private final Storage storage;
    private final RefcountManager old;
    private final int bits;
    private final int cs;
    private final int oldOrder;
    private final int newOrder;
    private final long oldPerBlock;
    private final long newPerBlock;
    private final Status status;
    private long[] newTable = new long[0];
    private long newTableOffset;
    private long allocatedTableEntries;

    private RefcountWidthChange(Qcow2Engine img, int newBits, Status status) {
        this.img = img;
        this.storage = img.storage;
        this.old = img.refcounts;
        this.bits = img.geo.clusterBits();
        this.cs = img.geo.clusterSize();
        this.oldOrder = img.header().refcountOrder();
        this.newOrder = Integer.numberOfTrailingZeros(newBits);
        this.oldPerBlock = RefcountBlock.entriesPerBlock(bits, oldOrder);
        this.newPerBlock = RefcountBlock.entriesPerBlock(bits, newOrder);
        this.status = status;
    }

    /** QEMU's refusals, before anything is written: a count too large for the new width, a table too large. */
    static void check(Qcow2Engine img, int newBits) throws IOException {
        RefcountManager rc = img.refcounts;
        int order = img.header().refcountOrder();
        int cb = img.geo.clusterBits();
        long perBlock = RefcountBlock.entriesPerBlock(cb, order);
        long max = RefcountBlock.maxRefcount(Integer.numberOfTrailingZeros(newBits));
        long[] words = new long[img.geo.clusterSize() / 8];
        long last = 0;
        for (int i = 0; i < rc.tableEntries(); i++) {
            long block = rc.tableEntry(i) & RefcountBlock.TABLE_OFFSET_MASK;
            if (block == 0) {
                continue;
            }
            img.storage.readLongs(block, words, 0, words.length);
            for (long k = 0; k < perBlock; k++) {
                long word = words[RefcountBlock.wordOffset(k, order) / 8];
                if (word == 0) {
                    continue;
                }
                long v = RefcountBlock.get(word, k, order);
                if (v == 0) {
                    continue;
                }
                long cluster = (long) i * perBlock + k;
                last = cluster;
                if (Long.compareUnsigned(v, max) > 0) {
                    long offset = cluster << cb;
                    AmendException e = new AmendException("Cannot decrease refcount entry width to " + newBits
                            + " bits: Cluster at offset " + (offset == 0 ? "0" : "0x" + Long.toHexString(offset))
                            + " has a refcount of " + Long.toUnsignedString(v));
                    e.tableIndex(i);
                    throw e;
                }
            }
        }
        // the new blocks and table go past the last cluster in use at worst
        long newPerBlock = RefcountBlock.entriesPerBlock(cb, Integer.numberOfTrailingZeros(newBits));
        long blocks = last / newPerBlock + 2;
        long tableClusters = (blocks * 8 + img.geo.clusterSize() - 1) / img.geo.clusterSize() + 1;
        long highest = (last + blocks + tableClusters) / newPerBlock;
        if (highest >= RefcountManager.MAX_TABLE_BYTES / 8) {
            AmendException e = new AmendException("This operation would make the refcount table grow beyond the maximum size supported"
                    + " by QEMU, aborting");
            e.tableIndex(rc.tableEntries() - 1);
            throw e;
        }
    }

    /**
     * Steps 1 to 3. Returns the old structure, to be freed once the image is reopened with
     * the new width: {@code [offset, bytes]} pairs, blocks first, the table last.
     */
    static long[][] run(Qcow2Engine img, int newBits, Status status) throws IOException {
        return new RefcountWidthChange(img, newBits, status).run();
    }

    private long[][] run() throws IOException {
        int walk = 0;
        boolean allocated;
        do {
            int totalWalks = Math.max(walk + 2, 3);
            allocated = walk(walk++, totalWalks, false);
            if (allocated) {
                if (newTableOffset != 0) {
                    old.free(newTableOffset, allocatedTableEntries * 8);
                }
                newTableOffset = old.allocate((int) clusters(newTable.length * 8L), true);
                allocatedTableEntries = newTable.length;
            }
        } while (allocated);
        walk(walk, walk + 1, true);
        ByteBuffer table = ByteBuffer.allocate(newTable.length * 8);
        table.asLongBuffer().put(newTable);
        storage.write(newTableOffset, table);
        storage.flush();

        long[][] oldStructure = oldStructure();
        long tableOffset = newTableOffset;
        int tableClusters = (int) clusters(newTable.length * 8L);
        img.updateHeader(h -> h.toBuilder().refcountOrder(newOrder).refcountTableOffset(tableOffset)
                .refcountTableClusters(tableClusters).build());
        img.writeHeader();
        storage.flush();
        return oldStructure;
    }

    private long[][] oldStructure() {
        long[][] out = new long[old.tableEntries() + 1][];
        int n = 0;
        for (int i = 0; i < old.tableEntries(); i++) {
            long block = old.tableEntry(i) & RefcountBlock.TABLE_OFFSET_MASK;
            if (block != 0) {
                out[n++] = new long[] {block, cs};
            }
        }
        out[n++] = new long[] {old.tableOffset(), (long) old.tableClusters() * cs};
        return Arrays.copyOf(out, n);
    }

    /**
     * One walk over the old table (its size read afresh at each entry: an allocation may grow
     * it). Allocation walks return whether they allocated; the write walk writes the blocks.
     */
    private boolean walk(int index, int total, boolean write) throws IOException {
        boolean[] allocated = {false};
        long[] newBlock = write ? new long[cs / 8] : null;
        long[] words = new long[cs / 8];
        long newIndex = 0;
        long filled = 0;
        boolean empty = true;
        for (int i = 0; i < old.tableEntries(); i++) {
            status.status((long) index * old.tableEntries() + i, (long) total * old.tableEntries());
            long block = old.tableEntry(i) & RefcountBlock.TABLE_OFFSET_MASK;
            boolean any = block != 0 && read(block, words);
            for (long k = 0; k < oldPerBlock; ) {
                if (filled == newPerBlock) {
                    finish(newIndex++, empty, newBlock, allocated);
                    if (!write && allocated[0] && block != 0) {
                        any = read(block, words); // the allocation may have counted a cluster of this block
                    }
                    filled = 0;
                    empty = true;
                    if (newBlock != null) {
                        Arrays.fill(newBlock, 0);
                    }
                }
                long take = Math.min(newPerBlock - filled, oldPerBlock - k);
                if (any) {
                    for (long j = 0; j < take; j++) {
                        long word = words[RefcountBlock.wordOffset(k + j, oldOrder) / 8];
                        long v = word == 0 ? 0 : RefcountBlock.get(word, k + j, oldOrder);
                        if (v != 0) {
                            empty = false;
                            if (newBlock != null) {
                                long at = filled + j;
                                int w = RefcountBlock.wordOffset(at, newOrder) / 8;
                                newBlock[w] = RefcountBlock.set(newBlock[w], at, newOrder, v);
                            }
                        }
                    }
                }
                filled += take;
                k += take;
            }
        }
        if (filled > 0) {
            finish(newIndex, empty, newBlock, allocated);
        }
        status.status((long) (index + 1) * old.tableEntries(), (long) total * old.tableEntries());
        return allocated[0];
    }

    /** Reads an old block; false when it counts nothing. */
    private boolean read(long block, long[] words) throws IOException {
        storage.readLongs(block, words, 0, words.length);
        for (long w : words) {
            if (w != 0) {
                return true;
            }
        }
        return false;
    }

    /** A new block is complete: allocate it (allocation walks) or write it (the last walk). */
    private void finish(long index, boolean empty, long[] block, boolean[] allocated) throws IOException {
        if (block == null) {
            if (empty) {
                return;
            }
            if (index >= newTable.length) {
                long entries = (index + 1 + cs / 8 - 1) / (cs / 8) * (cs / 8);
                if (entries > RefcountManager.MAX_TABLE_BYTES / 8) {
                    throw new IOException("This operation would make the refcount table grow beyond the maximum size"
                            + " supported by QEMU, aborting");
                }
                newTable = Arrays.copyOf(newTable, (int) entries);
            }
            if (newTable[(int) index] == 0) {
                newTable[(int) index] = old.allocate(1, true);
                allocated[0] = true;
            }
            return;
        }
        if (index < newTable.length && newTable[(int) index] != 0) {
            ByteBuffer b = ByteBuffer.allocate(cs);
            b.asLongBuffer().put(block);
            storage.write(newTable[(int) index], b);
        } else if (!empty) {
            throw new IOException("refcount block " + index + " of the new structure was not allocated");
        }
    }

    private long clusters(long bytes) {
        return (bytes + cs - 1) >>> bits;
    }
}
