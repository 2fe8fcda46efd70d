package io.qcow4j.backup.s3;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import io.qcow4j.backup.BackupOptions;
import io.qcow4j.backup.BackupResult;
import io.qcow4j.backup.BackupSet;
import io.qcow4j.backup.ImageSource;
import io.qcow4j.backup.Level;
import io.qcow4j.backup.Manifest;
import io.qcow4j.backup.Progress;
import io.qcow4j.backup.SetStore;
import io.qcow4j.backup.SetStores;
import io.qcow4j.testing.ChildJvm;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * Backups to S3 in a child JVM: one killed with SIGKILL mid-upload leaves no object that looks
 * complete and loses no dirty bit (the next backup captures everything since the last good
 * one, and aborts the dead upload); one of 128 MiB runs in 96 MiB of heap (G1). The children
 * find the server as a user's process would: through AWS_* variables (the endpoint named
 * localhost, so path-style by the rule), and through a profile in AWS config and credentials
 * files.
 */
class S3ChildJvmTest {
    static S3Server server;
    static S3Client s3;

    @TempDir
    Path tmp;

    @BeforeAll
    static void startServer() throws Exception {
        server = S3Server.shared();
        s3 = server.client();
    }

    @AfterAll
    static void closeClient() {
        s3.close();
    }

    /** A backup in a child JVM, its client configured by AWS_* variables or (with {@code profileDir}) a profile. */
    private Process child(String heap, Path img, String location, String mode, Path profileDir) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(ChildJvm.command(List.of(heap), S3BackupChild.class, img.toString(),
                location, mode)).redirectErrorStream(true);
        server.configureChild(pb.environment(), profileDir);
        return pb.start();
    }

    private static List<String> checkpoints(Path img) throws IOException {
        try (ImageSource s = ImageSource.open(img, false, w -> { })) {
            return s.checkpoints().names();
        }
    }

    @Test
    void killedMidUploadLeavesNoObjectAndLosesNoDirtyBit() throws Exception {
        String prefix = "killed";
        String location = "s3://" + S3Sets.BUCKET + "/" + prefix;
        SetStore set = SetStores.open(location, Path::of);
        Path img = tmp.resolve("disk.qcow2");
        Qemu.create(img, "64M");
        S3Sets.io(img, "write -P 0x11 0 1M");
        BackupResult full = S3Sets.backup(img, set, BackupOptions.defaults());
        List<String> before = checkpoints(img);
        // 40 MiB changed: five parts of 8 MiB; the child is killed with some of them sent
        S3Sets.io(img, "write -P 0x21 4M 20M", "write -P 0x22 30M 20M", "discard 0 64k");

        Process child = child("-Xmx256m", img, location, "half", null);
        try (BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            StringBuilder seen = new StringBuilder();
            while ((line = out.readLine()) != null && !line.equals("HALF")) {
                seen.append(line).append('\n');
            }
            assertEquals("HALF", line, "the child stopped before half-way: " + seen);
            assertTrue(seen.toString().contains("CLIENT eu-central-1 path-style=true"), seen.toString());
            // parts are on their way: wait (bounded) until the server holds the upload
            for (int i = 0; i < 100 && S3Sets.unfinishedUploads(s3, prefix).isEmpty(); i++) {
                Thread.sleep(50);
            }
            child.destroyForcibly(); // SIGKILL
            assertTrue(child.waitFor(30, TimeUnit.SECONDS));
        }
        assertEquals(List.of("disk.002.inc.data"), S3Sets.unfinishedUploads(s3, prefix), "the killed upload is unfinished");
        assertEquals(List.of("disk.001.full.data", "manifest.json"), S3Sets.objects(s3, prefix), "and invisible");
        Manifest m = Manifest.load(set);
        assertNotNull(m.pending, "the killed backup is pending");
        assertEquals(1, m.backups.size());
        assertNotEquals(before, checkpoints(img), "its checkpoint was started");

        // QEMU writes while the killed backup's checkpoint records: not lost either
        S3Sets.io(img, "write -P 0x23 56M 64k");
        BackupResult inc = S3Sets.backup(img, set, BackupOptions.defaults());
        assertEquals(Level.INC, inc.level());
        assertEquals(full.checkpoint(), inc.since());
        assertEquals(40L * 1024 * 1024 + 65536, inc.dataBytes());
        assertEquals(65536, inc.zeroBytes());
        S3Sets.assertRestores(set, inc.checkpoint(), S3Sets.snapshot(img, tmp.resolve("now.raw")), tmp.resolve("r.qcow2"), false);
        assertEquals(List.of(), S3Sets.unfinishedUploads(s3, prefix), "the dead upload was aborted");
        assertEquals(List.of("disk.001.full.data", "disk.002.inc.data", "manifest.json"), S3Sets.objects(s3, prefix));
        List<String> expected = new ArrayList<>(before);
        expected.add(inc.checkpoint());
        assertEquals(expected, checkpoints(img));
        assertTrue(BackupSet.verify(set, Progress.none()).good());
        Qemu.check(img).assertOk();
    }

    @Test
    void backupOfMoreDataThanHeapStreams() throws Exception {
        String location = "s3://" + S3Sets.BUCKET + "/memory";
        Path img = tmp.resolve("big.qcow2");
        Qemu.create(img, "136M");
        S3Sets.io(img, "write -P 0x5a 0 128M");
        Process child = child("-Xmx96m", img, location, "full", tmp);
        String out = new String(child.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(child.waitFor(120, TimeUnit.SECONDS));
        assertEquals(0, child.exitValue(), out);
        assertTrue(out.contains("DONE full "), out);
        assertTrue(out.contains("CLIENT eu-west-3 path-style=true"), out);
        long live = Long.parseLong(out.substring(out.indexOf("LIVE-HEAP ") + 10).trim());
        System.out.println("128 MiB backup to S3 under -Xmx96m: at most " + (live >> 20) + " MiB of heap live after a GC");
        assertTrue(live > 0 && live < 96L << 20, "live heap " + live);
        SetStore set = SetStores.open(location, Path::of);
        var b = Manifest.load(set).backups.get(0);
        assertEquals(128L << 20, b.dataBytes);
        assertEquals(b.bytesWritten, s3.headObject(r -> r.bucket(S3Sets.BUCKET).key("memory/" + b.file)).contentLength());
    }
}
