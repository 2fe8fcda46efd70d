package io.qcow4j.nbd.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import io.qcow4j.nbd.client.NbdClient;
import io.qcow4j.testing.Qemu;

/**
 * Reads of a read-only export, where plain data clusters of the top image go out by
 * sendfile straight from its file: every kind of range (plain data, zero clusters,
 * compressed clusters, clusters from the backing file, unallocated, and requests mixing
 * them, unaligned) reads as QEMU reads the image.
 */
@Timeout(60)
class NbdDirectReadTest {
    @TempDir
    Path dir;

    private void run(String... cmd) {
        Qemu.run(dir, Duration.ofSeconds(30), cmd).assertOk();
    }

    @Test
    void everyKindOfRangeReadsAsQemuReadsIt() throws Exception {
        run("qemu-img", "create", "-q", "-f", "qcow2", "base.qcow2", "12M");
        run("qemu-io", "-c", "write -P 1 0 12M", "base.qcow2");
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2");
        run("qemu-io", "-c", "write -P 2 0 1M", "-c", "write -z 1M 512k", "-c", "write -c -P 3 2M 256k",
                "-c", "write -P 4 4M 2M", "-c", "write -z 6M 64k", "-c", "write -P 5 6208k 1M",
                "-c", "write -P 6 7300k 5000", "-c", "write -z 10M 2M", "top.qcow2");
        Path top = dir.resolve("top.qcow2");
        run("qemu-img", "convert", "-f", "qcow2", "-O", "raw", "top.qcow2", "ref.raw");
        byte[] ref = Files.readAllBytes(dir.resolve("ref.raw"));
        long seed = 31 + Long.getLong("qcow4j.seed", 0);
        Random rnd = new Random(seed);
        try (Servers.Ours o = new Servers.Ours(top, "qcow2", false, dir.resolve("o.sock"), b -> b.shared(0))) {
            run("nbdcopy", o.uri(), "nbdcopy.raw");
            assertTrue(Qemu.compare(dir.resolve("nbdcopy.raw"), top));
            assertEquals(0, Qemu.run("qemu-img", "compare", "-f", "raw", "-F", "qcow2", o.uri(), top.toString()).exitCode());
            try (NbdClient c = NbdClient.connect(o.uri())) {
                // whole pure runs first (data only; data, hole, data), then random unaligned ranges
                long[][] ranges = {{4 << 20, 2 << 20}, {4 << 20, 64 << 10}, {6 << 20, 64 << 10}, {(6 << 20) - 4096, 200 << 10},
                    {(1 << 20) - 100, 1 << 20}, {2 << 20, 256 << 10}, {3 << 20, 1 << 20}, {10 << 20, 2 << 20}};
                for (long[] r : ranges) {
                    check(c, ref, r[0], (int) r[1], "range " + Arrays.toString(r));
                }
                for (int i = 0; i < 200; i++) {
                    int len = 1 + rnd.nextInt(rnd.nextBoolean() ? 4096 : 3 << 20);
                    long off = rnd.nextInt(ref.length - len + 1);
                    check(c, ref, off, len, "seed " + seed + " read " + i + " at " + off + " len " + len);
                }
            }
        }
    }

    /** The last data cluster cut off the file's end (issue 16): the export reads zeros there, as qemu does, and goes on. */
    @Test
    void clusterCutOffTheFileEndReadsAsQemuReadsIt() throws Exception {
        run("qemu-img", "create", "-q", "-f", "qcow2", "cut.qcow2", "4M");
        run("qemu-io", "-c", "write -P 7 0 4M", "cut.qcow2");
        Path cut = dir.resolve("cut.qcow2");
        try (java.nio.channels.FileChannel f = java.nio.channels.FileChannel.open(cut, java.nio.file.StandardOpenOption.WRITE)) {
            f.truncate(f.size() - (40 << 10));
        }
        run("qemu-img", "convert", "-f", "qcow2", "-O", "raw", "cut.qcow2", "cut.raw");
        byte[] ref = Files.readAllBytes(dir.resolve("cut.raw"));
        try (Servers.Ours o = new Servers.Ours(cut, "qcow2", false, dir.resolve("c.sock"), b -> b.shared(0));
             NbdClient c = NbdClient.connect(o.uri())) {
            check(c, ref, 0, ref.length, "whole disk");
            check(c, ref, ref.length - (256 << 10), 256 << 10, "the tail, again on the same connection");
        }
    }

    private static void check(NbdClient c, byte[] ref, long off, int len, String what) throws Exception {
        ByteBuffer b = ByteBuffer.allocate(len);
        c.read(off, b);
        assertArrayEquals(Arrays.copyOfRange(ref, (int) off, (int) off + len), b.array(), what);
    }
}
