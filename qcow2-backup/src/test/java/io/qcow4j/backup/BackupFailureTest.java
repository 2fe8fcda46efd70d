package io.qcow4j.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import io.qcow4j.testing.ChildJvm;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A backup that fails half-way (cancelled, the target disk full, the process killed with
 * SIGKILL) leaves the set as it was, and the next backup still captures every change since
 * the last one that completed: proven by restoring it and comparing with the disk.
 */
class BackupFailureTest {
    @TempDir
    Path tmp;

    private Path img;
    private Path dir;
    private Format format = Format.QCOW2;

    private BackupResult start(Path setDir) throws IOException {
        img = tmp.resolve("disk.qcow2");
        dir = setDir;
        Qemu.create(img, "64M");
        Sets.io(img, "write -P 0x11 0 1M");
        BackupResult full = Sets.backup(img, dir, Level.FULL, format, false);
        // changes the failed backup is after: 12 MiB over several pieces
        Sets.io(img, "write -P 0x21 4M 6M", "write -P 0x22 20M 6M", "discard 0 64k");
        return full;
    }

    /** The next backup is an incremental since the full and restores to the disk as it is now. */
    private void nextBackupCapturesEverything(BackupResult full, List<String> checkpointsBefore) throws IOException {
        Manifest m = Manifest.load(dir);
        assertEquals(1, m.backups.size(), "the failed backup is not in the manifest");
        Sets.io(img, "write -P 0x31 40M 64k");
        BackupResult inc = Sets.backup(img, dir, Level.AUTO, null, false);
        assertEquals(Level.INC, inc.level());
        assertEquals(full.checkpoint(), inc.since());
        assertEquals(12L * 1024 * 1024 + 65536, inc.dataBytes());
        assertEquals(65536, inc.zeroBytes());
        Sets.assertRestores(dir, inc.checkpoint(), Sets.snapshot(img, tmp.resolve("now.raw")), tmp.resolve("r.qcow2"), false);
        assertNull(Manifest.load(dir).pending);
        try (Stream<Path> files = Files.list(dir)) {
            assertTrue(files.noneMatch(f -> f.toString().endsWith(".partial")), "no partial file is left");
        }
        // the failed backup's checkpoint was merged back: only the completed ones remain
        List<String> expected = new java.util.ArrayList<>(checkpointsBefore);
        expected.add(inc.checkpoint());
        assertEquals(expected, checkpoints());
        Qemu.check(img).assertOk();
    }

    private List<String> checkpoints() throws IOException {
        try (ImageSource s = ImageSource.open(img, false, w -> { })) {
            return s.checkpoints().names();
        }
    }

    @Test
    void cancelledHalfWay() throws IOException {
        BackupResult full = start(tmp.resolve("set"));
        List<String> before = checkpoints();
        Progress[] holder = new Progress[1];
        holder[0] = new Progress((done, total) -> {
            if (done > 0) {
                holder[0].cancel();
            }
        });
        assertThrows(Progress.Cancelled.class,
                () -> Sets.backup(img, dir, BackupOptions.defaults().progress(holder[0])));
        assertEquals(before, checkpoints(), "the cancelled backup's checkpoint is merged back at once");
        nextBackupCapturesEverything(full, before);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"qcow2", "stream"})
    void targetDiskFull(String fmt) throws IOException, InterruptedException {
        format = Format.parse(fmt);
        Path mnt = Files.createDirectories(tmp.resolve("small"));
        Process mount = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", mnt.toString())
                .redirectErrorStream(true).start();
        Assumptions.assumeTrue(mount.waitFor() == 0, "cannot mount a tmpfs here (not root?)");
        try {
            BackupResult full = start(mnt.resolve("set"));
            List<String> before = checkpoints();
            IOException e = assertThrows(IOException.class,
                    () -> Sets.backup(img, dir, Level.AUTO, null, false));
            assertTrue(String.valueOf(e.getMessage()).contains("No space left on device"), String.valueOf(e));
            assertEquals(before, checkpoints());
            assertNull(Manifest.load(dir).pending, "the failure was undone at once");
            Qemu.run("mount", "-o", "remount,size=64m", mnt.toString()).assertOk();
            nextBackupCapturesEverything(full, before);
        } finally {
            Qemu.run("umount", "-l", mnt.toString());
        }
    }

    @Test
    void processKilledHalfWay() throws IOException, InterruptedException {
        BackupResult full = start(tmp.resolve("set"));
        List<String> before = checkpoints();
        Process child = new ProcessBuilder(ChildJvm.command(List.of("-Xmx256m"), BackupChild.class,
                img.toString(), dir.toString(), "qcow2")).redirectErrorStream(true).start();
        try (BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = out.readLine()) != null && !line.equals("HALF")) {
                // the child's other output, if any
            }
            assertEquals("HALF", line, "the child stopped before half-way");
            child.destroyForcibly(); // SIGKILL
            assertTrue(child.waitFor(30, TimeUnit.SECONDS));
        }
        Manifest m = Manifest.load(dir);
        assertNotNull(m.pending, "the killed backup is pending");
        assertTrue(Files.exists(dir.resolve(m.pending.file)), "its partial file is there");
        assertFalse(checkpoints().equals(before), "its checkpoint was started");
        // QEMU writes while the killed backup's checkpoint records: those writes must not be lost
        Sets.io(img, "write -P 0x23 30M 64k");
        nextBackupCapturesEverythingAfterKill(full, before);
    }

    private void nextBackupCapturesEverythingAfterKill(BackupResult full, List<String> before) throws IOException {
        Sets.io(img, "write -P 0x31 40M 64k");
        BackupResult inc = Sets.backup(img, dir, Level.AUTO, null, false);
        assertEquals(Level.INC, inc.level());
        assertEquals(full.checkpoint(), inc.since());
        assertEquals(12L * 1024 * 1024 + 2 * 65536, inc.dataBytes());
        Sets.assertRestores(dir, inc.checkpoint(), Sets.snapshot(img, tmp.resolve("now.raw")), tmp.resolve("r.qcow2"), false);
        List<String> expected = new java.util.ArrayList<>(before);
        expected.add(inc.checkpoint());
        assertEquals(expected, checkpoints());
        assertEquals(2, Manifest.load(dir).backups.size());
    }
}
