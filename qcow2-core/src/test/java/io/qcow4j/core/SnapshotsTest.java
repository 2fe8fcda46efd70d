package io.qcow4j.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.TestData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Internal snapshots: listed, read as QEMU reads them, and left intact by writes to the active disk. */
class SnapshotsTest {

    @Test
    void listsAndReadsSnapshots(@TempDir Path tmp) throws IOException {
        Path img = TestData.copyToTemp("snapshot.qcow2", tmp);
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            List<Snapshot> snaps = image.snapshots().list();
            assertEquals(List.of("snap1", "snap2"), snaps.stream().map(Snapshot::name).toList());
            for (Snapshot s : snaps) {
                assertEquals(image.size(), s.diskSize());
                byte[] expected = snapshotBytes(img, s.name(), tmp);
                ReferenceImagesTest.assertSame(expected, ReferenceImagesTest.readAll(image.snapshots().view(s.name())), s.name());
                ReferenceImagesTest.assertSame(expected, ReferenceImagesTest.readAll(image.snapshots().view(s.id())), s.id());
            }
            assertThrows(IllegalArgumentException.class, () -> image.snapshots().view("nosuch"));
        }
    }

    @Test
    void writesCopyClustersSharedWithSnapshots(@TempDir Path tmp) throws IOException {
        Path img = TestData.copyToTemp("snapshot.qcow2", tmp);
        byte[] snap1 = snapshotBytes(img, "snap1", tmp);
        byte[] snap2 = snapshotBytes(img, "snap2", tmp);
        byte[] oracle;
        Random r = new Random(99);
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            oracle = ReferenceImagesTest.readAll(image);
            for (int i = 0; i < 200; i++) {
                long off = RandomOpsOracleTest.randomOffset(r, image.size(), image.info().clusterSize());
                int len = (int) Math.min(image.size() - off, RandomOpsOracleTest.randomLength(r, image.info().clusterSize()));
                switch (r.nextInt(3)) {
                    case 0 -> {
                        byte[] d = new byte[len];
                        r.nextBytes(d);
                        image.write(off, ByteBuffer.wrap(d));
                        System.arraycopy(d, 0, oracle, (int) off, len);
                    }
                    case 1 -> {
                        image.writeZeroes(off, len);
                        java.util.Arrays.fill(oracle, (int) off, (int) off + len, (byte) 0);
                    }
                    default -> {
                        image.discard(off, len);
                        long cs = image.info().clusterSize();
                        for (long c = (off + cs - 1) / cs * cs; c + cs <= off + len; c += cs) {
                            java.util.Arrays.fill(oracle, (int) c, (int) (c + cs), (byte) 0);
                        }
                    }
                }
            }
        }
        Qemu.Result check = Qemu.check(img);
        assertEquals(0, check.exitCode(), check.stdout() + check.stderr());
        ReferenceImagesTest.assertSame(snap1, snapshotBytes(img, "snap1", tmp), "snap1 after writes");
        ReferenceImagesTest.assertSame(snap2, snapshotBytes(img, "snap2", tmp), "snap2 after writes");
        Path raw = tmp.resolve("active.raw");
        Qemu.convertToRaw(img, raw);
        ReferenceImagesTest.assertSame(oracle, Files.readAllBytes(raw), "active disk");
    }

    private static byte[] snapshotBytes(Path img, String snap, Path tmp) throws IOException {
        Path raw = tmp.resolve(snap + "-" + System.nanoTime() + ".raw");
        Qemu.qemuImg("convert", "-U", "-O", "raw", "-l", "snapshot.name=" + snap, img.toString(), raw.toString()).assertOk();
        byte[] b = Files.readAllBytes(raw);
        Files.delete(raw);
        return b;
    }
}
