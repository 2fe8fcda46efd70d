package io.qcow4j.tools.dump;

import static io.qcow4j.tools.dump.DumpValues.CHUNK;
import static io.qcow4j.tools.dump.DumpValues.omitted;
import static io.qcow4j.tools.dump.DumpValues.rawHex;
import static io.qcow4j.tools.dump.DumpValues.u64;
import static io.qcow4j.tools.dump.Qcow2Dump.MAX_LISTED;
import static io.qcow4j.tools.dump.Qcow2Dump.MAX_REFBLOCK_BYTES;
import static io.qcow4j.tools.dump.Qcow2Dump.MAX_REFTABLE_BYTES;

import io.qcow4j.core.format.HostOffsets;
import io.qcow4j.core.format.RefcountBlock;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The {@code refcounts} section: the refcount table and a summary of each refcount block. */
final class RefcountSection {
    private final Qcow2Dump d;

    RefcountSection(Qcow2Dump d) {
        this.d = d;
    }

    /** The refcount table; with {@code list}, each refcount block with a summary of its counts. */
    Map<String, Object> refcounts(boolean list) throws DumpException, IOException {
        long tableBytes = d.refcountTableClusters * d.clusterSize;
        if (tableBytes > MAX_REFTABLE_BYTES) {
            throw new DumpException("refcount table: refcount_table_clusters " + d.refcountTableClusters
                    + " exceeds QEMU's maximum of " + MAX_REFTABLE_BYTES / d.clusterSize + " clusters");
        }
        d.file.checkRange("refcount table", d.refcountTableOffset, tableBytes);
        long entriesPerBlock = RefcountBlock.entriesPerBlock(d.clusterBits, d.refcountOrder);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("refcount_table_offset", u64(d.refcountTableOffset));
        m.put("refcount_table_clusters", d.refcountTableClusters);
        m.put("refcount_order", d.refcountOrder);
        m.put("refcount_bits", 1 << d.refcountOrder);
        m.put("table_entries", tableBytes / 8);
        m.put("refcounts_per_block", entriesPerBlock);
        long blocks = 0;
        long decoded = 0;
        long summarized = 0;
        List<Object> entries = new ArrayList<>();
        long total = tableBytes / 8;
        for (long done = 0; done < total; ) {
            int n = (int) Math.min(CHUNK / 8, total - done);
            ByteBuffer b = d.file.read("refcount table", d.refcountTableOffset + done * 8, n * 8);
            for (int i = 0; i < n; i++) {
                long raw = b.getLong(i * 8);
                if (raw == 0) {
                    continue;
                }
                blocks++;
                if (!list || entries.size() >= MAX_LISTED) {
                    continue;
                }
                long index = done + i;
                long block = raw & RefcountBlock.TABLE_OFFSET_MASK;
                Map<String, Object> e = new LinkedHashMap<>();
                e.put("index", index);
                e.put("offset", d.refcountTableOffset + index * 8);
                e.put("block_offset", u64(block));
                e.put("first_cluster_offset", u64(index * entriesPerBlock * d.clusterSize));
                if ((raw & RefcountBlock.TABLE_RESERVED_MASK) != 0) {
                    e.put("reserved", rawHex(raw & RefcountBlock.TABLE_RESERVED_MASK));
                }
                if (!HostOffsets.aligned(block, d.clusterSize) || !d.file.contains(block, d.clusterSize)) {
                    e.put("problem", "not a cluster-aligned offset inside the file");
                } else if (decoded + d.clusterSize <= MAX_REFBLOCK_BYTES) {
                    decoded += d.clusterSize;
                    summarized++;
                    long[] s = stats(d.file.read("refcount block", block, d.clusterSize), d.refcountOrder);
                    e.put("clusters", s[0]);
                    e.put("min_refcount", s[0] == 0 ? 0L : u64(s[1]));
                    e.put("max_refcount", u64(s[2]));
                }
                entries.add(e);
            }
            done += n;
        }
        m.put("blocks", blocks);
        if (list) {
            m.put("entries", entries);
            omitted(m, "entries", blocks - entries.size());
            if (summarized < entries.size()) {
                m.put("note", "counts shown for the first " + summarized + " blocks only ("
                        + (MAX_REFBLOCK_BYTES >> 20) + " MiB of refcount blocks)");
            }
        }
        return m;
    }

    /** Non-zero refcounts in a block: {count, min, max} (unsigned). */
    static long[] stats(ByteBuffer block, int order) {
        long count = 0;
        long min = -1; // unsigned maximum
        long max = 0;
        int bits = 1 << order;
        int n = block.limit();
        if (bits < 8) {
            int mask = (1 << bits) - 1;
            for (int i = 0; i < n; i++) {
                int by = block.get(i) & 0xff;
                if (by == 0) {
                    continue;
                }
                for (int k = 0; k < 8; k += bits) {
                    long v = (by >>> k) & mask;
                    if (v != 0) {
                        count++;
                        min = Long.compareUnsigned(v, min) < 0 ? v : min;
                        max = Long.compareUnsigned(v, max) > 0 ? v : max;
                    }
                }
            }
        } else {
            int width = bits / 8;
            for (int i = 0; i < n; i += width) {
                long v = switch (width) {
                    case 1 -> block.get(i) & 0xffL;
                    case 2 -> block.getShort(i) & 0xffffL;
                    case 4 -> block.getInt(i) & 0xffffffffL;
                    default -> block.getLong(i);
                };
                if (v != 0) {
                    count++;
                    min = Long.compareUnsigned(v, min) < 0 ? v : min;
                    max = Long.compareUnsigned(v, max) > 0 ? v : max;
                }
            }
        }
        return new long[] {count, min, max};
    }
}
