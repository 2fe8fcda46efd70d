package io.qcow4j.core.compress;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.core.api.CompressionType;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.zip.Deflater;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/** The behaviour both codecs share; every test runs for zlib and zstd. */
class ClusterCodecTest {

    static final int[] CLUSTER_SIZES = {512, 4096, 65536, 2 << 20};
    static final long SEED = 20261128L;
    /** A hang on bad input fails the test instead of stalling the build. */
    static final Duration LIMIT = Duration.ofSeconds(20);

    static List<Arguments> typeSizeData() {
        List<Arguments> args = new ArrayList<>();
        for (CompressionType type : CompressionType.values()) {
            for (int cs : CLUSTER_SIZES) {
                for (TestData data : TestData.values()) {
                    args.add(Arguments.of(type, cs, data));
                }
            }
        }
        return args;
    }

    static List<Arguments> typeSize() {
        List<Arguments> args = new ArrayList<>();
        for (CompressionType type : CompressionType.values()) {
            for (int cs : CLUSTER_SIZES) {
                args.add(Arguments.of(type, cs));
            }
        }
        return args;
    }

    @ParameterizedTest(name = "{0} cluster {1} {2}")
    @MethodSource("typeSizeData")
    void roundTrip(CompressionType type, int cs, TestData data) throws IOException {
        ClusterCodec codec = ClusterCodec.of(type);
        byte[] src = data.make(cs, SEED);
        byte[] comp = new byte[cs - 1];
        int n = codec.compress(src, cs, comp);
        if (data == TestData.RANDOM) {
            assertEquals(-1, n, "random data must not fit in cluster_size - 1 bytes");
            comp = new byte[cs + cs / 8 + 1024]; // room to round-trip the incompressible data anyway
            n = codec.compress(src, cs, comp);
        } else {
            assertTrue(n > 0 && n < cs, "compressed length " + n);
        }
        assertTrue(n > 0, "compressed length " + n);
        byte[] out = new byte[cs];
        codec.decompress(comp, 0, n, out, cs);
        assertArrayEquals(src, out, "seed " + SEED);
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(CompressionType.class)
    void factoryPicksTheCodec(CompressionType type) {
        Class<?> expected = type == CompressionType.ZLIB ? ZlibCodec.class : ZstdCodec.class;
        assertEquals(expected, ClusterCodec.of(type).getClass());
    }

    /** The engine hands over the sector-rounded span: whatever follows the stream is ignored. */
    @ParameterizedTest(name = "{0} cluster {1}")
    @MethodSource("typeSize")
    void trailingGarbageIsIgnored(CompressionType type, int cs) throws IOException {
        ClusterCodec codec = ClusterCodec.of(type);
        byte[] src = TestData.HALF.make(cs, SEED);
        byte[] comp = new byte[cs - 1];
        int n = codec.compress(src, cs, comp);
        assertTrue(n > 0);
        Random rnd = new Random(SEED);
        byte[] random = new byte[1024];
        rnd.nextBytes(random);
        byte[] ones = new byte[1024];
        Arrays.fill(ones, (byte) 0xff);
        // The stream repeated: looks like a valid second stream / frame.
        byte[] again = Arrays.copyOf(comp, Math.max(n, 1024));
        for (byte[] garbage : List.of(random, ones, new byte[1024], again)) {
            int off = 7; // the host offset of a compressed cluster is byte-aligned
            int span = ((off + n + 511) & ~511) - off + 512; // rounded up, plus one more sector
            byte[] host = new byte[off + span];
            System.arraycopy(comp, 0, host, off, n);
            for (int i = off + n, j = 0; i < host.length; i++, j = (j + 1) % garbage.length) {
                host[i] = garbage[j];
            }
            byte[] out = new byte[cs];
            codec.decompress(host, off, span, out, cs);
            assertArrayEquals(src, out);
        }
    }

    @ParameterizedTest(name = "{0} cluster {1}")
    @MethodSource("typeSize")
    void truncatedInputFails(CompressionType type, int cs) {
        ClusterCodec codec = ClusterCodec.of(type);
        byte[] src = TestData.HALF.make(cs, SEED);
        byte[] comp = new byte[cs - 1];
        int n = codec.compress(src, cs, comp);
        for (int len : new int[] {0, 1, n / 2}) {
            IOException e = assertTimeoutPreemptively(LIMIT, () -> assertThrows(IOException.class,
                    () -> codec.decompress(comp, 0, len, new byte[cs], cs), "truncated to " + len));
            assertTrue(e.getMessage().contains("of " + cs + " bytes"), e.getMessage());
        }
    }

    @ParameterizedTest(name = "{0} cluster {1}")
    @MethodSource("typeSize")
    void garbageInputFails(CompressionType type, int cs) {
        ClusterCodec codec = ClusterCodec.of(type);
        byte[] random = new byte[cs];
        new Random(SEED).nextBytes(random);
        byte[] ones = new byte[cs];
        Arrays.fill(ones, (byte) 0xff);
        for (byte[] garbage : List.of(random, ones, new byte[cs])) {
            assertTimeoutPreemptively(LIMIT, () -> assertThrows(IOException.class,
                    () -> codec.decompress(garbage, 0, garbage.length, new byte[cs], cs)));
        }
    }

    /** One instance serves many clusters of any size, also after it saw a corrupt one. */
    @ParameterizedTest(name = "{0}")
    @EnumSource(CompressionType.class)
    void instanceIsReusable(CompressionType type) throws IOException {
        ClusterCodec codec = ClusterCodec.of(type);
        byte[] bad = new byte[4096];
        Arrays.fill(bad, (byte) 0xff);
        for (int round = 0; round < 3; round++) {
            for (int cs : CLUSTER_SIZES) {
                for (TestData data : List.of(TestData.PATTERN, TestData.HALF, TestData.ZERO)) {
                    byte[] src = data.make(cs, SEED + round);
                    byte[] comp = new byte[cs - 1];
                    int n = codec.compress(src, cs, comp);
                    // A stream cut short leaves the decoder mid-stream; the next call must not care.
                    assertThrows(IOException.class, () -> codec.decompress(comp, 0, n / 2, new byte[cs], cs));
                    assertThrows(IOException.class, () -> codec.decompress(bad, 0, bad.length, new byte[cs], cs));
                    byte[] out = new byte[cs];
                    codec.decompress(comp, 0, n, out, cs);
                    assertArrayEquals(src, out, data + " " + cs + " round " + round);
                }
            }
        }
    }

    /**
     * -1 means "does not fit": zlib accepts output of exactly dst.length bytes; libzstd (in QEMU
     * too) wants about 8 bytes of headroom beyond the final size, so zstd is checked with 16.
     */
    @ParameterizedTest(name = "{0} cluster {1}")
    @MethodSource("typeSize")
    void compressedLengthBound(CompressionType type, int cs) throws IOException {
        ClusterCodec codec = ClusterCodec.of(type);
        int headroom = type == CompressionType.ZLIB ? 0 : 16;
        for (TestData data : List.of(TestData.PATTERN, TestData.HALF)) {
            byte[] src = data.make(cs, SEED);
            int n = codec.compress(src, cs, new byte[cs - 1]);
            byte[] tight = new byte[n + headroom];
            assertEquals(n, codec.compress(src, cs, tight), data + ": fits in " + tight.length);
            assertEquals(-1, codec.compress(src, cs, new byte[n - 1]), data + ": one byte short");
            byte[] out = new byte[cs];
            codec.decompress(tight, 0, n, out, cs);
            assertArrayEquals(src, out);
        }
    }

    /**
     * A stream holding more than one cluster, as QEMU treats it: zlib stops when the cluster is
     * full (inflate with Z_FINISH, avail_out 0 is success); zstd fails because the frame is not
     * finished when the cluster is full.
     */
    @ParameterizedTest(name = "{0}")
    @EnumSource(CompressionType.class)
    void streamLongerThanTheCluster(CompressionType type) throws IOException {
        ClusterCodec codec = ClusterCodec.of(type);
        int cs = 65536;
        byte[] src = TestData.HALF.make(2 * cs, SEED);
        byte[] comp = new byte[2 * cs];
        int n = codec.compress(src, 2 * cs, comp);
        byte[] out = new byte[cs];
        if (type == CompressionType.ZLIB) {
            codec.decompress(comp, 0, n, out, cs);
            assertArrayEquals(Arrays.copyOf(src, cs), out);
        } else {
            IOException e = assertThrows(IOException.class, () -> codec.decompress(comp, 0, n, out, cs));
            assertTrue(e.getMessage().contains("more than " + cs), e.getMessage());
        }
    }

    /**
     * zlib: the 4 KiB flushes keep matches inside QEMU's window (ZlibInteropTest checks that
     * with Python's zlib); without Python, compare sizes: on data whose only long-range
     * redundancy is a repeat at distance 10 KiB, plain deflate uses it and ours cannot.
     */
    @Test
    void zlibMatchesStayWithin4KiB() {
        byte[] src = TestData.repeatedLetters(10 * 1024, 65536, SEED);
        int n = new ZlibCodec().compress(src, src.length, new byte[src.length - 1]);
        Deflater plain = new Deflater(Deflater.DEFAULT_COMPRESSION, true);
        plain.setInput(src);
        plain.finish();
        int plainLen = plain.deflate(new byte[2 * src.length]);
        plain.end();
        assertTrue(plainLen < 12 * 1024, "plain deflate uses the far repeats: " + plainLen);
        assertTrue(n > 30 * 1024, "flushed deflate must not: " + n);
    }

    /** A zstd frame header may claim a huge window; it is refused, not allocated. */
    @Test
    void zstdHugeWindowIsRefused() {
        // Magic, frame header descriptor 0 (no content size, not single-segment), window
        // descriptor exponent 17 (128 MiB, zstd's default limit), then a last raw block of 10 bytes.
        byte[] frame = new byte[4 + 2 + 3 + 10];
        byte[] head = {(byte) 0x28, (byte) 0xb5, (byte) 0x2f, (byte) 0xfd, 0, (byte) (17 << 3), (byte) ((10 << 3) | 1), 0, 0};
        System.arraycopy(head, 0, frame, 0, head.length);
        IOException e = assertThrows(IOException.class,
                () -> new ZstdCodec().decompress(frame, 0, frame.length, new byte[10], 10));
        assertTrue(e.getMessage().contains("too much memory"), e.getMessage());
        // The same frame with a 1 MiB window (exponent 10) is fine.
        frame[5] = (byte) (10 << 3);
        assertDoesNotThrow(() -> new ZstdCodec().decompress(frame, 0, frame.length, new byte[10], 10));
    }
}
