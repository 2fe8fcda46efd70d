package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.TestData;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code qcow4j dump} shows what is in the file: every field checked here is read again
 * from the bytes with a plain RandomAccessFile, by the spec's offsets, and names and
 * counts are checked against qemu-img info. Damaged headers get one error line, quickly.
 */
class DumpIT {
    private static final long OFFSET_MASK = 0x00fffffffffffe00L;

    @TempDir
    Path tmp;

    static Stream<String> referenceImages() {
        return TestData.qcow2Images().stream();
    }

    private JsonNode dump(String... args) {
        List<String> all = new ArrayList<>(List.of("dump", "--output=json"));
        all.addAll(List.of(args));
        Qemu.Result r = qcow4j(tmp, all.toArray(String[]::new)).assertOk();
        assertEquals("", r.stderr(), r.describe());
        return Cli.json(r.stdout());
    }

    private static long u32(RandomAccessFile f, long at) throws IOException {
        f.seek(at);
        return f.readInt() & 0xffffffffL;
    }

    private static long u64(RandomAccessFile f, long at) throws IOException {
        f.seek(at);
        return f.readLong();
    }

    private static String hex(long v) {
        return String.format("0x%016x", v);
    }

    /** One extension as the file says: offset, type, length. */
    private record Ext(long offset, long type, long length) {
    }

    private static List<Ext> extensions(RandomAccessFile f, long start, long end) throws IOException {
        List<Ext> out = new ArrayList<>();
        for (long off = start; off + 8 <= end; ) {
            long type = u32(f, off);
            long len = u32(f, off + 4);
            if (type == 0) {
                break;
            }
            out.add(new Ext(off, type, len));
            off += 8 + ((len + 7) & ~7L);
        }
        return out;
    }

    @ParameterizedTest
    @MethodSource("referenceImages")
    void fieldsAgreeWithTheBytes(String name) throws IOException {
        Path img = TestData.copyToTemp(name, tmp);
        JsonNode all = dump(name);
        JsonNode info = Cli.json(qemuImg(tmp, "info", "--output=json", "-U", name).assertOk().stdout());
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "r")) {
            // header
            JsonNode h = all.get("header");
            assertEquals(0x514649fbL, u32(f, 0));
            assertEquals(u32(f, 0), h.get("magic").asLong());
            long version = u32(f, 4);
            assertEquals(version, h.get("version").asLong());
            assertEquals(u64(f, 8), h.get("backing_file_offset").asLong());
            int clusterBits = (int) u32(f, 20);
            assertEquals(clusterBits, h.get("cluster_bits").asInt());
            assertEquals(u64(f, 24), h.get("size").asLong());
            assertEquals(info.get("virtual-size").asLong(), h.get("size").asLong());
            long l1Size = u32(f, 36);
            long l1Offset = u64(f, 40);
            assertEquals(l1Size, h.get("l1_size").asLong());
            assertEquals(l1Offset, h.get("l1_table_offset").asLong());
            long rtOffset = u64(f, 48);
            assertEquals(rtOffset, h.get("refcount_table_offset").asLong());
            assertEquals(u32(f, 56), h.get("refcount_table_clusters").asLong());
            long nbSnapshots = u32(f, 60);
            assertEquals(nbSnapshots, h.get("nb_snapshots").asLong());
            assertEquals(u64(f, 64), h.get("snapshots_offset").asLong());
            long headerLength = 72;
            int refcountOrder = 4;
            long incompatible = 0;
            if (version >= 3) {
                incompatible = u64(f, 72);
                assertEquals(incompatible, h.get("incompatible_features").asLong());
                assertEquals(u64(f, 80), h.get("compatible_features").asLong());
                assertEquals(u64(f, 88), h.get("autoclear_features").asLong());
                refcountOrder = (int) u32(f, 96);
                assertEquals(refcountOrder, h.get("refcount_order").asInt());
                headerLength = u32(f, 100);
                assertEquals(headerLength, h.get("header_length").asLong());
                assertEquals((incompatible & 1) != 0, names(h.get("incompatible_feature_names")).contains("dirty bit"));
                assertEquals((incompatible & 16) != 0, names(h.get("incompatible_feature_names")).contains("extended L2 entries"));
            } else {
                assertFalse(h.has("incompatible_features"));
            }
            if (info.has("backing-filename")) {
                assertEquals(info.get("backing-filename").asText(), h.get("backing_file").asText());
            }

            // extensions: offset, type, length of each, as the bytes say
            long backingOffset = u64(f, 8);
            long end = backingOffset != 0 ? backingOffset : 1L << clusterBits;
            List<Ext> exts = extensions(f, headerLength, end);
            JsonNode je = all.get("extensions");
            assertEquals(exts.size(), je.size(), je.toString());
            Ext bitmapsExt = null;
            for (int i = 0; i < exts.size(); i++) {
                assertEquals(exts.get(i).offset(), je.get(i).get("offset").asLong());
                assertEquals(exts.get(i).type(), je.get(i).get("type").asLong());
                assertEquals(exts.get(i).length(), je.get(i).get("length").asLong());
                if (exts.get(i).type() == 0x23852875L) {
                    bitmapsExt = exts.get(i);
                    assertEquals("bitmaps", je.get(i).get("name").asText());
                }
                if (exts.get(i).type() == 0xe2792acaL) {
                    assertEquals(info.get("backing-filename-format").asText(), je.get(i).get("value").asText());
                }
            }

            // bitmaps: extension and directory entries, read again; names as qemu-img info lists them
            JsonNode bm = dump(name, "bitmaps").get("bitmaps");
            assertEquals(all.get("bitmaps").get("nb_bitmaps"), bm.get("nb_bitmaps"));
            if (bitmapsExt == null) {
                assertEquals(0, bm.get("nb_bitmaps").asInt());
                assertEquals(0, bm.get("directory").size());
            } else {
                long nb = u32(f, bitmapsExt.offset() + 8);
                long dirSize = u64(f, bitmapsExt.offset() + 16);
                long dirOffset = u64(f, bitmapsExt.offset() + 24);
                assertEquals(nb, bm.get("nb_bitmaps").asLong());
                assertEquals(dirSize, bm.get("bitmap_directory_size").asLong());
                assertEquals(dirOffset, bm.get("bitmap_directory_offset").asLong());
                JsonNode qemuBitmaps = info.get("format-specific").get("data").get("bitmaps");
                assertEquals(nb, qemuBitmaps.size());
                long at = dirOffset;
                for (int i = 0; i < nb; i++) {
                    JsonNode e = bm.get("directory").get(i);
                    assertEquals(at, e.get("offset").asLong());
                    long tableOffset = u64(f, at);
                    long tableSize = u32(f, at + 8);
                    assertEquals(tableOffset, e.get("bitmap_table_offset").asLong());
                    assertEquals(tableSize, e.get("bitmap_table_size").asLong());
                    assertEquals(u32(f, at + 12), e.get("flags").asLong());
                    f.seek(at + 17);
                    int granularityBits = f.readUnsignedByte();
                    int nameSize = f.readUnsignedShort();
                    long extra = u32(f, at + 20);
                    byte[] nameBytes = new byte[nameSize];
                    f.seek(at + 24 + extra);
                    f.readFully(nameBytes);
                    String bitmapName = new String(nameBytes, StandardCharsets.UTF_8);
                    assertEquals(bitmapName, e.get("name").asText());
                    assertEquals(granularityBits, e.get("granularity_bits").asInt());
                    assertEquals(qemuBitmaps.get(i).get("name").asText(), bitmapName);
                    assertEquals(qemuBitmaps.get(i).get("granularity").asLong(), e.get("granularity").asLong());
                    boolean inUse = (u32(f, at + 12) & 1) != 0;
                    assertEquals(inUse, names(e.get("flag_names")).contains("in_use"));
                    assertEquals(tableSize, e.get("table").size());
                    for (JsonNode t : e.get("table")) {
                        long raw = u64(f, t.get("offset").asLong());
                        assertEquals(tableOffset + 8 * t.get("index").asLong(), t.get("offset").asLong());
                        assertEquals(hex(raw), t.get("raw").asText());
                        assertEquals((raw & OFFSET_MASK) != 0 ? "data" : "all-zeros", t.get("content").asText());
                    }
                    at += (24 + extra + nameSize + 7) & ~7L;
                }
            }

            // L1: summary and entries
            long nonZeroL1 = 0;
            long allocatedL2 = 0;
            List<Long> l2Indexes = new ArrayList<>();
            for (long i = 0; i < l1Size; i++) {
                long raw = u64(f, l1Offset + 8 * i);
                nonZeroL1 += raw != 0 ? 1 : 0;
                if ((raw & OFFSET_MASK) != 0) {
                    allocatedL2++;
                    l2Indexes.add(i);
                }
            }
            assertEquals(allocatedL2, all.get("l1").get("l2_tables").asLong());
            JsonNode l1 = dump(name, "l1").get("l1");
            assertEquals(nonZeroL1, l1.get("entries").size());
            for (JsonNode e : l1.get("entries")) {
                long at = l1Offset + 8 * e.get("index").asLong();
                assertEquals(at, e.get("offset").asLong());
                long raw = u64(f, at);
                assertEquals(hex(raw), e.get("raw").asText());
                assertEquals(raw & OFFSET_MASK, e.get("l2_offset").asLong());
                assertEquals(raw < 0, e.get("copied").asBoolean());
            }

            // L2 tables: the first two, every non-zero entry, decoded
            boolean extended = (incompatible & 16) != 0;
            int width = extended ? 16 : 8;
            int clusterSize = 1 << clusterBits;
            for (long index : l2Indexes.subList(0, Math.min(2, l2Indexes.size()))) {
                JsonNode l2 = dump(name, "l2", Long.toString(index)).get("l2");
                long l2Offset = u64(f, l1Offset + 8 * index) & OFFSET_MASK;
                assertEquals(l2Offset, l2.get("l2_offset").asLong());
                List<Long> listed = new ArrayList<>();
                for (JsonNode e : l2.get("entries")) {
                    listed.add(e.get("index").asLong());
                }
                List<Long> nonZero = new ArrayList<>();
                for (int i = 0; i < clusterSize / width; i++) {
                    if (u64(f, l2Offset + (long) i * width) != 0 || (extended && u64(f, l2Offset + (long) i * width + 8) != 0)) {
                        nonZero.add((long) i);
                    }
                }
                assertEquals(nonZero, listed);
                for (JsonNode e : l2.get("entries")) {
                    long at = l2Offset + e.get("index").asLong() * width;
                    assertEquals(at, e.get("offset").asLong());
                    long raw = u64(f, at);
                    assertEquals(hex(raw), e.get("raw").asText());
                    assertEquals((index * (clusterSize / width) + e.get("index").asLong()) * clusterSize,
                            e.get("guest_offset").asLong());
                    if ((raw & (1L << 62)) != 0) {
                        int x = 62 - (clusterBits - 8);
                        assertEquals("compressed", e.get("type").asText());
                        assertEquals(raw & ((1L << x) - 1), e.get("compressed_offset").asLong());
                        assertEquals((raw >>> x) & ((1L << (clusterBits - 8)) - 1), e.get("additional_sectors").asLong());
                    } else {
                        assertEquals(raw & OFFSET_MASK, e.get("host_offset").asLong());
                        assertEquals(raw < 0, e.get("copied").asBoolean());
                        if (!extended && (raw & 1) != 0) {
                            assertEquals("zero", e.get("type").asText());
                        }
                    }
                    if (extended) {
                        long bitmap = u64(f, at + 8);
                        assertEquals(hex(bitmap), e.get("bitmap").asText());
                        for (int s = 0; s < 32; s++) {
                            assertEquals((bitmap & (1L << s)) != 0, inRanges(e.get("allocated_subclusters").asText(), s));
                            assertEquals((bitmap & (1L << (s + 32))) != 0, inRanges(e.get("zero_subclusters").asText(), s));
                        }
                    }
                }
            }

            // refcounts: table entries, and the counts of the first block, decoded independently
            JsonNode rc = dump(name, "refcounts").get("refcounts");
            long rtEntries = u32(f, 56) * clusterSize / 8;
            long blocks = 0;
            for (long i = 0; i < rtEntries; i++) {
                blocks += u64(f, rtOffset + 8 * i) != 0 ? 1 : 0;
            }
            assertEquals(blocks, rc.get("blocks").asLong());
            assertEquals(blocks, all.get("refcounts").get("blocks").asLong());
            assertEquals(blocks, rc.get("entries").size());
            for (JsonNode e : rc.get("entries")) {
                long raw = u64(f, e.get("offset").asLong());
                assertEquals(rtOffset + 8 * e.get("index").asLong(), e.get("offset").asLong());
                assertEquals(raw & ~0x1ffL, e.get("block_offset").asLong());
            }
            JsonNode first = rc.get("entries").get(0);
            long[] stats = refcountStats(f, first.get("block_offset").asLong(), clusterSize, refcountOrder);
            assertEquals(stats[0], first.get("clusters").asLong());
            assertEquals(stats[1], first.get("min_refcount").asLong());
            assertEquals(stats[2], first.get("max_refcount").asLong());

            // snapshots: ids and names as qemu-img info lists them, entries where the bytes are
            JsonNode sn = dump(name, "snapshots").get("snapshots");
            assertEquals(all.get("snapshots"), sn);
            assertEquals(nbSnapshots, sn.get("table").size());
            JsonNode qemuSnapshots = info.path("snapshots");
            long at = u64(f, 64);
            for (int i = 0; i < nbSnapshots; i++) {
                JsonNode e = sn.get("table").get(i);
                assertEquals(at, e.get("offset").asLong());
                assertEquals(u64(f, at), e.get("l1_table_offset").asLong());
                assertEquals(u32(f, at + 8), e.get("l1_size").asLong());
                assertEquals(qemuSnapshots.get(i).get("id").asText(), e.get("id").asText());
                assertEquals(qemuSnapshots.get(i).get("name").asText(), e.get("name").asText());
                assertEquals(qemuSnapshots.get(i).get("date-sec").asLong(), e.get("date_sec").asLong());
                assertEquals(qemuSnapshots.get(i).get("vm-state-size").asLong(), e.get("vm_state_size").asLong());
                f.seek(at + 12);
                int idSize = f.readUnsignedShort();
                int nameSize = f.readUnsignedShort();
                long extra = u32(f, at + 36);
                at += (40 + extra + idSize + nameSize + 7) & ~7L;
            }
        }
    }

    private static List<String> names(JsonNode list) {
        List<String> out = new ArrayList<>();
        list.forEach(n -> out.add(n.asText()));
        return out;
    }

    private static boolean inRanges(String ranges, int s) {
        if (ranges.isEmpty()) {
            return false;
        }
        for (String r : ranges.split(",")) {
            String[] ab = r.split("-");
            int a = Integer.parseInt(ab[0]);
            int b = ab.length > 1 ? Integer.parseInt(ab[1]) : a;
            if (s >= a && s <= b) {
                return true;
            }
        }
        return false;
    }

    /** {non-zero count, min non-zero, max} of one refcount block, by the spec's bit order. */
    private static long[] refcountStats(RandomAccessFile f, long block, int clusterSize, int order) throws IOException {
        byte[] b = new byte[clusterSize];
        f.seek(block);
        f.readFully(b);
        int bits = 1 << order;
        long entries = (long) clusterSize * 8 / bits;
        long count = 0;
        long min = Long.MAX_VALUE;
        long max = 0;
        for (long i = 0; i < entries; i++) {
            long v;
            if (bits < 8) {
                long bit = i * bits;
                v = (b[(int) (bit / 8)] >>> (bit % 8)) & ((1 << bits) - 1);
            } else {
                v = 0;
                int bytes = bits / 8;
                for (int k = 0; k < bytes; k++) {
                    v = (v << 8) | (b[(int) (i * bytes + k)] & 0xff);
                }
            }
            if (v != 0) {
                count++;
                min = Math.min(min, v);
                max = Math.max(max, v);
            }
        }
        return new long[] {count, count == 0 ? 0 : min, max};
    }

    /** Every section has a human form, offsets in hex. */
    @ParameterizedTest
    @ValueSource(strings = {"snapshot.qcow2", "bitmaps.qcow2", "extended-l2.qcow2", "chain-top.qcow2", "v2.qcow2"})
    void humanForm(String name) {
        TestData.copyToTemp(name, tmp);
        String overview = qcow4j(tmp, "dump", name).assertOk().stdout();
        for (String s : List.of("header:", "extensions:", "l1:", "refcounts:", "bitmaps:", "snapshots:",
                "  magic:", "0x514649fb", "l1_table_offset:", "refcount_table_offset:", "nb_snapshots:")) {
            assertTrue(overview.contains(s), s + " in\n" + overview);
        }
        for (String section : List.of("header", "extensions", "l1", "refcounts", "bitmaps", "snapshots")) {
            String out = qcow4j(tmp, "dump", name, section).assertOk().stdout();
            assertTrue(out.startsWith(section + ":"), out);
        }
        String l2 = qcow4j(tmp, "dump", name, "l2", "0").assertOk().stdout();
        assertTrue(l2.contains("index") && l2.contains("host_offset"), l2);
    }

    /** Lists stop at 65536 items and say how many were left out; counts still cover everything. */
    @Test
    void longListsAreCapped() throws IOException {
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", "big.qcow2", "4G").assertOk();
        qemuIo(tmp, "-c", "write 0 512", "big.qcow2").assertOk();
        try (RandomAccessFile f = new RandomAccessFile(tmp.resolve("big.qcow2").toFile(), "rw")) {
            long l1Size = u32(f, 36);
            long l1Offset = u64(f, 40);
            assertEquals(131072, l1Size);
            long entry = u64(f, l1Offset);
            byte[] table = new byte[(int) l1Size * 8];
            java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(table);
            for (int i = 0; i < l1Size; i++) {
                b.putLong(i * 8, entry);
            }
            f.seek(l1Offset);
            f.write(table);
        }
        JsonNode l1 = dump("big.qcow2", "l1").get("l1");
        assertEquals(131072, l1.get("l2_tables").asLong());
        assertEquals(65536, l1.get("entries").size());
        assertEquals(65536, l1.get("entries_omitted").asLong());
        assertEquals(65535, l1.get("entries").get(65535).get("index").asLong());
    }

    /** Lies in the header or the tables: one error line, exit 1, no trace, no hang. */
    @ParameterizedTest
    @ValueSource(strings = {
        "36:I:ffffffff:l1:l1_size 4294967295 exceeds",
        "40:Q:7fffffff00000000:l1:lies outside the file",
        "56:I:ffffffff:refcounts:refcount_table_clusters 4294967295 exceeds",
        "48:Q:ffffffffffff0000:refcounts:lies outside the file",
        "60:I:ffffffff:snapshots:nb_snapshots 4294967295 exceeds",
        "60:I:10000:snapshots:snapshot table entry",
        "116:I:fffffff0:extensions:overruns the extension area",
        "20:I:28:header:cluster_bits 40 out of range",
        "100:I:fffffff8:header:header_length 4294967288 out of range",
        "4:I:7:header:Unsupported qcow2 version 7",
    })
    void damagedImages(String spec) throws IOException {
        String[] p = spec.split(":");
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "d.qcow2", "16M").assertOk();
        qemuIo(tmp, "-c", "write 0 64k", "d.qcow2").assertOk();
        qemuImg(tmp, "snapshot", "-c", "s", "d.qcow2").assertOk();
        try (RandomAccessFile f = new RandomAccessFile(tmp.resolve("d.qcow2").toFile(), "rw")) {
            f.seek(Long.parseLong(p[0]));
            long v = Long.parseUnsignedLong(p[2], 16);
            if (p[1].equals("I")) {
                f.writeInt((int) v);
            } else {
                f.writeLong(v);
            }
        }
        for (String out : List.of("--output=json", "--output=human")) {
            Qemu.Result r = qcow4j(tmp, "dump", out, "d.qcow2", p[3]);
            assertEquals(1, r.exitCode(), r.describe());
            assertEquals("", r.stdout(), r.describe());
            assertEquals(1, r.stderr().lines().count(), r.describe());
            assertTrue(r.stderr().startsWith("qcow4j: Could not dump 'd.qcow2': "), r.describe());
            assertTrue(r.stderr().contains(p[4]), r.describe());
            Cli.assertNoStackTrace(r);
            // the overview shows what it can, the broken part as "error", and fails the same way
            Qemu.Result o = qcow4j(tmp, "dump", out, "d.qcow2");
            assertEquals(1, o.exitCode(), o.describe());
            assertEquals(1, o.stderr().lines().count(), o.describe());
            assertTrue(o.stderr().contains(p[4]), o.describe());
        }
    }

    /** An L2 table or refcount block outside the file. */
    @Test
    void tablesOutsideTheFile() throws IOException {
        qemuImg(tmp, "create", "-q", "-f", "qcow2", "d.qcow2", "16M").assertOk();
        qemuIo(tmp, "-c", "write 0 64k", "d.qcow2").assertOk();
        try (RandomAccessFile f = new RandomAccessFile(tmp.resolve("d.qcow2").toFile(), "rw")) {
            long l1 = u64(f, 40);
            f.seek(l1);
            f.writeLong(0x8000_0000_7000_0000L);
            long rt = u64(f, 48);
            f.seek(rt);
            f.writeLong(0x7000_0000L);
        }
        Cli.assertOneLineError(qcow4j(tmp, "dump", "d.qcow2", "l2", "0"), 1,
                "Could not dump 'd.qcow2': L2 table (L1 index 0) at 0x70000000 (65536 bytes) lies outside the file ("
                        + Files.size(tmp.resolve("d.qcow2")) + " bytes)");
        JsonNode rc = dump("d.qcow2", "refcounts").get("refcounts");
        assertEquals("not a cluster-aligned offset inside the file", rc.get("entries").get(0).get("problem").asText());
    }

    @Test
    void usageErrors() throws IOException {
        TestData.copyToTemp("empty.qcow2", tmp);
        Files.writeString(tmp.resolve("text.txt"), "not an image\n");
        Cli.assertOneLineError(qcow4j(tmp, "dump", "empty.qcow2", "nosuch"), 1,
                "Unknown section 'nosuch' (sections: header, extensions, l1, l2 N, refcounts, bitmaps, snapshots)");
        Cli.assertOneLineError(qcow4j(tmp, "dump", "empty.qcow2", "l2"), 1, "l2 needs the index of an L1 entry: dump FILE l2 N");
        Cli.assertOneLineError(qcow4j(tmp, "dump", "empty.qcow2", "l2", "x"), 1, "Invalid L1 index 'x'");
        Cli.assertOneLineError(qcow4j(tmp, "dump", "empty.qcow2", "l2", "1"), 1,
                "Could not dump 'empty.qcow2': L1 index 1 out of range (l1_size 1)");
        Cli.assertOneLineError(qcow4j(tmp, "dump", "empty.qcow2", "l1", "1"), 1, "Unexpected argument '1': only l2 takes a number");
        Cli.assertOneLineError(qcow4j(tmp, "dump", "nosuch.qcow2"), 1, "Could not open 'nosuch.qcow2': No such file or directory");
        Cli.assertOneLineError(qcow4j(tmp, "dump", "text.txt"), 1, "Could not dump 'text.txt': Image is not in qcow2 format");
        Cli.assertOneLineError(qcow4j(tmp, "dump", "--output=xml", "empty.qcow2"), 1,
                "--output must be used with human or json as argument.");
        // an unallocated L2 table is an empty list
        JsonNode l2 = dump("empty.qcow2", "l2", "0").get("l2");
        assertEquals(0, l2.get("l2_offset").asLong());
        assertEquals(0, l2.get("entries").size());
    }
}
