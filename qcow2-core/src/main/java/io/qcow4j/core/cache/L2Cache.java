package io.qcow4j.core.cache;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

import io.qcow4j.core.storage.Storage;

/**
 * L2 tables decoded into {@code long[]}, least recently used evicted first.
 *
 * <p>Write-through by default: an update reaches the storage at once. In write-back mode
 * (a writable image) an update stays in memory, marked dirty, until {@link #writeBack}:
 * an L2 entry may only reach the disk after what it needs is durable there (the refcount
 * of a new cluster, the data a copy-on-write put in it), so the image writes the dirty
 * entries back right after a flush, and flushes again before it frees what they stopped
 * referencing (QEMU keeps the same order with its cache dependencies). A dirty table is
 * never evicted; the image writes back before the dirty tables outgrow the budget.
 */
public final class L2Cache {
    private final Storage storage;
    private final int tableWords;
    private final int capacity;
    private final Map<Long, long[]> tables;
    /** Dirty words of each table with unwritten updates: one bit per word. */
    private final Map<Long, long[]> dirty = new LinkedHashMap<>();
    private boolean writeBack;

    /**
     * @param tableWords 64-bit words per L2 table (cluster_size / 8)
     * @param maxBytes   memory budget; at least two tables are kept
     */
    public L2Cache(Storage storage, int tableWords, long maxBytes) {
        this.storage = storage;
        this.tableWords = tableWords;
        this.capacity = (int) Math.max(2, Math.min(1 << 16, maxBytes / (8L * tableWords)));
        this.tables = new LinkedHashMap<>(16, 0.75f, true) {
            private static final long serialVersionUID = 1L;

            @Override
            protected boolean removeEldestEntry(Map.Entry<Long, long[]> eldest) {
                return size() > capacity && !dirty.containsKey(eldest.getKey());
            }
        };
    }

    /** Keeps updates in memory until {@link #writeBack} (see the class comment). */
    public void setWriteBack(boolean on) {
        this.writeBack = on;
    }

    /** The number of tables the budget holds. */
    public int capacity() {
        return capacity;
    }

    /** The table at {@code l2Offset} (already validated by the caller). */
    public long[] table(long l2Offset) throws IOException {
        long[] t = tables.get(l2Offset);
        if (t == null) {
            t = new long[tableWords];
            storage.readLongs(l2Offset, t, 0, tableWords);
            tables.put(l2Offset, t);
        }
        return t;
    }

    public long word(long l2Offset, int wordIndex) throws IOException {
        return table(l2Offset)[wordIndex];
    }

    public void setWord(long l2Offset, int wordIndex, long value) throws IOException {
        long[] t = table(l2Offset);
        if (writeBack) {
            t[wordIndex] = value;
            dirty.computeIfAbsent(l2Offset, k -> new long[(tableWords + 63) / 64])[wordIndex >>> 6] |= 1L << wordIndex;
            return;
        }
        storage.writeLong(l2Offset + 8L * wordIndex, value);
        t[wordIndex] = value;
    }

    /** Sets {@code count} words from {@code wordIndex} on: as {@link #setWord}, in one storage write when write-through. */
    public void setWords(long l2Offset, int wordIndex, long[] values, int count) throws IOException {
        long[] t = table(l2Offset);
        if (writeBack) {
            System.arraycopy(values, 0, t, wordIndex, count);
            long[] bits = dirty.computeIfAbsent(l2Offset, k -> new long[(tableWords + 63) / 64]);
            for (int k = wordIndex; k < wordIndex + count; k++) {
                bits[k >>> 6] |= 1L << k;
            }
            return;
        }
        storage.writeLongs(l2Offset + 8L * wordIndex, values, 0, count);
        System.arraycopy(values, 0, t, wordIndex, count);
    }

    /** Whether updates wait in memory. */
    public boolean hasDirty() {
        return !dirty.isEmpty();
    }

    /** The number of tables with updates waiting. */
    public int dirtyTables() {
        return dirty.size();
    }

    /**
     * Writes every waiting update to the storage, in table order; what a failure leaves
     * unwritten stays dirty. The caller made durable first what the updates need.
     */
    public void writeBack() throws IOException {
        Iterator<Map.Entry<Long, long[]>> it = dirty.entrySet().iterator();
        while (it.hasNext()) {
            Map.Entry<Long, long[]> e = it.next();
            long l2 = e.getKey();
            long[] t = tables.get(l2);
            long[] bits = e.getValue();
            // runs of adjacent dirty words in one write each: the two words of an extended
            // entry (16 bytes, inside one sector) then reach the disk together or not at all
            int w = 0;
            while (w < tableWords) {
                if (!isDirty(bits, w)) {
                    w++;
                    continue;
                }
                int end = w + 1;
                while (end < tableWords && isDirty(bits, end)) {
                    end++;
                }
                if (end - w == 1) {
                    storage.writeLong(l2 + 8L * w, t[w]);
                } else {
                    ByteBuffer run = ByteBuffer.allocate(8 * (end - w));
                    run.asLongBuffer().put(t, w, end - w);
                    storage.write(l2 + 8L * w, run);
                }
                for (int k = w; k < end; k++) {
                    bits[k >>> 6] &= ~(1L << k);
                }
                w = end;
            }
            it.remove();
        }
        // the tables kept while dirty may have outgrown the budget
        Iterator<Long> lru = tables.keySet().iterator();
        while (tables.size() > capacity && lru.hasNext()) {
            lru.next();
            lru.remove();
        }
    }

    private static boolean isDirty(long[] bits, int word) {
        return (bits[word >>> 6] & (1L << word)) != 0;
    }

    /** Installs a table the engine just wrote in full (a new or copied L2 table). */
    public void put(long l2Offset, long[] table) {
        tables.put(l2Offset, table);
    }

    public boolean contains(long l2Offset) {
        return tables.containsKey(l2Offset);
    }

    /**
     * Forgets a table whose cluster was freed (no longer referenced): its waiting updates
     * are dropped with it.
     */
    public void invalidate(long l2Offset) {
        tables.remove(l2Offset);
        dirty.remove(l2Offset);
    }

    /** Forgets every table; updates must not be waiting (write them back first). */
    public void clear() {
        if (!dirty.isEmpty()) {
            throw new IllegalStateException("L2 updates of " + dirty.size() + " tables not written back");
        }
        tables.clear();
    }
}
