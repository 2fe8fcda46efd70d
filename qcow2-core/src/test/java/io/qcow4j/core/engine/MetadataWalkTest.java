package io.qcow4j.core.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.format.SnapshotEntry;
import io.qcow4j.testing.TestData;

/**
 * The walk of the whole metadata graph over images qemu-img made: what it visits, in
 * qemu-img check's order, at the offsets the image's own bytes give (read here without the
 * engine); what it counts is what qemu-img's refcounts say; a corrupt refcount table,
 * snapshot table or bitmap directory is refused in the structure's words.
 */
class MetadataWalkTest {
    @TempDir
    Path tmp;

    /** Every structure and tree visit, one line each, and the refcount blocks with their entry. */
    private static List<String> visits(EngineParts p) {
        List<String> seen = new ArrayList<>();
        MetadataWalk.walk(p, new MetadataWalk.Visitor<RuntimeException>() {
            @Override
            protected void structure(MetadataWalk.Structure s, long offset, long length) {
                if (s != MetadataWalk.Structure.BITMAP_CLUSTER) {
                    seen.add(s + " 0x" + Long.toHexString(offset) + "+0x" + Long.toHexString(length));
                }
            }

            @Override
            protected void l1Tree(long offset, int entries, SnapshotEntry snapshot) {
                seen.add("tree " + (snapshot == null ? "active" : snapshot.name));
            }

            @Override
            protected List<MetadataWalk.BitmapTable> bitmapDirectory(io.qcow4j.core.format.BitmapsExtension be) {
                return List.of(); // read in bitmapsAreVisitedWithTheirTables
            }

            @Override
            protected void refcountBlock(MetadataWalk w) {
                seen.add("REFCOUNT_BLOCK " + w.index() + " at 0x" + Long.toHexString(w.entryAt()) + " 0x" + Long.toHexString(w.block()));
            }
        });
        return seen;
    }

    /** Big-endian words of the file, read without the engine: the oracle qemu-img wrote. */
    private static ByteBuffer bytes(Path img, long offset, int n) throws IOException {
        try (FileChannel ch = FileChannel.open(img)) {
            ByteBuffer b = ByteBuffer.allocate(n);
            ch.read(b, offset);
            return b.flip();
        }
    }

    private static void writeLong(Path img, long offset, long value) throws IOException {
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.allocate(8).putLong(0, value), offset);
        }
    }

    private static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }

    @Test
    void visitsInQemuCheckOrderAtTheImageOffsets() throws IOException {
        Path img = TestData.image("snapshot.qcow2");
        ByteBuffer h = bytes(img, 0, 104);
        int cs = 1 << h.getInt(20);
        long l1 = h.getLong(40);
        long l1Size = Integer.toUnsignedLong(h.getInt(36));
        long rt = h.getLong(48);
        long rtClusters = Integer.toUnsignedLong(h.getInt(56));
        int nbSnapshots = h.getInt(60);
        long snapshots = h.getLong(64);
        List<String> want = new ArrayList<>();
        want.add("HEADER 0x0+" + hex(cs));
        want.add("ACTIVE_L1 " + hex(l1) + "+" + hex(8 * l1Size));
        want.add("tree active");
        // the snapshot table's entries, measured as qemu measures them: each padded to 8 but the last
        ByteBuffer st = bytes(img, snapshots, 4096);
        int pos = 0;
        long tableLength = 0;
        for (int i = 0; i < nbSnapshots; i++) {
            pos = (pos + 7) & ~7;
            long snapL1 = st.getLong(pos);
            long snapL1Size = Integer.toUnsignedLong(st.getInt(pos + 8));
            int idSize = st.getShort(pos + 12) & 0xffff;
            int nameSize = st.getShort(pos + 14) & 0xffff;
            int extra = st.getInt(pos + 36);
            byte[] name = new byte[nameSize];
            st.get(pos + 40 + extra + idSize, name);
            want.add("SNAPSHOT_L1 " + hex(snapL1) + "+" + hex(8 * snapL1Size));
            want.add("tree " + new String(name, java.nio.charset.StandardCharsets.UTF_8));
            pos += 40 + extra + idSize + nameSize;
            tableLength = pos;
        }
        want.add("SNAPSHOT_TABLE " + hex(snapshots) + "+" + hex(tableLength));
        want.add("REFCOUNT_TABLE " + hex(rt) + "+" + hex(rtClusters * cs));
        ByteBuffer table = bytes(img, rt, (int) (rtClusters * cs));
        for (int i = 0; i < rtClusters * cs / 8; i++) {
            long e = table.getLong(8 * i);
            if (e != 0) {
                want.add("REFCOUNT_BLOCK " + i + " at " + hex(rt + 8L * i) + " " + hex(e));
            }
        }
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            synchronized (image.engine().lock()) {
                assertEquals(want, visits(image.engine().engineParts()));
            }
        }
    }

    @Test
    void bitmapsAreVisitedWithTheirTables() throws IOException {
        Path img = TestData.image("bitmaps.qcow2");
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            synchronized (image.engine().lock()) {
                EngineParts p = image.engine().engineParts();
                List<String> seen = new ArrayList<>();
                MetadataWalk.walk(p, new MetadataWalk.FileVisitor(p) {
                    @Override
                    protected void structure(MetadataWalk.Structure s, long offset, long length) {
                        if (s.name().startsWith("BITMAP")) {
                            seen.add(s + " " + hex(offset) + "+" + hex(length));
                        }
                    }

                    @Override
                    protected List<MetadataWalk.BitmapTable> bitmapDirectory(io.qcow4j.core.format.BitmapsExtension be)
                            throws IOException {
                        List<MetadataWalk.BitmapTable> tables = super.bitmapDirectory(be);
                        tables.forEach(t -> seen.add(t.name()));
                        return tables;
                    }
                });
                // the oracle: the directory entries and table entries as qemu-img wrote them
                ByteBuffer h = bytes(img, 0, 4096);
                int pos = h.getInt(100); // header length: extensions follow
                while (h.getInt(pos) != 0x23852875) {
                    pos += 8 + ((h.getInt(pos + 4) + 7) & ~7);
                }
                long dirSize = h.getLong(pos + 8 + 8);
                long dir = h.getLong(pos + 8 + 16);
                List<String> want = new ArrayList<>();
                want.add("BITMAP_DIRECTORY " + hex(dir) + "+" + hex(dirSize));
                ByteBuffer d = bytes(img, dir, (int) dirSize);
                List<String> tables = new ArrayList<>();
                for (int at = 0; at < dirSize; ) {
                    long tableOffset = d.getLong(at);
                    int tableSize = d.getInt(at + 8);
                    int nameSize = d.getShort(at + 18) & 0xffff;
                    byte[] name = new byte[nameSize];
                    d.get(at + 24, name);
                    want.add(new String(name, java.nio.charset.StandardCharsets.UTF_8));
                    tables.add("BITMAP_TABLE " + hex(tableOffset) + "+" + hex(8L * tableSize));
                    ByteBuffer t = bytes(img, tableOffset, 8 * tableSize);
                    for (int i = 0; i < tableSize; i++) {
                        long off = t.getLong(8 * i) & 0x00fffffffffffe00L;
                        if (off != 0) {
                            tables.add("BITMAP_CLUSTER " + hex(off) + "+" + hex(p.geometry().clusterSize()));
                        }
                    }
                    at += (24 + nameSize + 7) & ~7;
                }
                want.addAll(tables);
                assertEquals(want, seen);
                assertTrue(seen.stream().anyMatch(s -> s.startsWith("BITMAP_CLUSTER")), "a bitmap with data: " + seen);
            }
        }
    }

    /** What the walk finds, counted, is what qemu-img's refcounts say (the images check clean). */
    @Test
    void countsWhatQemuCounted() throws IOException {
        for (String name : List.of("snapshot.qcow2", "bitmaps.qcow2", "zlib-compressed.qcow2", "cluster-512.qcow2")) {
            try (Qcow2Image image = Qcow2Image.open(TestData.image(name), OpenOptions.readOnly())) {
                synchronized (image.engine().lock()) {
                    EngineParts p = image.engine().engineParts();
                    ClusterCounts counts = RefcountRebuilder.count(p);
                    long clusters = (p.storage().length() + p.geometry().clusterSize() - 1) / p.geometry().clusterSize();
                    for (long c = 0; c < Math.max(clusters, counts.maxCluster() + 1); c++) {
                        assertEquals(p.refcounts().get(c), counts.get(c), name + ": cluster " + c);
                    }
                }
            }
        }
    }

    /**
     * A snapshot table of entries with 16 bytes of extra data (QEMU before 5.0 wrote no
     * icount) is counted as long as it is on the disk, not as long as a rewrite with 24-byte
     * extra data would be: here the table ends 7 bytes before its second cluster, which the
     * longer measure would count, and qemu-img's own repair says that cluster is free.
     */
    @Test
    void countsALegacySnapshotTableAsItIsOnDisk() throws IOException {
        Path img = tmp.resolve("legacy.qcow2");
        io.qcow4j.testing.Qemu.create(img, "1M", "cluster_size=512");
        // names sized so that qemu's 24-byte entries need two clusters and the 16-byte ones one
        io.qcow4j.testing.Qemu.qemuImg("snapshot", "-c", "a".repeat(190), img.toString()).assertOk();
        io.qcow4j.testing.Qemu.qemuImg("snapshot", "-c", "b".repeat(200), img.toString()).assertOk();
        long table = bytes(img, 64, 8).getLong();
        ByteBuffer old = bytes(img, table, 1024);
        ByteBuffer legacy = ByteBuffer.allocate(1024);
        int end = 0; // the legacy table's length as qemu measures it: the last entry unpadded
        for (int i = 0, at = 0; i < 2; i++) {
            int idLen = old.getShort(at + 12) & 0xffff;
            int nameLen = old.getShort(at + 14) & 0xffff;
            assertEquals(24, old.getInt(at + 36), "qemu 7.2 writes 24 bytes of extra data");
            int start = legacy.position();
            legacy.put(old.duplicate().position(at).limit(at + 36)).putInt(16);
            legacy.put(old.duplicate().position(at + 40).limit(at + 56)); // vm_state_size_large, disk_size
            legacy.put(old.duplicate().position(at + 64).limit(at + 64 + idLen + nameLen));
            end = legacy.position();
            legacy.position(start + ((legacy.position() - start + 7) & ~7));
            at += (64 + idLen + nameLen + 7) & ~7;
        }
        assertEquals(512 - 7, end, "the legacy table ends 7 bytes before its second cluster");
        try (FileChannel ch = FileChannel.open(img, StandardOpenOption.WRITE)) {
            ch.write(legacy.clear().limit(1024), table);
        }
        Path repaired = tmp.resolve("repaired.qcow2");
        java.nio.file.Files.copy(img, repaired);
        io.qcow4j.testing.Qemu.check(repaired, "-r", "leaks");
        assertEquals(0, io.qcow4j.testing.Qemu.check(repaired).exitCode(), "qemu-img repaired its leak");
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly());
             Qcow2Image oracle = Qcow2Image.open(repaired, OpenOptions.readOnly())) {
            synchronized (image.engine().lock()) {
                EngineParts p = image.engine().engineParts();
                ClusterCounts counts = RefcountRebuilder.count(p);
                EngineParts q = oracle.engine().engineParts();
                long clusters = (p.storage().length() + 511) / 512;
                for (long c = 0; c < Math.max(clusters, counts.maxCluster() + 1); c++) {
                    assertEquals(q.refcounts().get(c), counts.get(c), "cluster " + c);
                }
            }
        }
    }

    private static CorruptImageException refusal(Path img) throws IOException {
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly().checkMode(true))) {
            synchronized (image.engine().lock()) {
                return assertThrows(CorruptImageException.class, () -> RefcountRebuilder.count(image.engine().engineParts()));
            }
        }
    }

    @Test
    void refusesACorruptRefcountTableEntryInItsWords() throws IOException {
        Path img = TestData.copyToTemp("snapshot.qcow2", tmp);
        long rt = bytes(img, 48, 8).getLong();
        writeLong(img, rt + 8, 0x10000000L); // a second block, past the end of the file
        assertEquals("refcount table at offset " + hex(rt + 8) + ": refcount block offset 0x10000000 invalid",
                refusal(img).getMessage());
    }

    @Test
    void refusesACorruptSnapshotTableEntryInItsWords() throws IOException {
        Path img = TestData.copyToTemp("snapshot.qcow2", tmp);
        long snapshots = bytes(img, 64, 8).getLong();
        writeLong(img, snapshots, 0x80200L); // the first snapshot's L1 table, unaligned
        assertEquals("snapshot L1 table at offset 0x80200: L1 table offset invalid", refusal(img).getMessage());
        // check hears of it as qemu's check does, and skips the table
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly().checkMode(true))) {
            synchronized (image.engine().lock()) {
                List<String> bad = new ArrayList<>();
                MetadataWalk.walk(image.engine().engineParts(), new MetadataWalk.Visitor<RuntimeException>() {
                    @Override
                    protected boolean snapshotL1(SnapshotEntry sn, MetadataWalk.BadL1 why) {
                        bad.add(sn.name + " " + why);
                        return why == null;
                    }

                    @Override
                    protected void structure(MetadataWalk.Structure s, long offset, long length) {
                        assertTrue(s != MetadataWalk.Structure.SNAPSHOT_L1 || offset != 0x80200L, "skipped");
                    }

                    @Override
                    protected List<MetadataWalk.BitmapTable> bitmapDirectory(io.qcow4j.core.format.BitmapsExtension be) {
                        return List.of();
                    }
                });
                assertEquals(List.of("snap1 UNALIGNED", "snap2 null"), bad);
            }
        }
    }

    @Test
    void refusesACorruptBitmapDirectoryInItsWords() throws IOException {
        Path img = TestData.copyToTemp("bitmaps.qcow2", tmp);
        ByteBuffer h = bytes(img, 0, 4096);
        int pos = h.getInt(100);
        while (h.getInt(pos) != 0x23852875) {
            pos += 8 + ((h.getInt(pos + 4) + 7) & ~7);
        }
        writeLong(img, pos + 8 + 16, 0x10000000L); // the directory, past the end of the file
        assertEquals("bitmap directory at offset 0x10000000: Bitmap directory extends past the end of the file",
                refusal(img).getMessage());
        // far past it: refused in the same words before anything counts a cluster there
        // (the count holds cluster indexes up to 2^31; this one is 2^32)
        writeLong(img, pos + 8 + 16, 1L << 48);
        assertEquals("bitmap directory at offset 0x1000000000000: Bitmap directory extends past the end of the file",
                refusal(img).getMessage());
    }
}
