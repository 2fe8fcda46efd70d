package io.qcow4j.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import com.fasterxml.jackson.databind.JsonNode;
import io.qcow4j.testing.Qemu;

/** Shared steps of the backup tests: backing up an image, restoring a point, the QEMU oracles. */
final class Sets {
    private Sets() {
    }

    static BackupResult backup(Path image, Path dir, BackupOptions o) throws IOException {
        try (ImageSource src = ImageSource.open(image, BackupSet.changesCheckpoints(dir, o), w -> { })) {
            return BackupSet.backup(dir, src, o);
        }
    }

    static BackupResult backup(Path image, Path dir, Level level, Format format, boolean compress) throws IOException {
        return backup(image, dir, BackupOptions.defaults().level(level).format(format).compress(compress));
    }

    /** {@code qemu-io -c CMD...} on the image (QEMU's own writes dirty its bitmaps). */
    static void io(Path image, String... cmds) {
        Qemu.io(image, cmds).assertOk();
    }

    /** A raw copy of the disk as it is now. */
    static Path snapshot(Path image, Path raw) {
        Qemu.convertToRaw(image, raw);
        return raw;
    }

    /** Restores {@code point} and asserts qemu-img compare finds it equal to {@code expected}, at its size. */
    static void assertRestores(Path dir, String point, Path expected, Path out, boolean raw) throws IOException {
        Files.deleteIfExists(out);
        BackupSet.restore(dir, point, out, raw, Progress.none());
        JsonNode info = Qemu.infoJson(out);
        assertEquals(Files.size(expected), info.get("virtual-size").asLong(), "size of " + point);
        assertTrue(Qemu.compare(expected, out), "restore of " + point + " differs from the disk then");
        if (!raw) {
            Qemu.check(out).assertOk();
        }
    }

    /** Bytes of data the qcow2 file holds in its own layer (its backing file not opened). */
    static long layerDataBytes(Path qcow2) {
        String spec = "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"" + qcow2.toAbsolutePath()
                + "\"},\"backing\":null}";
        JsonNode map = parse(Qemu.run("qemu-img", "map", "--output=json", spec).assertOk().stdout());
        long n = 0;
        for (JsonNode e : map) {
            if (e.get("data").asBoolean() && e.get("depth").asInt() == 0) {
                n += e.get("length").asLong();
            }
        }
        return n;
    }

    static JsonNode parse(String json) {
        try {
            return Manifest.JSON.readTree(json);
        } catch (IOException e) {
            throw new AssertionError("not JSON: " + json, e);
        }
    }
}
