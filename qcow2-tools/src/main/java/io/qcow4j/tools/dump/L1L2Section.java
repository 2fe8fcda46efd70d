package io.qcow4j.tools.dump;

import static io.qcow4j.tools.dump.DumpValues.CHUNK;
import static io.qcow4j.tools.dump.DumpValues.omitted;
import static io.qcow4j.tools.dump.DumpValues.rawHex;
import static io.qcow4j.tools.dump.DumpValues.u64;
import static io.qcow4j.tools.dump.Qcow2Dump.MAX_L1_BYTES;
import static io.qcow4j.tools.dump.Qcow2Dump.MAX_LISTED;

import io.qcow4j.core.engine.TreeWalk;
import io.qcow4j.core.format.CompressedDescriptor;
import io.qcow4j.core.format.HostOffsets;
import io.qcow4j.core.format.L1Entry;
import io.qcow4j.core.format.L2Entry;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The {@code l1} and {@code l2} sections: the L1 table and one L2 table, entries decoded. */
final class L1L2Section {
    private final Qcow2Dump d;

    L1L2Section(Qcow2Dump d) {
        this.d = d;
    }

    private void checkL1() throws DumpException {
        if (d.l1Size * 8 > MAX_L1_BYTES) {
            throw new DumpException("L1 table: l1_size " + d.l1Size + " exceeds QEMU's maximum of " + MAX_L1_BYTES / 8 + " entries");
        }
        d.file.checkRange("L1 table (l1_size " + d.l1Size + ")", d.l1TableOffset, d.l1Size * 8);
    }

    /** The L1 table: count of allocated L2 tables; with {@code list}, its non-zero entries. */
    Map<String, Object> l1(boolean list) throws DumpException, IOException {
        checkL1();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("l1_table_offset", u64(d.l1TableOffset));
        m.put("l1_size", d.l1Size);
        long[] allocated = {0};
        long[] nonZero = {0};
        List<Object> entries = new ArrayList<>();
        TreeWalk walk = walk();
        TreeWalk.Visitor<RuntimeException> listing = new TreeWalk.Visitor<>() {
            @Override
            protected boolean l1Entry(TreeWalk w, int index, long raw) {
                nonZero[0]++;
                if (w.l2() != 0) {
                    allocated[0]++;
                }
                if (list && entries.size() < MAX_LISTED) {
                    Map<String, Object> e = new LinkedHashMap<>();
                    e.put("index", (long) index);
                    e.put("offset", w.l1EntryAt());
                    e.put("raw", rawHex(raw));
                    e.put("l2_offset", w.l2());
                    e.put("copied", L1Entry.isCopied(raw));
                    if ((raw & L1Entry.RESERVED_MASK) != 0) {
                        e.put("reserved", rawHex(raw & L1Entry.RESERVED_MASK));
                    }
                    entries.add(e);
                }
                return false; // the listing reads no L2 table
            }
        };
        for (long done = 0; done < d.l1Size; ) {
            int n = (int) Math.min(CHUNK / 8, d.l1Size - done);
            long[] chunk = longs(d.file.read("L1 table", d.l1TableOffset + done * 8, n * 8), n);
            walk.walk(chunk, 0, n, (int) done, d.l1TableOffset, listing);
            done += n;
        }
        m.put("l2_tables", allocated[0]);
        m.put("l2_entries_per_table", d.l2Entries());
        m.put("guest_bytes_per_l2_table", d.l2Entries() * (long) d.clusterSize);
        if (list) {
            m.put("entries", entries);
            omitted(m, "entries", nonZero[0] - entries.size());
        }
        return m;
    }

    /** The L2 table of L1 entry {@code index}: each non-zero entry, decoded. */
    Map<String, Object> l2(long index) throws DumpException, IOException {
        checkL1();
        if (index < 0 || index >= d.l1Size) {
            throw new DumpException("L1 index " + index + " out of range (l1_size " + d.l1Size + ")");
        }
        long l1Raw = d.file.read("L1 table", d.l1TableOffset + index * 8, 8).getLong(0);
        long l2 = L1Entry.l2Offset(l1Raw);
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("l1_index", index);
        m.put("l1_entry_offset", d.l1TableOffset + index * 8);
        m.put("l1_entry", rawHex(l1Raw));
        m.put("l2_offset", l2);
        m.put("extended_l2", d.extendedL2());
        int perTable = d.l2Entries();
        m.put("entries_per_table", perTable);
        List<Object> entries = new ArrayList<>();
        if (l2 != 0) {
            if (!HostOffsets.aligned(l2, d.clusterSize)) {
                throw new DumpException("L1 entry " + index + ": L2 table offset 0x" + Long.toHexString(l2) + " is not cluster-aligned");
            }
            ByteBuffer t = d.file.read("L2 table (L1 index " + index + ")", l2, d.clusterSize);
            long guestBase = index * perTable * (long) d.clusterSize;
            walk().walkTable(l2, longs(t, d.clusterSize / 8), new TreeWalk.Visitor<RuntimeException>() {
                @Override
                protected void l2Entry(TreeWalk w) {
                    entries.add(decoded(w.index(), w.entryAt(), guestBase + (long) w.index() * d.clusterSize,
                            w.entry(), w.bitmap()));
                }
            });
        }
        m.put("entries", entries);
        return m;
    }

    private Map<String, Object> decoded(int index, long at, long guest, long raw, long bitmap) {
        Map<String, Object> e = new LinkedHashMap<>();
        e.put("index", index);
        e.put("offset", at);
        e.put("guest_offset", guest);
        e.put("raw", rawHex(raw));
        boolean copied = L2Entry.isCopied(raw);
        if (L2Entry.isCompressed(raw)) {
            e.put("type", "compressed");
            e.put("copied", copied);
            e.put("compressed_offset", CompressedDescriptor.hostOffset(raw, d.clusterBits));
            e.put("additional_sectors", CompressedDescriptor.additionalSectors(raw, d.clusterBits));
            if (d.extendedL2() && bitmap != 0) {
                e.put("bitmap", rawHex(bitmap));
            }
            return e;
        }
        long host = L2Entry.hostOffset(raw);
        boolean zeroFlag = (raw & L2Entry.ZERO) != 0;
        String type;
        if (zeroFlag && !d.extendedL2() && d.version >= 3) {
            type = "zero";
        } else if (host != 0 || copied) {
            type = "standard";
        } else {
            type = "unallocated";
        }
        e.put("type", type);
        e.put("host_offset", host);
        e.put("copied", copied);
        e.put("zero", zeroFlag);
        long reserved = raw & L2Entry.STANDARD_RESERVED_MASK;
        if (reserved != 0) {
            e.put("reserved", rawHex(reserved));
        }
        if (d.extendedL2()) {
            e.put("bitmap", rawHex(bitmap));
            e.put("allocated_subclusters", ranges(bitmap & 0xffffffffL));
            e.put("zero_subclusters", ranges(bitmap >>> 32));
        }
        return e;
    }

    /** The walk of the image's L1 tree, with the dump's geometry (an external data file does not change what it shows). */
    private TreeWalk walk() {
        return new TreeWalk(d.clusterBits, d.extendedL2(), false, d.file::length);
    }

    /** The first {@code n} big-endian longs of {@code b}. */
    private static long[] longs(ByteBuffer b, int n) {
        long[] out = new long[n];
        for (int i = 0; i < n; i++) {
            out[i] = b.getLong(i * 8);
        }
        return out;
    }

    /** "0-3,7,9-31" for the set bits of a 32-bit mask; "" for none. */
    static String ranges(long mask) {
        StringBuilder b = new StringBuilder();
        int i = 0;
        while (i < 32) {
            if ((mask & (1L << i)) == 0) {
                i++;
                continue;
            }
            int j = i;
            while (j + 1 < 32 && (mask & (1L << (j + 1))) != 0) {
                j++;
            }
            if (b.length() > 0) {
                b.append(',');
            }
            b.append(i);
            if (j > i) {
                b.append('-').append(j);
            }
            i = j + 1;
        }
        return b.toString();
    }
}
