package io.qcow4j.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import io.qcow4j.testing.NbdExport;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An NBD server that fails mid-backup: qemu-nbd killed (the connection drops), nbdkit's error
 * filter failing every read from some point on (the connection stays). The backup fails with
 * one error, leaves the set as it was (no file, nothing recorded), and the next backup, counting
 * from the set's latest checkpoint, captures every change since the last one that completed.
 */
class NbdBackupFailureTest {
    private static final long MIB = 1024 * 1024;

    @TempDir
    Path tmp;

    @Test
    void qemuNbdKilledMidIncremental() throws IOException {
        Path img = tmp.resolve("vda.qcow2");
        Path dir = tmp.resolve("set");
        Qemu.create(img, "64M");
        NbdSets.Owner vm = new NbdSets.Owner(img);
        Sets.io(img, "write -P 0x11 0 1M");
        vm.checkpoint("c0");
        NbdSets.backup("qemu-nbd", img, dir, BackupOptions.defaults().format(Format.STREAM).checkpoint("c0"));
        // changes the failed backup is after: 12 MiB over several pieces
        Sets.io(img, "write -P 0x21 4M 6M", "write -P 0x22 20M 6M", "discard 0 64k");
        List<String> before = listing(dir);

        // libvirt's way: the new checkpoint is made when the backup starts
        assertEquals("c0", BackupSet.since(dir, Level.INC));
        vm.checkpoint("c1");
        vm.changesSince("c0");
        IOException e;
        try (NbdSets.Export export = NbdSets.qemuNbd(img, NbdSets.EXPORTED);
             NbdSource src = NbdSource.open(export.uri(), NbdSets.EXPORTED)) {
            boolean[] killed = {false};
            Progress p = new Progress((done, total) -> {
                if (done > 0 && !killed[0]) {
                    killed[0] = true;
                    try {
                        export.kill(); // SIGKILL
                    } catch (IOException x) {
                        throw new AssertionError(x);
                    }
                }
            });
            e = assertThrows(IOException.class, () -> BackupSet.backup(dir, src,
                    BackupOptions.defaults().level(Level.INC).bitmap(NbdSets.EXPORTED).checkpoint("c1").progress(p)));
            assertTrue(killed[0]);
        }
        assertOneLine(e);
        assertTrue(e.getMessage().startsWith("the NBD connection failed during "), e.getMessage());
        assertEquals(before, listing(dir), "the failed backup left no file");
        assertEquals(1, Manifest.load(dir).backups.size(), "the failed backup is not in the manifest");
        assertNull(Manifest.load(dir).pending);
        assertTrue(BackupSet.verify(dir, Progress.none()).good(), "the set is as consistent as before");
        vm.dropExported();

        // the VM writes on (into c1, which stays: its owner made it); the next backup counts from c0 still
        Sets.io(img, "write -P 0x23 30M 64k");
        assertEquals("c0", BackupSet.since(dir, Level.INC));
        BackupResult inc = NbdBackupChainTest.inc("qemu-nbd", vm, dir, "c2", Level.AUTO);
        assertEquals(Level.INC, inc.level());
        assertEquals("c0", inc.since());
        assertEquals(12 * MIB + 65536, inc.dataBytes());
        assertEquals(65536, inc.zeroBytes());
        Sets.assertRestores(dir, "c2", Sets.snapshot(img, tmp.resolve("now.raw")), tmp.resolve("r.qcow2"), false);
        assertEquals(List.of("c0", "c2"), Manifest.load(dir).backups.stream().map(b -> b.checkpoint).toList());
    }

    @Test
    void nbdkitReadErrorsMidFull() throws IOException {
        Path raw = tmp.resolve("vda.raw");
        Path dir = tmp.resolve("set");
        Qemu.qemuImg("create", "-q", "-f", "raw", raw.toString(), "32M").assertOk();
        Qemu.qemuIo("-f", "raw", "-c", "write -P 0x31 0 12M", raw.toString()).assertOk();
        Path trigger = tmp.resolve("fail-now");
        IOException e;
        try (NbdExport nbdkit = NbdExport.nbdkit("--filter=error", "file", raw.toString(), "error-pread=EIO",
                "error-pread-rate=1", "error-pread-file=" + trigger);
             NbdSource src = NbdSource.open(nbdkit.uri(), null)) {
            Progress p = new Progress((done, total) -> {
                if (done > 0) {
                    try {
                        Files.write(trigger, new byte[0]);
                    } catch (IOException x) {
                        throw new AssertionError(x);
                    }
                }
            });
            e = assertThrows(IOException.class, () -> BackupSet.backup(dir, src,
                    BackupOptions.defaults().format(Format.QCOW2).checkpoint("c0").progress(p)));
            assertOneLine(e);
            assertTrue(e.getMessage().matches("the NBD server failed a read of \\d+ bytes at offset \\d+: Input/output error"),
                    e.getMessage());
            assertEquals(List.of(Manifest.FILE), listing(dir), "no backup file is left");
            assertTrue(Manifest.load(dir).backups.isEmpty());

            // the connection is still good: once the server reads again, the full completes
            Files.delete(trigger);
            BackupResult full = BackupSet.backup(dir, src, BackupOptions.defaults().checkpoint("c0"));
            assertEquals(12 * MIB, full.dataBytes());
        }
        Sets.assertRestores(dir, "c0", raw, tmp.resolve("r.raw"), true);
    }

    /**
     * The bitmap lost (a VM restarted without persistent bitmaps): the export offers no
     * dirty-bitmap context (qemu-nbd -B cannot even start without the bitmap). An inc is
     * refused with the reason, nothing written; auto takes a full backup and says why.
     */
    @Test
    void bitmapGoneFromTheExport() throws IOException {
        Path img = tmp.resolve("vda.qcow2");
        Path dir = tmp.resolve("set");
        Qemu.create(img, "16M");
        NbdSets.Owner vm = new NbdSets.Owner(img);
        Sets.io(img, "write -P 0x11 0 1M");
        vm.checkpoint("c0");
        NbdSets.backup("qemu-nbd", img, dir, BackupOptions.defaults().checkpoint("c0"));
        Qemu.qemuImg("bitmap", "--remove", img.toString(), "c0").assertOk();
        Sets.io(img, "write -P 0x12 2M 64k");
        List<String> before = listing(dir);
        String reason = "the NBD export offers no dirty bitmap 'backup' (qemu-nbd exports one with -B backup;"
                + " libvirt's pull-mode incremental backup as backup-DISK)";
        try (NbdSets.Export export = NbdSets.qemuNbd(img, null);
             NbdSource src = NbdSource.open(export.uri(), NbdSets.EXPORTED)) {
            BackupException e = assertThrows(BackupException.class, () -> BackupSet.backup(dir, src,
                    BackupOptions.defaults().level(Level.INC).bitmap(NbdSets.EXPORTED).checkpoint("c1")));
            assertEquals("cannot take an incremental backup: " + reason, e.getMessage());
            assertEquals(before, listing(dir));
            assertEquals(1, Manifest.load(dir).backups.size());

            BackupResult r = BackupSet.backup(dir, src,
                    BackupOptions.defaults().level(Level.AUTO).bitmap(NbdSets.EXPORTED).checkpoint("c1"));
            assertEquals(Level.FULL, r.level());
            assertEquals(reason + "; falling back to a full backup", r.note());
            assertNull(r.since());
            assertEquals("c1", r.checkpoint());
            assertEquals(MIB + 65536, r.dataBytes());
        }
        Sets.assertRestores(dir, "c1", Sets.snapshot(img, tmp.resolve("now.raw")), tmp.resolve("r.raw"), true);
        assertEquals("c1", BackupSet.since(dir, Level.INC), "the next inc counts from the new full");
    }

    private static void assertOneLine(IOException e) {
        String m = e.getMessage();
        assertTrue(m != null && !m.isBlank() && !m.contains("\n"), "one error line: " + m);
        assertFalse(e instanceof Progress.Cancelled);
    }

    private static List<String> listing(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).filter(n -> !n.equals(".lock")).sorted().toList();
        }
    }
}
