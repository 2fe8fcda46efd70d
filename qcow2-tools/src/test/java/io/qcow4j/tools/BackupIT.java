package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.qcow4j.nbd.client.NbdUri;
import io.qcow4j.testing.NbdExport;
import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code qcow4j backup | restore | verify | prune}: their output, exit codes and one-line errors. */
class BackupIT {
    @TempDir
    Path dir;

    private static List<String> keys(JsonNode o) {
        List<String> k = new ArrayList<>();
        o.fieldNames().forEachRemaining(k::add);
        return k;
    }

    @Test
    void backupRestoreVerifyPrune() throws IOException {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "disk.qcow2", "16M").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write -P 0x11 0 1M", "-c", "write -z 2M 1M", "disk.qcow2").assertOk();

        Qemu.Result r = qcow4j(dir, "backup", "--output=json", "disk.qcow2", "set");
        assertEquals(0, r.exitCode(), r.describe());
        JsonNode full = Cli.json(r.stdout());
        assertEquals(List.of("level", "file", "checkpoint", "since", "data-bytes", "zero-bytes", "bytes-written"), keys(full));
        assertEquals("full", full.get("level").asText());
        assertEquals("set/disk.001.full.qcow2", full.get("file").asText());
        assertEquals("qcow4j.0", full.get("checkpoint").asText());
        assertTrue(full.get("since").isNull());
        assertEquals(1 << 20, full.get("data-bytes").asLong());
        assertEquals(1 << 20, full.get("zero-bytes").asLong());
        assertEquals("", r.stderr());
        qemuImg(dir, "convert", "-O", "raw", "disk.qcow2", "p0.raw").assertOk();

        qemuIo(dir, "-f", "qcow2", "-c", "write -P 0x22 4M 64k", "disk.qcow2").assertOk();
        r = qcow4j(dir, "backup", "-p", "--level", "inc", "disk.qcow2", "set");
        assertEquals(0, r.exitCode(), r.describe());
        assertTrue(r.stdout().contains("    (100.00/100%)\r\n"), r.stdout());
        assertTrue(r.stdout().matches("(?s).*\n\\QInc backup written to 'set/disk.002.inc.qcow2', checkpoint qcow4j.1, changes since"
                + " qcow4j.0: 64 KiB of data, 0 B of zeros, \\E\\d+ KiB written\n"), r.stdout());
        qemuImg(dir, "convert", "-O", "raw", "disk.qcow2", "p1.raw").assertOk();

        // auto falls back to a full backup when the checkpoint is gone, and says so
        qemuImg(dir, "bitmap", "--remove", "disk.qcow2", "qcow4j.1").assertOk();
        Cli.assertOneLineError(qcow4j(dir, "backup", "--level", "inc", "disk.qcow2", "set"), 1,
                "Could not back up 'disk.qcow2': cannot take an incremental backup: checkpoint 'qcow4j.1' is not in"
                        + " the image (its bitmap was removed)");
        r = qcow4j(dir, "backup", "--output=json", "disk.qcow2", "set");
        assertEquals(0, r.exitCode(), r.describe());
        assertEquals("full", Cli.json(r.stdout()).get("level").asText());
        assertEquals("qcow4j: note: checkpoint 'qcow4j.1' is not in the image (its bitmap was removed);"
                + " falling back to a full backup\n", r.stderr());

        JsonNode list = Cli.json(qcow4j(dir, "backup", "--list", "--output=json", "set").assertOk().stdout());
        assertEquals(3, list.size());
        assertEquals("disk.001.full.qcow2", list.get(1).get("parent").asText());
        assertTrue(qcow4j(dir, "backup", "--list", "set").assertOk().stdout().contains("disk.002.inc.qcow2"));

        qcow4j(dir, "restore", "--until", "qcow4j.0", "-O", "raw", "set", "r0.raw").assertOk();
        assertEquals(0, qemuImg(dir, "compare", "-f", "raw", "-F", "raw", "r0.raw", "p0.raw").exitCode());
        qcow4j(dir, "restore", "--until", "qcow4j.1", "set", "r1.qcow2").assertOk();
        assertEquals(0, qemuImg(dir, "compare", "r1.qcow2", "p1.raw").exitCode());
        Cli.assertOneLineError(qcow4j(dir, "restore", "--until", "nope", "set", "x.qcow2"), 1,
                "Could not restore 'set' to 'x.qcow2': no backup of checkpoint or file 'nope' in the set");
        Cli.assertOneLineError(qcow4j(dir, "restore", "set", "r1.qcow2"), 1,
                "Could not restore 'set' to 'r1.qcow2': 'r1.qcow2' exists: restore writes a new file");

        r = qcow4j(dir, "verify", "set");
        assertEquals(0, r.exitCode(), r.describe());
        assertEquals("disk.001.full.qcow2: ok\ndisk.002.inc.qcow2: ok\ndisk.003.full.qcow2: ok\nThe backup set is good.\n", r.stdout());
        flip(dir.resolve("set/disk.002.inc.qcow2"), 300_000);
        r = qcow4j(dir, "verify", "set");
        assertEquals(2, r.exitCode(), r.describe());
        assertTrue(r.stdout().contains("disk.002.inc.qcow2: damaged at offset 0: bytes 0 to 1048576 do not match their checksum\n"),
                r.stdout());
        JsonNode v = Cli.json(qcow4j(dir, "verify", "--output=json", "set").stdout());
        assertEquals(false, v.get("good").asBoolean());
        assertEquals(0, v.get("files").get(1).get("offset").asLong());
        flip(dir.resolve("set/disk.002.inc.qcow2"), 300_000);

        r = qcow4j(dir, "prune", "--keep", "1", "set");
        assertEquals(0, r.exitCode(), r.describe());
        assertEquals("removed disk.001.full.qcow2\nremoved disk.002.inc.qcow2\n", r.stdout());
        assertEquals(0, qcow4j(dir, "verify", "set").exitCode());
    }

    @Test
    void compressedStreamThroughTheLauncher() {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "vda.qcow2", "8M").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write -P 0x33 1M 2M", "vda.qcow2").assertOk();
        Qemu.Result r = Cli.qcow4jProcess(dir, "backup", "--format", "stream", "-c", "--output=json", "vda.qcow2", "set");
        assertEquals(0, r.exitCode(), r.describe());
        assertEquals("set/vda.001.full.data", Cli.json(r.stdout()).get("file").asText());
        assertTrue(Cli.json(r.stdout()).get("bytes-written").asLong() < 100_000, r.stdout());
        Cli.qcow4jProcess(dir, "restore", "set", "out.qcow2").assertOk();
        assertEquals(0, qemuImg(dir, "compare", "vda.qcow2", "out.qcow2").exitCode());
        Cli.assertOneLineError(qcow4j(dir, "backup", "--format", "qcow2", "-c", "vda.qcow2", "set2"), 1,
                "Could not back up 'vda.qcow2': only stream backups are compressed (--format stream)");
    }

    /**
     * An NBD export as SOURCE (qemu-nbd, on a Unix socket and over TCP) and as TARGET: the
     * bitmap managed as libvirt does it, the refusals in one line.
     */
    @Test
    void nbdSourceAndTarget() throws IOException {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "disk.qcow2", "16M").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write -P 0x11 0 2M", "disk.qcow2").assertOk();
        qemuImg(dir, "bitmap", "--add", "disk.qcow2", "c0").assertOk();
        String uri;
        try (NbdExport nbd = NbdExport.qemuNbd(dir.resolve("disk.qcow2"), "-r", "-f", "qcow2", "-x", "vda")) {
            uri = nbd.uri("vda");
            Qemu.Result r = qcow4j(dir, "backup", "--output=json", "--checkpoint", "c0", uri, "set");
            assertEquals(0, r.exitCode(), r.describe());
            JsonNode full = Cli.json(r.stdout());
            assertEquals("full", full.get("level").asText());
            assertEquals("set/vda.001.full.qcow2", full.get("file").asText());
            assertEquals("c0", full.get("checkpoint").asText());
            assertEquals(2 << 20, full.get("data-bytes").asLong());
            Cli.assertOneLineError(qcow4j(dir, "backup", "--level", "inc", uri, "set"), 1, "Could not back up '" + uri
                    + "': cannot take an incremental backup: an NBD export keeps no checkpoints of its own: name the dirty"
                    + " bitmap that holds the changes since checkpoint 'c0' with --bitmap (qemu-nbd -B NAME; libvirt's"
                    + " pull-mode backup exports backup-DISK)");
            Cli.assertOneLineError(qcow4j(dir, "backup", "--level", "inc", "--bitmap", "c0", uri, "set"), 1, "Could not back up '"
                    + uri + "': cannot take an incremental backup: the NBD export offers no dirty bitmap 'c0' (qemu-nbd exports one with -B c0; libvirt's"
                    + " pull-mode incremental backup as backup-DISK)");
            Cli.assertOneLineError(qcow4j(dir, "backup", "--level", "diff", "--checkpoint", "x", uri, "set"), 1, "Could not back up '"
                    + uri + "': a differential backup takes no checkpoint (--checkpoint is for full and inc backups)");
        }
        Cli.assertOneLineError(qcow4j(dir, "backup", "--checkpoint", "c1", uri, "set"), 1,
                "Could not open '" + uri + "': Failed to connect to '" + uri.substring(uri.indexOf("socket=") + 7)
                        + "': No such file or directory");

        // the owner's next checkpoint; the changes since c0 exported as bitmap 'backup', over TCP this time
        qemuIo(dir, "-f", "qcow2", "-c", "write -P 0x22 8M 64k", "disk.qcow2").assertOk();
        qemuImg(dir, "bitmap", "--disable", "disk.qcow2", "c0").assertOk();
        qemuImg(dir, "bitmap", "--add", "disk.qcow2", "c1").assertOk();
        qemuImg(dir, "bitmap", "--add", "--disable", "--merge", "c0", "--merge", "c1", "disk.qcow2", "backup").assertOk();
        int port;
        try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
            port = s.getLocalPort();
        }
        try (NbdExport nbd = NbdExport.qemuNbdTcp(dir.resolve("disk.qcow2"), port, "-r", "-f", "qcow2", "-x", "vda",
                "-B", "backup")) {
            Qemu.Result r = qcow4j(dir, "backup", "--level", "inc", "--bitmap", "backup", "--checkpoint", "c1",
                    "nbd://127.0.0.1:" + port + "/vda", "set");
            assertEquals(0, r.exitCode(), r.describe());
            assertEquals("Inc backup written to 'set/vda.002.inc.qcow2', checkpoint c1, changes since c0: 64 KiB of data,"
                    + " 0 B of zeros, " + r.stdout().substring(r.stdout().lastIndexOf(", ") + 2), r.stdout());
        }
        qemuImg(dir, "convert", "-O", "raw", "disk.qcow2", "now.raw").assertOk();

        // restore into an export: a larger disk full of other bytes reads as the point, zeros past it
        qemuImg(dir, "create", "-q", "-f", "qcow2", "target.qcow2", "20M").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write -P 0xee 0 20M", "target.qcow2").assertOk();
        try (NbdExport nbd = NbdExport.qemuNbd(dir.resolve("target.qcow2"), "-f", "qcow2")) {
            Cli.assertOneLineError(qcow4j(dir, "restore", "-O", "raw", "set", nbd.uri()), 1,
                    "-O does not apply to an NBD target (the export is written as a raw disk)");
            Qemu.Result r = qcow4j(dir, "restore", "-p", "--until", "c1", "set", nbd.uri());
            assertEquals(0, r.exitCode(), r.describe());
            assertTrue(r.stdout().contains("(100.00/100%)"), r.stdout());
        }
        assertEquals(0, qemuImg(dir, "compare", "-f", "raw", "now.raw", "target.qcow2").exitCode());
        qemuImg(dir, "create", "-q", "-f", "qcow2", "small.qcow2", "8M").assertOk();
        try (NbdExport nbd = NbdExport.qemuNbd(dir.resolve("small.qcow2"), "-f", "qcow2")) {
            String small = nbd.uri();
            Cli.assertOneLineError(qcow4j(dir, "restore", "set", small), 1, "Could not restore 'set' to '" + small
                    + "': the NBD export '" + NbdUri.parse(small) + "' holds 8388608 bytes, less than the 16777216 bytes"
                    + " of point 'c1': make it at least that large");
        }
    }

    private static void flip(Path f, long at) throws IOException {
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate(1);
            ch.read(b, at);
            b.put(0, (byte) (b.get(0) ^ 1)).rewind();
            ch.write(b, at);
        }
    }
}
