package io.qcow4j.core;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A full disk (a small tmpfs, where a store into an unbacked mapped page would kill the
 * JVM with SIGBUS): writes fail with an IOException, the image stays consistent, and every
 * write that succeeded reads back.
 */
class FullDiskTest {
    @TempDir
    Path tmp;
    private Path mount;

    @BeforeEach
    void mountTmpfs() throws Exception {
        assumeTrue("root".equals(System.getProperty("user.name")), "mounting a tmpfs needs root (CI runs as root)");
        mount = tmp.resolve("small");
        Files.createDirectories(mount);
        Qemu.run("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mount.toString()).assertOk();
    }

    @AfterEach
    void unmount() {
        if (mount != null) {
            Qemu.run("umount", mount.toString());
        }
    }

    @Test
    void writesFailCleanlyWhenTheDiskIsFull() throws IOException {
        Path img = mount.resolve("full.qcow2");
        long size = 64L << 20;
        byte[] oracle = new byte[(int) size];
        Random r = new Random(7);
        IOException failure = null;
        long failedOff = 0;
        byte[] failedData = new byte[0];
        try (Qcow2Image image = Qcow2Image.create(img, CreateOptions.size(size).clusterSize(4096))) {
            for (int i = 0; i < 10_000 && failure == null; i++) {
                long off = (long) r.nextInt((int) (size / 4096)) * 4096 + r.nextInt(100);
                byte[] data = new byte[Math.min(20_000, (int) (size - off))];
                r.nextBytes(data);
                try {
                    image.write(off, ByteBuffer.wrap(data));
                    System.arraycopy(data, 0, oracle, (int) off, data.length);
                } catch (IOException e) {
                    failure = e;
                    failedOff = off;
                    failedData = data;
                }
            }
            assertTrue(failure != null, "the disk never filled up");
            // the image stays usable: reads work, and further writes fail the same way
            IOException again = assertThrows(IOException.class, () -> image.write(0, ByteBuffer.wrap(new byte[1 << 20])));
            assertTrue(again.getMessage() != null);
        }
        Qemu.Result check = Qemu.check(img);
        assertTrue(check.exitCode() == 0 || check.exitCode() == 3, "image inconsistent after ENOSPC:\n" + check.stdout() + check.stderr());
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            byte[] all = new byte[(int) size];
            image.read(0, ByteBuffer.wrap(all));
            // the failed write may have landed in part, cluster by cluster: old or new bytes there
            for (int i = 0; i < failedData.length; i++) {
                int at = (int) failedOff + i;
                assertTrue(all[at] == oracle[at] || all[at] == failedData[i], "torn byte at " + at);
                all[at] = oracle[at];
            }
            RandomOpsOracleTest.assertRange(oracle, all, 0, "after ENOSPC (" + failure.getMessage() + ")");
        }
    }
}
