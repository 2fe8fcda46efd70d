package io.qcow4j.tools.dump;

import static io.qcow4j.tools.dump.DumpValues.CHUNK;
import static io.qcow4j.tools.dump.DumpValues.omitted;
import static io.qcow4j.tools.dump.DumpValues.rawHex;
import static io.qcow4j.tools.dump.DumpValues.u64;
import static io.qcow4j.tools.dump.Qcow2Dump.MAX_LISTED;
import static io.qcow4j.tools.dump.Qcow2Dump.MAX_REFBLOCK_BYTES;
import static io.qcow4j.tools.dump.Qcow2Dump.MAX_REFTABLE_BYTES;

import io.qcow4j.core.engine.MetadataWalk;
import io.qcow4j.core.format.RefcountBlock;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The {@code refcounts} section: the refcount table and a summary of each refcount block (the table walked by {@link MetadataWalk}). */
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
        Listing listing = new Listing(list, entriesPerBlock);
        MetadataWalk walk = new MetadataWalk(d.clusterBits, d.file::length);
        long total = tableBytes / 8;
        for (long done = 0; done < total; ) {
            int n = (int) Math.min(CHUNK / 8, total - done);
            long[] chunk = new long[n];
            d.file.read("refcount table", d.refcountTableOffset + done * 8, n * 8).asLongBuffer().get(chunk);
            walk.refcountTable(d.refcountTableOffset, chunk, n, done, listing);
            // the blocks the listing asked to see, each a cluster inside the file
            for (Summary b : listing.toSummarize) {
                long[] s = stats(d.file.read("refcount block", b.block(), d.clusterSize), d.refcountOrder);
                b.entry().put("clusters", s[0]);
                b.entry().put("min_refcount", s[0] == 0 ? 0L : u64(s[1]));
                b.entry().put("max_refcount", u64(s[2]));
            }
            listing.toSummarize.clear();
            done += n;
        }
        long blocks = listing.blocks;
        long summarized = listing.summarized;
        List<Object> entries = listing.entries;
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

    /** A listed entry and the block, inside the file, whose counts it shows. */
    private record Summary(Map<String, Object> entry, long block) {
    }

    /** The dump's reaction to each refcount table entry the walk tells of: count it, list it (at most {@link Qcow2Dump#MAX_LISTED}). */
    private final class Listing extends MetadataWalk.Visitor<RuntimeException> {
        private final boolean list;
        private final long entriesPerBlock;
        final List<Object> entries = new ArrayList<>();
        /** Listed entries of the current chunk whose block is to be summarized. */
        final List<Summary> toSummarize = new ArrayList<>();
        long blocks;
        long summarized;
        private long decoded;

        Listing(boolean list, long entriesPerBlock) {
            this.list = list;
            this.entriesPerBlock = entriesPerBlock;
        }

        @Override
        protected void refcountBlock(MetadataWalk w) {
            blocks++;
            if (!list || entries.size() >= MAX_LISTED) {
                return;
            }
            long index = w.index();
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("index", index);
            e.put("offset", w.entryAt());
            e.put("block_offset", u64(w.block()));
            e.put("first_cluster_offset", u64(index * entriesPerBlock * d.clusterSize));
            if (w.reservedBits() != 0) {
                e.put("reserved", rawHex(w.reservedBits()));
            }
            if (!w.aligned() || !w.fitsInFile()) {
                e.put("problem", "not a cluster-aligned offset inside the file");
            } else if (decoded + d.clusterSize <= MAX_REFBLOCK_BYTES) {
                decoded += d.clusterSize;
                summarized++;
                toSummarize.add(new Summary(e, w.block()));
            }
            entries.add(e);
        }
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
