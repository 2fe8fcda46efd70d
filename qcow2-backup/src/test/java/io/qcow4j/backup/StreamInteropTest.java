package io.qcow4j.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Sparse streams both ways with virtnbdbackup (Debian package virtnbdbackup): its
 * {@code virtnbdrestore -a dump} lists our stream files, and our restore reads a set written
 * with its own {@code libvirtnbdbackup.sparsestream} module and lz4 helpers (linked LZ4 blocks,
 * chunked payloads in the trailer).
 */
class StreamInteropTest {
    @TempDir
    Path tmp;

    @ParameterizedTest(name = "compressed={0}")
    @ValueSource(booleans = {false, true})
    void virtnbdrestoreDumpsOurStreams(boolean compress) throws IOException {
        Path img = tmp.resolve("vda.qcow2");
        Path dir = tmp.resolve("set");
        Qemu.create(img, "16M");
        Sets.io(img, "write -P 0x61 0 2M", "write -z 4M 1M");
        BackupResult full = Sets.backup(img, dir, Level.FULL, Format.STREAM, compress);
        Sets.io(img, "write -P 0x62 1M 64k");
        BackupResult inc = Sets.backup(img, dir, Level.INC, Format.STREAM, compress);

        Qemu.Result r = Qemu.run("env", "HOME=" + tmp, "virtnbdrestore", "-a", "dump", "-i", dir.toString(), "-o", "dump",
                "-L", tmp.resolve("virtnbdrestore.log").toString()).assertOk();
        JsonNode dump = Sets.parse(r.stdout().substring(r.stdout().indexOf('[')));
        assertEquals(2, dump.size(), r.describe());
        assertEquals(full.checkpoint(), dump.get(0).get("checkpointName").asText());
        assertEquals(full.dataBytes(), dump.get(0).get("dataSize").asLong());
        assertFalse(dump.get(0).get("incremental").asBoolean());
        assertEquals(16L << 20, dump.get(0).get("virtualSize").asLong());
        assertEquals(inc.checkpoint(), dump.get(1).get("checkpointName").asText());
        assertEquals(full.checkpoint(), dump.get(1).get("parentCheckpoint").asText());
        assertEquals(inc.dataBytes(), dump.get(1).get("dataSize").asLong());
        assertTrue(dump.get(1).get("incremental").asBoolean());
        assertEquals(compress, r.stderr().contains("Compressed stream found"), r.describe());
    }

    @ParameterizedTest(name = "compressed={0}")
    @ValueSource(booleans = {false, true})
    void ourRestoreReadsVirtnbdbackupStreams(boolean compress) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("set"));
        Path script = tmp.resolve("make.py");
        try (InputStream in = getClass().getResourceAsStream("/make-virtnbdbackup-set.py")) {
            Files.copy(in, script);
        }
        Qemu.run("/usr/bin/python3", script.toString(), dir.toString(), compress ? "1" : "0").assertOk();
        Path p0 = tmp.resolve("p0.raw");
        Path p1 = tmp.resolve("p1.raw");
        Files.move(dir.resolve("p0.raw"), p0);
        Files.move(dir.resolve("p1.raw"), p1);

        Manifest m = BackupSet.manifest(dir);
        assertEquals(List.of("vda.full.data", "vda.inc.virtnbdbackup.1.data"), m.backups.stream().map(b -> b.file).toList());
        Sets.assertRestores(dir, "virtnbdbackup.0", p0, tmp.resolve("r0.qcow2"), false);
        Sets.assertRestores(dir, "virtnbdbackup.1", p1, tmp.resolve("r1.raw"), true);
        Sets.assertRestores(dir, null, p1, tmp.resolve("r1.qcow2"), false);
        VerifyReport v = BackupSet.verify(dir, Progress.none());
        assertTrue(v.good(), v.toString());
        assertTrue(v.note().contains("no manifest"), v.note());
    }
}
