package io.qcow4j.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * BackupChainTest's scenario from an NBD export of the image (qemu-nbd -B, and our server),
 * the checkpoints kept by the test as libvirt keeps them ({@link NbdSets.Owner}): a full and
 * four later backups (an incremental, one after a discard, one after a resize, a
 * differential), in each format. Every point restores to a copy of the disk then, each
 * incremental holds no more than the clusters that changed, and virtnbdrestore reads the
 * stream files.
 */
class NbdBackupChainTest {
    private static final long CLUSTER = 65536;

    @TempDir
    Path tmp;

    @ParameterizedTest(name = "{0} from {1}")
    // both formats from qemu-nbd -B; our server once (the formats do not depend on the server)
    @CsvSource({"qcow2,qemu-nbd", "stream,qemu-nbd", "stream,qcow4j"})
    void fullIncrementalsAndDifferentialFromAnExport(String fmt, String server) throws IOException {
        Format format = Format.parse(fmt);
        Path img = tmp.resolve("vda.qcow2");
        Path dir = tmp.resolve("set");
        Qemu.create(img, "32M");
        NbdSets.Owner vm = new NbdSets.Owner(img);
        Sets.io(img, "write -P 0x11 0 3M", "write -P 0x12 8M 1M", "write -z 12M 1M", "write -P 0x13 20M 64k");
        List<String> points = new ArrayList<>();
        List<Path> raws = new ArrayList<>();

        vm.checkpoint("c0");
        BackupResult full = NbdSets.backup(server, img, dir, BackupOptions.defaults().format(format).checkpoint("c0"));
        assertEquals(Level.FULL, full.level());
        assertEquals("c0", full.checkpoint());
        assertNull(full.note());
        // base:allocation reports the zero clusters as holes, like the never-written rest: not read, not stored
        assertEquals(4L * 1024 * 1024 + CLUSTER, full.dataBytes());
        assertEquals(0, full.zeroBytes());
        points.add("c0");
        raws.add(Sets.snapshot(img, tmp.resolve("p0.raw")));

        Sets.io(img, "write -P 0x21 1M 128k", "write -P 0x22 30M 4k");
        BackupResult inc1 = inc(server, vm, dir, "c1", Level.AUTO);
        assertEquals(Level.INC, inc1.level());
        assertEquals("c0", inc1.since());
        assertNull(inc1.note());
        assertChanged(inc1, format, 3 * CLUSTER);
        points.add("c1");
        raws.add(Sets.snapshot(img, tmp.resolve("p1.raw")));

        // after a discard: stored as zeros, not read
        Sets.io(img, "discard 0 1M", "write -P 0x31 16M 64k");
        BackupResult inc2 = inc(server, vm, dir, "c2", Level.INC);
        assertEquals(CLUSTER, inc2.dataBytes());
        assertEquals(1024 * 1024, inc2.zeroBytes());
        assertChanged(inc2, format, CLUSTER);
        points.add("c2");
        raws.add(Sets.snapshot(img, tmp.resolve("p2.raw")));

        // after a resize (qemu-img resizes the bitmaps with the disk)
        Qemu.qemuImg("resize", "-q", img.toString(), "48M").assertOk();
        Sets.io(img, "write -P 0x41 40M 64k", "write -P 0x42 2M 64k");
        BackupResult inc3 = inc(server, vm, dir, "c3", Level.INC);
        assertChanged(inc3, format, 2 * CLUSTER);
        assertEquals(48L << 20, BackupSet.manifest(dir).find("c3").virtualSize);
        points.add("c3");
        raws.add(Sets.snapshot(img, tmp.resolve("p3.raw")));

        // a differential: everything since the full's checkpoint, no new checkpoint
        Sets.io(img, "write -P 0x51 24M 64k");
        assertEquals("c0", BackupSet.since(dir, Level.DIFF));
        vm.changesSince("c0");
        BackupResult diff = NbdSets.backup(server, img, dir,
                BackupOptions.defaults().level(Level.DIFF).bitmap(NbdSets.EXPORTED));
        vm.dropExported();
        assertEquals(Level.DIFF, diff.level());
        assertNull(diff.checkpoint());
        assertEquals("c0", diff.since());
        // since c0: 2 clusters at 1M, 1 at 30M, 16M, 24M, 2 after the resize; the discarded 1 MiB as zeros
        assertChanged(diff, format, 7 * CLUSTER);
        assertEquals(1024 * 1024, diff.zeroBytes());
        assertEquals(BackupSet.manifest(dir).backups.get(0).file, BackupSet.manifest(dir).find(diff.file().getFileName().toString()).parent);
        points.add(diff.file().getFileName().toString());
        raws.add(Sets.snapshot(img, tmp.resolve("p4.raw")));

        for (int i = 0; i < points.size(); i++) {
            // raw and qcow2 targets in turn: both are covered without doubling the run time
            boolean raw = i % 2 == 1;
            Sets.assertRestores(dir, points.get(i), raws.get(i), tmp.resolve("r" + i + (raw ? ".raw" : ".qcow2")), raw);
        }
        assertTrue(BackupSet.verify(dir, Progress.none()).good());
        for (BackupRecord b : BackupSet.manifest(dir).backups) {
            assertEquals(b.level.equals("inc") || b.level.equals("diff") ? NbdSets.EXPORTED : null, b.bitmap, b.file);
        }
        if (format == Format.QCOW2) {
            for (BackupRecord b : BackupSet.manifest(dir).backups) {
                Qemu.check(dir.resolve(b.file)).assertOk();
            }
            Path conv = tmp.resolve("conv.raw");
            Qemu.convertToRaw(dir.resolve("vda.004.inc.qcow2"), conv);
            assertTrue(Qemu.compare(conv, raws.get(3)), "qemu-img convert of the resized point");
        } else if (server.equals("qemu-nbd")) {
            virtnbdrestoreDumps(dir);
        }
    }

    /**
     * A disk shrunk and grown again between two backups, as qemu-nbd serves it: the exported
     * bitmap is clean in the regrown area, base:allocation says it reads zeros, and the
     * incremental stores them.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"qcow2", "stream"})
    void shrinkAndGrowWithinOneInterval(String fmt) throws IOException {
        Format format = Format.parse(fmt);
        Path img = tmp.resolve("vda.qcow2");
        Path dir = tmp.resolve("set");
        Qemu.create(img, "16M");
        NbdSets.Owner vm = new NbdSets.Owner(img);
        Sets.io(img, "write -P 0x11 0 16M");
        vm.checkpoint("c0");
        NbdSets.backup("qemu-nbd", img, dir, BackupOptions.defaults().format(format).checkpoint("c0"));
        Qemu.qemuImg("resize", "-q", "--shrink", img.toString(), "8M").assertOk();
        Qemu.qemuImg("resize", "-q", img.toString(), "16M").assertOk();
        Sets.io(img, "write -P 0x22 12M 64k");
        BackupResult inc = inc("qemu-nbd", vm, dir, "c1", Level.INC);
        assertEquals(CLUSTER, inc.dataBytes());
        assertEquals(8L * 1024 * 1024 - CLUSTER, inc.zeroBytes());
        assertTrue(inc.note() != null && inc.note().contains("bitmap 'backup' does not show as changed"), inc.note());
        Sets.assertRestores(dir, "c1", Sets.snapshot(img, tmp.resolve("now.raw")), tmp.resolve("r.raw"), true);
    }

    /** The owner's new checkpoint, the changes since the set's latest one exported, an incremental. */
    static BackupResult inc(String server, NbdSets.Owner vm, Path dir, String checkpoint, Level level) throws IOException {
        String since = BackupSet.since(dir, Level.INC);
        vm.checkpoint(checkpoint);
        vm.changesSince(since);
        try {
            return NbdSets.backup(server, vm.img, dir,
                    BackupOptions.defaults().level(level).bitmap(NbdSets.EXPORTED).checkpoint(checkpoint));
        } finally {
            vm.dropExported();
        }
    }

    /** virtnbdbackup's restore tool lists the stream files written from the export, with their checkpoints. */
    private void virtnbdrestoreDumps(Path dir) throws IOException {
        Qemu.Result r = Qemu.run("env", "HOME=" + tmp, "virtnbdrestore", "-a", "dump", "-i", dir.toString(), "-o", "dump",
                "-L", tmp.resolve("virtnbdrestore.log").toString()).assertOk();
        JsonNode dump = Sets.parse(r.stdout().substring(r.stdout().indexOf('[')));
        Manifest m = BackupSet.manifest(dir);
        assertEquals(m.backups.size(), dump.size(), r.describe());
        for (int i = 0; i < dump.size(); i++) {
            BackupRecord b = m.backups.get(i);
            JsonNode d = dump.get(i);
            assertEquals(b.checkpoint == null ? "" : b.checkpoint, d.get("checkpointName").asText(), b.file);
            assertEquals(b.virtualSize, d.get("virtualSize").asLong(), b.file);
            assertEquals(b.dataBytes, d.get("dataSize").asLong(), b.file);
            assertEquals("vda", d.get("diskName").asText(), b.file);
            assertEquals(i > 0, d.get("incremental").asBoolean(), b.file);
            if (i > 0) {
                assertEquals(b.since, d.get("parentCheckpoint").asText(), b.file);
            } else {
                assertFalse(d.get("parentCheckpoint").asBoolean(), b.file);
            }
        }
    }

    /** The backup holds no more data than the clusters the test changed. */
    static void assertChanged(BackupResult r, Format format, long changed) throws IOException {
        assertTrue(r.dataBytes() <= changed, r.dataBytes() + " data bytes for " + changed + " changed");
        if (format == Format.QCOW2) {
            long held = Sets.layerDataBytes(r.file());
            assertTrue(held <= changed, r.file() + " holds " + held + " bytes for " + changed + " changed");
        }
        assertTrue(Files.size(r.file()) < changed + 1024 * 1024, "file of " + Files.size(r.file()) + " bytes");
    }
}
