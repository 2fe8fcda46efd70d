package io.qcow4j.core;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Seeded random writes, zero-writes, discards and reads against a byte array, across
 * geometries; reopened midway; at the end qemu-img checks the image and compares it with
 * the oracle's bytes. The seed is in every failure message.
 */
class RandomOpsOracleTest {

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "plain-64k,     1.1,  65536, 16, false, false, 1",
            "cluster-512,   1.1,    512, 16, false, false, 2",
            "cluster-2m,    1.1, 2097152, 16, false, false, 3",
            "v2,            0.10, 65536, 16, false, false, 4",
            "refcount-1,    1.1,   4096,  1, false, false, 5",
            "refcount-64,   1.1,   4096, 64, false, false, 6",
            "extended-l2,   1.1,  65536, 16, true,  false, 7",
            "overlay-64k,   1.1,  65536, 16, false, true,  8",
            "overlay-v2,    0.10, 65536, 16, false, true,  9",
            "overlay-ext-l2,1.1,  32768, 16, true,  true, 10",
    })
    void randomOperations(String name, String compat, int clusterSize, int refcountBits, boolean extendedL2,
                          boolean overlay, long seedBase, @TempDir Path tmp) throws IOException {
        long seed = seedBase * 7919 + Long.getLong("qcow4j.seed", 0);
        Random r = new Random(seed);
        long size = clusterSize >= 2097152 ? 24L << 20 : 6L << 20;
        size += 512 * r.nextInt(64);
        byte[] oracle = new byte[(int) size];
        Path img = tmp.resolve("img.qcow2");
        CreateOptions opts = CreateOptions.size(size).compat(compat).clusterSize(clusterSize)
                .refcountBits(refcountBits).extendedL2(extendedL2);
        if (overlay) {
            Path base = tmp.resolve("base.qcow2");
            long baseSize = size - 3 * clusterSize - 4096;
            try (Qcow2Image b = Qcow2Image.create(base, CreateOptions.size(baseSize).clusterSize(65536))) {
                byte[] chunk = new byte[65536];
                for (long off = 0; off < baseSize; off += chunk.length) {
                    r.nextBytes(chunk);
                    int n = (int) Math.min(chunk.length, baseSize - off);
                    if (r.nextInt(4) != 0) {
                        b.write(off, ByteBuffer.wrap(chunk, 0, n));
                        System.arraycopy(chunk, 0, oracle, (int) off, n);
                    }
                }
            }
            opts.backingFile("base.qcow2").backingFormat("qcow2");
        }
        byte[] backingView = oracle.clone();
        Qcow2Image image = Qcow2Image.create(img, opts);
        try {
            for (int op = 0; op < 400; op++) {
                if (op == 200) {
                    image.close();
                    image = Qcow2Image.open(img, OpenOptions.readWrite());
                }
                int kind = r.nextInt(10);
                long off = randomOffset(r, size, clusterSize);
                int len = (int) Math.min(size - off, randomLength(r, clusterSize));
                String what = "seed " + seed + " op " + op;
                if (kind < 5) {
                    byte[] data = new byte[len];
                    r.nextBytes(data);
                    if (r.nextBoolean()) {
                        java.util.Arrays.fill(data, (byte) r.nextInt(256));
                    }
                    image.write(off, ByteBuffer.wrap(data));
                    System.arraycopy(data, 0, oracle, (int) off, len);
                } else if (kind < 7) {
                    image.writeZeroes(off, len);
                    java.util.Arrays.fill(oracle, (int) off, (int) (off + len), (byte) 0);
                } else if (kind < 8) {
                    image.discard(off, len);
                    applyDiscard(oracle, backingView, off, len, size, clusterSize, overlay && compat.equals("0.10"));
                } else {
                    ByteBuffer b = ByteBuffer.allocate(len);
                    image.read(off, b);
                    assertRange(oracle, b.array(), off, what);
                }
            }
            byte[] all = new byte[(int) size];
            image.read(0, ByteBuffer.wrap(all));
            assertRange(oracle, all, 0, "seed " + seed + " final read");
        } finally {
            image.close();
        }
        Qemu.Result check = Qemu.besideImage(img, "qemu-img", "check", img.getFileName().toString());
        assertEquals(0, check.exitCode(), "seed " + seed + ": qemu-img check\n" + check.stdout() + check.stderr());
        Path raw = tmp.resolve("oracle.raw");
        Files.write(raw, oracle);
        Qemu.Result cmp = Qemu.besideImage(img, "qemu-img", "compare", "-f", "qcow2", "-F", "raw", img.getFileName().toString(), raw.toString());
        assertEquals(0, cmp.exitCode(), "seed " + seed + ": qemu-img compare\n" + cmp.stdout() + cmp.stderr());
    }

    /** Whole clusters inside the range become zeros; on a v2 overlay nothing changes. */
    private static void applyDiscard(byte[] oracle, byte[] backing, long off, long len, long size, int cs, boolean v2Overlay) {
        if (v2Overlay) {
            return;
        }
        long c = (off + cs - 1) / cs * cs;
        for (; c < off + len; c += cs) {
            long end = Math.min(c + cs, size);
            if (end <= off + len) {
                if (v2Overlay) {
                    System.arraycopy(backing, (int) c, oracle, (int) c, (int) (end - c));
                } else {
                    java.util.Arrays.fill(oracle, (int) c, (int) end, (byte) 0);
                }
            }
        }
    }

    static long randomOffset(Random r, long size, int cs) {
        long off = switch (r.nextInt(3)) {
            case 0 -> (long) r.nextInt((int) (size / cs)) * cs;
            case 1 -> r.nextInt((int) size);
            default -> (long) r.nextInt((int) (size / 512)) * 512;
        };
        return Math.min(off, size - 1);
    }

    static int randomLength(Random r, int cs) {
        return switch (r.nextInt(4)) {
            case 0 -> 1 + r.nextInt(1024);
            case 1 -> cs;
            case 2 -> 1 + r.nextInt(3 * cs);
            default -> 1 + r.nextInt(300_000);
        };
    }

    static void assertRange(byte[] oracle, byte[] actual, long off, String what) {
        for (int i = 0; i < actual.length; i++) {
            if (actual[i] != oracle[(int) off + i]) {
                throw new AssertionError(what + ": mismatch at offset " + (off + i) + ": expected "
                        + oracle[(int) off + i] + ", got " + actual[i]);
            }
        }
    }
}
