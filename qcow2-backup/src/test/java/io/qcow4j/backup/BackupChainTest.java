package io.qcow4j.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.testing.Qemu;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * A full and four later backups (an incremental, one after a discard, one after a resize, a
 * differential) of an image that QEMU writes between them, in each format: every point
 * restores to what the disk was then (qemu-img compare against a raw copy taken then), and
 * each incremental holds no more than the clusters that changed.
 */
class BackupChainTest {
    private static final long CLUSTER = 65536;

    @TempDir
    Path tmp;

    @ParameterizedTest(name = "{0} compressed={1}")
    @CsvSource({"qcow2,false", "stream,false", "stream,true"})
    void fullIncrementalsAndDifferentialRestoreEveryPoint(String fmt, boolean compress) throws IOException {
        Format format = Format.parse(fmt);
        Path img = tmp.resolve("disk.qcow2");
        Path dir = tmp.resolve("set");
        Qemu.create(img, "32M");
        Sets.io(img, "write -P 0x11 0 3M", "write -P 0x12 8M 1M", "write -z 12M 1M", "write -P 0x13 20M 64k");
        List<String> points = new ArrayList<>();
        List<Path> raws = new ArrayList<>();

        BackupResult full = Sets.backup(img, dir, Level.AUTO, format, compress);
        assertEquals(Level.FULL, full.level());
        assertNull(full.note());
        assertEquals(4L * 1024 * 1024 + CLUSTER, full.dataBytes());
        points.add(full.checkpoint());
        raws.add(Sets.snapshot(img, tmp.resolve("p0.raw")));

        // an incremental: 3 clusters touched, one of them by a 4 KiB write
        Sets.io(img, "write -P 0x21 1M 128k", "write -P 0x22 30M 4k");
        BackupResult inc1 = Sets.backup(img, dir, Level.AUTO, format, compress);
        assertEquals(Level.INC, inc1.level());
        assertNull(inc1.note());
        assertEquals(full.checkpoint(), inc1.since());
        assertChanged(dir, inc1, format, 3 * CLUSTER);
        points.add(inc1.checkpoint());
        raws.add(Sets.snapshot(img, tmp.resolve("p1.raw")));

        // after a discard: the discarded data is stored as zeros, not read
        Sets.io(img, "discard 0 1M", "write -P 0x31 16M 64k");
        BackupResult inc2 = Sets.backup(img, dir, Level.INC, format, compress);
        assertEquals(CLUSTER, inc2.dataBytes());
        assertEquals(1024 * 1024, inc2.zeroBytes());
        assertChanged(dir, inc2, format, CLUSTER);
        points.add(inc2.checkpoint());
        raws.add(Sets.snapshot(img, tmp.resolve("p2.raw")));

        // after a resize (its bitmaps resized with it): the backup records the new size
        Qemu.qemuImg("resize", "-q", img.toString(), "48M").assertOk();
        Sets.io(img, "write -P 0x41 40M 64k", "write -P 0x42 2M 64k");
        BackupResult inc3 = Sets.backup(img, dir, Level.INC, format, compress);
        assertChanged(dir, inc3, format, 2 * CLUSTER);
        assertEquals(48L << 20, BackupSet.manifest(dir).find(inc3.checkpoint()).virtualSize);
        points.add(inc3.checkpoint());
        raws.add(Sets.snapshot(img, tmp.resolve("p3.raw")));

        // a differential: everything since the full, no new checkpoint
        Sets.io(img, "write -P 0x51 24M 64k");
        BackupResult diff = Sets.backup(img, dir, Level.DIFF, format, compress);
        assertEquals(Level.DIFF, diff.level());
        assertNull(diff.checkpoint());
        assertEquals(full.checkpoint(), diff.since());
        points.add(diff.file().getFileName().toString());
        raws.add(Sets.snapshot(img, tmp.resolve("p4.raw")));

        for (int i = 0; i < points.size(); i++) {
            Sets.assertRestores(dir, points.get(i), raws.get(i), tmp.resolve("r" + i + ".qcow2"), false);
            Sets.assertRestores(dir, points.get(i), raws.get(i), tmp.resolve("r" + i + ".raw"), true);
        }
        assertTrue(BackupSet.verify(dir, Progress.none()).good());
        if (format == Format.QCOW2) {
            for (BackupRecord b : BackupSet.manifest(dir).backups) {
                Path f = dir.resolve(b.file);
                Qemu.check(f).assertOk();
                Path conv = tmp.resolve("conv-" + b.seq + ".raw");
                Qemu.convertToRaw(f, conv);
                assertTrue(Qemu.compare(conv, raws.get(b.seq - 1)), b.file + " converted by qemu-img");
            }
            String chain = Qemu.run("qemu-img", "info", "--backing-chain", dir.resolve(diff.file().getFileName()).toString())
                    .assertOk().stdout();
            assertTrue(chain.contains("backing file: disk.001.full.qcow2"), chain);
        }
    }

    /**
     * A disk shrunk in one interval and grown in the next: the data past the shrink point is
     * gone at the second point (it reads zeros), though no bitmap records it.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"qcow2", "stream"})
    void shrinkThenGrowAcrossBackups(String fmt) throws IOException {
        Format format = Format.parse(fmt);
        Path img = tmp.resolve("disk.qcow2");
        Path dir = tmp.resolve("set");
        Qemu.create(img, "16M");
        Sets.io(img, "write -P 0x11 0 16M");
        Sets.backup(img, dir, Level.FULL, format, false);
        Qemu.qemuImg("resize", "-q", "--shrink", img.toString(), "8M").assertOk();
        BackupResult shrunk = Sets.backup(img, dir, Level.INC, format, false);
        Path p1 = Sets.snapshot(img, tmp.resolve("p1.raw"));
        Qemu.qemuImg("resize", "-q", img.toString(), "16M").assertOk();
        Sets.io(img, "write -P 0x22 12M 64k");
        BackupResult grown = Sets.backup(img, dir, Level.INC, format, false);
        assertEquals(CLUSTER, grown.dataBytes());
        Path p2 = Sets.snapshot(img, tmp.resolve("p2.raw"));
        Sets.assertRestores(dir, shrunk.checkpoint(), p1, tmp.resolve("r1.qcow2"), false);
        Sets.assertRestores(dir, grown.checkpoint(), p2, tmp.resolve("r2.raw"), true);
        Sets.assertRestores(dir, grown.checkpoint(), p2, tmp.resolve("r2.qcow2"), false);
        if (format == Format.QCOW2) {
            Path conv = tmp.resolve("conv.raw");
            Qemu.convertToRaw(grown.file(), conv);
            assertTrue(Qemu.compare(conv, p2), "qemu-img convert of the grown point");
        }
    }

    /**
     * A disk shrunk and grown again between two backups: QEMU cuts and regrows the checkpoint's
     * bitmap with the disk, clean, while the regrown area reads zeros. The incremental finds
     * the parent's data there reading zeros now and stores the zeros, and says so.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"qcow2", "stream"})
    void shrinkAndGrowWithinOneInterval(String fmt) throws IOException {
        Format format = Format.parse(fmt);
        Path img = tmp.resolve("disk.qcow2");
        Path dir = tmp.resolve("set");
        Qemu.create(img, "16M");
        Sets.io(img, "write -P 0x11 0 16M");
        Sets.backup(img, dir, Level.FULL, format, false);
        Qemu.qemuImg("resize", "-q", "--shrink", img.toString(), "8M").assertOk();
        Qemu.qemuImg("resize", "-q", img.toString(), "16M").assertOk();
        Sets.io(img, "write -P 0x22 12M 64k", "write -P 0x23 1M 64k");
        // the premise: QEMU's bitmap shows only the two writes, the regrown area is clean though it lost its data
        String map = Qemu.nbdMap(img, "qcow4j.0");
        assertTrue(map.matches("(?s)\\s*0\\s+1048576\\s+0\\s+clean\n.*\\s12582912\\s+65536\\s+1\\s+dirty\n"
                + "\\s*12648448\\s+4128768\\s+0\\s+clean\n"), map);
        BackupResult inc = Sets.backup(img, dir, Level.INC, format, false);
        assertEquals(2 * CLUSTER, inc.dataBytes());
        assertEquals(8L * 1024 * 1024 - CLUSTER, inc.zeroBytes(), "the regrown area less the cluster written");
        assertTrue(inc.note() != null && inc.note().contains((8L * 1024 * 1024 - CLUSTER) + " bytes that checkpoint"), inc.note());
        Path now = Sets.snapshot(img, tmp.resolve("now.raw"));
        Sets.assertRestores(dir, inc.checkpoint(), now, tmp.resolve("r.qcow2"), false);
        if (format == Format.QCOW2) {
            Path conv = tmp.resolve("conv.raw");
            Qemu.convertToRaw(inc.file(), conv);
            assertTrue(Qemu.compare(conv, now), "qemu-img convert of the incremental");
        }
        // the next incremental finds nothing more to add
        Sets.io(img, "write -P 0x24 2M 64k");
        BackupResult next = Sets.backup(img, dir, Level.INC, format, false);
        assertNull(next.note());
        assertEquals(CLUSTER, next.dataBytes());
        assertEquals(0, next.zeroBytes());
    }

    /** The backup holds no more data than the clusters the test changed. */
    private static void assertChanged(Path dir, BackupResult r, Format format, long changed) throws IOException {
        assertTrue(r.dataBytes() <= changed, r.dataBytes() + " data bytes for " + changed + " changed");
        if (format == Format.QCOW2) {
            long held = Sets.layerDataBytes(r.file());
            assertTrue(held <= changed, r.file() + " holds " + held + " bytes for " + changed + " changed");
        }
        assertTrue(Files.size(r.file()) < changed + 1024 * 1024, "file of " + Files.size(r.file()) + " bytes");
    }
}
