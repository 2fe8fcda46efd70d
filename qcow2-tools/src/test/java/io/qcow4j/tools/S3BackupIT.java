package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.qcow4j.backup.s3.S3Server;
import io.qcow4j.testing.Qemu;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * {@code backup | restore | verify | prune | backup --list} with an {@code s3://BUCKET/PREFIX}
 * set on a real S3 server (S3Proxy on 127.0.0.1, the SDK configured the standard way): the
 * output names the objects, the stream format is the default, and refusals are one line.
 */
class S3BackupIT {
    @TempDir
    static Path serverDir;
    static S3Server server;
    static S3Client s3;

    @TempDir
    Path dir;

    @BeforeAll
    static void startServer() throws Exception {
        server = S3Server.start(serverDir);
        server.configureSdk();
        s3 = server.client();
        s3.createBucket(r -> r.bucket("backups"));
    }

    @AfterAll
    static void stopServer() throws Exception {
        s3.close();
        server.close();
    }

    @Test
    void backupListRestoreVerifyPruneInABucket() {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "disk.qcow2", "16M").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write -P 0x11 0 1M", "-c", "write -z 2M 1M", "disk.qcow2").assertOk();
        Qemu.Result r = qcow4j(dir, "backup", "--output=json", "disk.qcow2", "s3://backups/vm1");
        assertEquals(0, r.exitCode(), r.describe());
        JsonNode full = Cli.json(r.stdout());
        assertEquals("full", full.get("level").asText());
        assertEquals("s3://backups/vm1/disk.001.full.data", full.get("file").asText());
        assertEquals(1 << 20, full.get("data-bytes").asLong());
        assertEquals("", r.stderr());
        qemuImg(dir, "convert", "-O", "raw", "disk.qcow2", "p0.raw").assertOk();

        qemuIo(dir, "-f", "qcow2", "-c", "write -P 0x22 4M 64k", "disk.qcow2").assertOk();
        r = qcow4j(dir, "backup", "-c", "disk.qcow2", "s3://backups/vm1/");
        assertEquals(0, r.exitCode(), r.describe());
        assertTrue(r.stdout().startsWith("Inc backup written to 's3://backups/vm1/disk.002.inc.data', checkpoint qcow4j.1,"
                + " changes since qcow4j.0: 64 KiB of data"), r.stdout());
        qemuImg(dir, "convert", "-O", "raw", "disk.qcow2", "p1.raw").assertOk();

        JsonNode list = Cli.json(qcow4j(dir, "backup", "--list", "--output=json", "s3://backups/vm1").assertOk().stdout());
        assertEquals(2, list.size());
        assertEquals("stream", list.get(1).get("format").asText());
        assertEquals("disk.001.full.data", list.get(1).get("parent").asText());

        qcow4j(dir, "restore", "--until", "qcow4j.0", "-O", "raw", "s3://backups/vm1", "r0.raw").assertOk();
        assertEquals(0, qemuImg(dir, "compare", "-f", "raw", "-F", "raw", "r0.raw", "p0.raw").exitCode());
        qcow4j(dir, "restore", "-p", "s3://backups/vm1", "r1.qcow2").assertOk();
        assertEquals(0, qemuImg(dir, "compare", "r1.qcow2", "p1.raw").exitCode());

        r = qcow4j(dir, "verify", "s3://backups/vm1");
        assertEquals(0, r.exitCode(), r.describe());
        assertEquals("disk.001.full.data: ok\ndisk.002.inc.data: ok\nThe backup set is good.\n", r.stdout());
        s3.deleteObject(b -> b.bucket("backups").key("vm1/disk.002.inc.data"));
        r = qcow4j(dir, "verify", "s3://backups/vm1");
        assertEquals(2, r.exitCode(), r.describe());
        assertTrue(r.stdout().contains("disk.002.inc.data: missing: the file is missing\n"), r.stdout());
        Cli.assertOneLineError(qcow4j(dir, "restore", "s3://backups/vm1", "gone.qcow2"), 1,
                "Could not restore 's3://backups/vm1' to 'gone.qcow2': s3://backups/vm1/disk.002.inc.data: the object is missing");

        r = qcow4j(dir, "prune", "--keep", "1", "s3://backups/vm1");
        assertEquals(1, r.exitCode(), "the missing object is needed to fold the newest point: " + r.describe());
        qcow4j(dir, "backup", "--level", "full", "disk.qcow2", "s3://backups/vm1").assertOk();
        r = qcow4j(dir, "prune", "--keep", "1", "s3://backups/vm1");
        assertEquals(0, r.exitCode(), r.describe());
        assertEquals("removed disk.001.full.data\nremoved disk.002.inc.data\n", r.stdout());
        qcow4j(dir, "restore", "s3://backups/vm1", "r2.qcow2").assertOk();
        assertEquals(0, qemuImg(dir, "compare", "r2.qcow2", "disk.qcow2").exitCode());
    }

    @Test
    void refusalsAreOneLine() {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "disk.qcow2", "1M").assertOk();
        Cli.assertOneLineError(qcow4j(dir, "backup", "--format", "qcow2", "disk.qcow2", "s3://backups/q"), 1,
                "Could not back up 'disk.qcow2': qcow2 backups need random access to their backing files, which"
                        + " 's3://backups/q' does not give: use the stream format there (--format stream)");
        Cli.assertOneLineError(qcow4j(dir, "backup", "disk.qcow2", "s3://no-such-bucket/q"), 1,
                "Could not back up 'disk.qcow2': s3://no-such-bucket/q/manifest.json: the bucket does not exist");
        Cli.assertOneLineError(qcow4j(dir, "backup", "disk.qcow2", "s3://B_ad/q"), 1,
                "Could not back up 'disk.qcow2': 's3://B_ad/q': 'B_ad' is not a bucket name (3 to 63 of a-z 0-9 . -)");
        Cli.assertOneLineError(qcow4j(dir, "verify", "s3://backups/empty"), 1,
                "Could not verify 's3://backups/empty': no backup set in 's3://backups/empty' (no manifest.json, no .data"
                        + " stream files)");
    }
}
