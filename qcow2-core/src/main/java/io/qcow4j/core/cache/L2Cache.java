package io.qcow4j.core.cache;

import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;

import io.qcow4j.core.storage.Storage;

/**
 * L2 tables decoded into {@code long[]}, least recently used evicted first. Write-through:
 * an update reaches the storage at once, so the cache never holds the only copy and a
 * crash loses nothing the engine believed written.
 */
public final class L2Cache {
    private final Storage storage;
    private final int tableWords;
    private final Map<Long, long[]> tables;

    /**
     * @param tableWords 64-bit words per L2 table (cluster_size / 8)
     * @param maxBytes   memory budget; at least two tables are kept
     */
    public L2Cache(Storage storage, int tableWords, long maxBytes) {
        this.storage = storage;
        this.tableWords = tableWords;
        int capacity = (int) Math.max(2, Math.min(1 << 16, maxBytes / (8L * tableWords)));
        this.tables = new LinkedHashMap<>(16, 0.75f, true) {
            private static final long serialVersionUID = 1L;

            @Override
            protected boolean removeEldestEntry(Map.Entry<Long, long[]> eldest) {
                return size() > capacity;
            }
        };
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
        storage.writeLong(l2Offset + 8L * wordIndex, value);
        t[wordIndex] = value;
    }

    /** Writes {@code count} words from {@code wordIndex} on, storage first, then the cached table. */
    public void setWords(long l2Offset, int wordIndex, long[] values, int count) throws IOException {
        long[] t = table(l2Offset);
        storage.writeLongs(l2Offset + 8L * wordIndex, values, 0, count);
        System.arraycopy(values, 0, t, wordIndex, count);
    }

    /** Installs a table the engine just wrote in full (a new or copied L2 table). */
    public void put(long l2Offset, long[] table) {
        tables.put(l2Offset, table);
    }

    public boolean contains(long l2Offset) {
        return tables.containsKey(l2Offset);
    }

    /** Forgets a table whose cluster was freed. */
    public void invalidate(long l2Offset) {
        tables.remove(l2Offset);
    }

    public void clear() {
        tables.clear();
    }
}
