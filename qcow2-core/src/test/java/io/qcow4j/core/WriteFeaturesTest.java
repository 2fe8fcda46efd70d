package io.qcow4j.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import io.qcow4j.core.api.CompressionType;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Compressed writes, external data files, resize and the channel view, checked by qemu. */
class WriteFeaturesTest {

    @ParameterizedTest
    @ValueSource(strings = {"zlib", "zstd"})
    void compressedClustersReadBackInQemu(String type, @TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("c.qcow2");
        int cs = 65536;
        long size = 40L * cs + 1536;
        byte[] oracle = new byte[(int) size];
        Random r = new Random(5);
        try (Qcow2Image image = Qcow2Image.create(img, CreateOptions.size(size).compressionType(CompressionType.fromName(type)))) {
            for (long off = 0; off < size; off += cs) {
                int n = (int) Math.min(cs, size - off);
                byte[] d = new byte[n];
                switch ((int) (off / cs) % 4) {
                    case 0 -> r.nextBytes(d);  // incompressible: stored plain
                    case 1 -> {
                        for (int i = 0; i < n; i++) {
                            d[i] = (byte) ((i / 100) % 7);
                        }
                    }
                    case 2 -> {
                        byte[] block = new byte[10_000];
                        r.nextBytes(block);
                        for (int i = 0; i < n; i++) {
                            d[i] = block[i % block.length];
                        }
                    }
                    default -> java.util.Arrays.fill(d, (byte) 0x42);
                }
                image.writeCompressed(off, ByteBuffer.wrap(d));
                System.arraycopy(d, 0, oracle, (int) off, n);
            }
            // partial overwrites and discards of compressed clusters
            for (int i = 0; i < 40; i++) {
                long off = r.nextInt((int) size - 5000);
                byte[] d = new byte[1 + r.nextInt(4999)];
                r.nextBytes(d);
                image.write(off, ByteBuffer.wrap(d));
                System.arraycopy(d, 0, oracle, (int) off, d.length);
            }
            image.discard(5L * cs, 2L * cs);
            java.util.Arrays.fill(oracle, 5 * cs, 7 * cs, (byte) 0);
        }
        assertEquals(0, Qemu.check(img).exitCode(), Qemu.check(img).stdout());
        Path raw = tmp.resolve("o.raw");
        Files.write(raw, oracle);
        assertTrue(Qemu.compare(img, raw), "content differs");
        String map = Qemu.qemuImg("map", "--output=json", img.toString()).stdout();
        assertTrue(map.contains("\"data\": true"), map);
    }

    /**
     * Compressed clusters share host clusters; a host cluster whose refcount is at the
     * width's maximum (1 with refcount_bits=1) takes no more, as in QEMU: the next one
     * starts a new cluster (was: "Refcount overflow" on the second compressed write).
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void compressedClustersNeverOverflowANarrowRefcount(int refcountBits, @TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("narrow.qcow2");
        try (Qcow2Image image = Qcow2Image.create(img, CreateOptions.size(1 << 20).clusterSize(4096).refcountBits(refcountBits))) {
            for (int i = 0; i < 8; i++) {
                byte[] d = new byte[4096];
                java.util.Arrays.fill(d, (byte) (i + 1));
                image.writeCompressed(i * 4096L, ByteBuffer.wrap(d));
            }
        }
        assertEquals(0, Qemu.check(img).exitCode(), Qemu.check(img).stdout());
        for (int i = 0; i < 8; i++) {
            Qemu.io(img, "read -P " + (i + 1) + " " + i * 4096 + " 4k").assertOk();
        }
        String map = Qemu.qemuImg("map", "--output=json", img.toString()).stdout();
        assertTrue(map.contains("\"data\": true"), map);
    }

    @Test
    void externalDataFile(@TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("d.qcow2");
        long size = 8L << 20;
        byte[] oracle = new byte[(int) size];
        Random r = new Random(8);
        try (Qcow2Image image = Qcow2Image.create(img, CreateOptions.size(size).dataFile("d.data").clusterSize(4096))) {
            for (int i = 0; i < 150; i++) {
                long off = RandomOpsOracleTest.randomOffset(r, size, 4096);
                int len = (int) Math.min(size - off, RandomOpsOracleTest.randomLength(r, 4096));
                if (r.nextInt(4) == 0) {
                    image.writeZeroes(off, len);
                    java.util.Arrays.fill(oracle, (int) off, (int) off + len, (byte) 0);
                } else {
                    byte[] d = new byte[len];
                    r.nextBytes(d);
                    image.write(off, ByteBuffer.wrap(d));
                    System.arraycopy(d, 0, oracle, (int) off, len);
                }
            }
        }
        Qemu.Result check = Qemu.besideImage(img, "qemu-img", "check", "d.qcow2");
        assertEquals(0, check.exitCode(), check.stdout() + check.stderr());
        Path raw = tmp.resolve("o.raw");
        Files.write(raw, oracle);
        Qemu.Result cmp = Qemu.besideImage(img, "qemu-img", "compare", "-F", "raw", "d.qcow2", raw.toString());
        assertEquals(0, cmp.exitCode(), cmp.stdout() + cmp.stderr());
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            assertEquals("d.data", image.info().dataFile());
            ReferenceImagesTest.assertSame(oracle, ReferenceImagesTest.readAll(image), "data file image");
        }
    }

    @Test
    void resizeGrowsAndShrinksOnlyWhereNothingIsAllocated(@TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("r.qcow2");
        try (Qcow2Image image = Qcow2Image.create(img, CreateOptions.size(1L << 20).clusterSize(512))) {
            image.write(1000, ByteBuffer.wrap(HeaderFeaturesTest.bytes(3000, 7)));
            // 512-byte clusters: an L2 table maps 32 KiB, so this needs many more L1 entries
            image.resize(3L << 30);
            image.write((3L << 30) - 100, ByteBuffer.wrap(HeaderFeaturesTest.bytes(100, 9)));
            IOException e = assertThrows(IOException.class, () -> image.resize(2L << 30));
            assertTrue(e.getMessage().contains("allocated"), e.getMessage());
            image.discard((3L << 30) - 512, 512);
            image.resize(2L << 20);
            assertEquals(2L << 20, image.size());
        }
        assertEquals(0, Qemu.check(img).exitCode());
        assertEquals(2L << 20, Qemu.infoJson(img).path("virtual-size").asLong());
        Qemu.io(img, "read -P 7 1000 3000", "read -P 0 4000 1000000").assertOk();
    }

    @Test
    void channelView(@TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("ch.qcow2");
        try (Qcow2Image image = Qcow2Image.create(img, CreateOptions.size(1L << 20));
             SeekableByteChannel ch = image.channel()) {
            ch.position(70_000);
            assertEquals(5, ch.write(ByteBuffer.wrap("hello".getBytes())));
            assertEquals(70_005, ch.position());
            ch.position((1L << 20) - 2);
            ByteBuffer b = ByteBuffer.allocate(10);
            assertEquals(2, ch.read(b));
            assertEquals(-1, ch.read(b));
            assertThrows(IOException.class, () -> ch.write(ByteBuffer.allocate(5)));
        }
        Qemu.io(img, "read -P 0x68 70000 1", "read -P 0x6f 70004 1").assertOk();
    }
}
