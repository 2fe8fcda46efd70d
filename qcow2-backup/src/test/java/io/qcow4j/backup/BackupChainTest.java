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
