package io.qcow4j.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;

import com.fasterxml.jackson.databind.JsonNode;
import io.qcow4j.nbd.client.NbdClient;
import io.qcow4j.testing.NbdExport;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Restore into an NBD export (qemu-nbd over a qcow2 image): the point's data written, every
 * other byte zeroed where the export did not read zeros already (old contents gone, a blank
 * export left thin), an export larger than the point zeroed past it, one too small refused
 * before anything is written.
 */
class NbdRestoreTest {
    @TempDir
    Path tmp;

    @Test
    void intoExportsOfEverySize() throws IOException {
        Path img = tmp.resolve("vda.qcow2");
        Path dir = tmp.resolve("set");
        Qemu.create(img, "16M");
        Sets.io(img, "write -P 0x11 0 3M", "write -z 4M 1M", "write -P 0x12 10M 64k");
        Sets.backup(img, dir, Level.FULL, Format.STREAM, false);
        Sets.io(img, "write -P 0x21 1M 64k", "discard 10M 64k");
        BackupResult inc = Sets.backup(img, dir, Level.INC, Format.STREAM, false);
        Path now = Sets.snapshot(img, tmp.resolve("now.raw"));

        // an old disk full of other bytes, larger than the point
        Path old = tmp.resolve("old.qcow2");
        Qemu.create(old, "20M");
        Sets.io(old, "write -P 0xee 0 20M");
        restore(dir, inc.checkpoint(), old);
        assertTrue(Qemu.compare(now, old), "the export reads as the point, zeros past it");
        Sets.io(old, "read -P 0 16M 4M");
        Qemu.check(old).assertOk();

        // a blank export: zeroed only where it did not read zeros, so what was never written stays unallocated
        Path blank = tmp.resolve("blank.qcow2");
        Qemu.create(blank, "16M");
        restore(dir, inc.checkpoint(), blank);
        assertTrue(Qemu.compare(now, blank));
        long allocated = 0;
        for (JsonNode e : Sets.parse(Qemu.qemuImg("map", "--output=json", blank.toString()).assertOk().stdout())) {
            if (e.get("present").asBoolean()) {
                allocated += e.get("length").asLong();
            }
        }
        assertEquals(3L << 20, allocated, "only the data runs were written");

        // too small: refused before anything is written
        Path small = tmp.resolve("small.qcow2");
        Qemu.create(small, "8M");
        Sets.io(small, "write -P 0x77 0 8M");
        BackupException e = assertThrows(BackupException.class, () -> restore(dir, null, small));
        assertTrue(e.getMessage().matches("the NBD export 'nbd\\+unix://\\?socket=\\S+' holds 8388608 bytes, less than the"
                + " 16777216 bytes of point '" + inc.checkpoint() + "': make it at least that large"), e.getMessage());
        Sets.io(small, "read -P 0x77 0 8M");

        // read-only: refused
        try (NbdExport ro = NbdExport.qemuNbd(blank, "-r", "-f", "qcow2"); NbdClient c = NbdClient.connect(ro.uri())) {
            BackupException r = assertThrows(BackupException.class, () -> BackupSet.restore(dir, null, c, Progress.none()));
            assertFalse(r.getMessage().isEmpty());
            assertTrue(r.getMessage().endsWith("is read-only"), r.getMessage());
        }
    }

    private static void restore(Path dir, String point, Path image) throws IOException {
        try (NbdExport nbd = NbdExport.qemuNbd(image, "-f", "qcow2"); NbdClient c = NbdClient.connect(nbd.uri())) {
            BackupSet.restore(dir, point, c, Progress.none());
        }
    }
}
