package io.qcow4j.core.compress;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import io.qcow4j.core.api.CompressionType;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The buffer path of the codecs (the bulk read decompresses between direct buffers, zlib
 * through libdeflate where the system has it) against the array path, which is the
 * reference: the same bytes out, or a failure where the array path fails.
 */
class BufferDecompressTest {
    private static final long SEED = 20261206L;
    private static final int[] SIZES = {512, 4096, 65536, 2 << 20};

    static List<Arguments> cases() {
        List<Arguments> args = new ArrayList<>();
        for (CompressionType type : CompressionType.values()) {
            for (int cs : SIZES) {
                args.add(Arguments.of(type, cs));
            }
        }
        return args;
    }

    /** Inputs of every kind: good streams with and without trailing bytes, cut, garbage, too long. */
    private static List<byte[]> inputs(ClusterCodec codec, int cs) {
        List<byte[]> in = new ArrayList<>();
        for (TestData data : List.of(TestData.ZERO, TestData.PATTERN, TestData.HALF)) {
            byte[] src = data.make(cs, SEED);
            byte[] comp = new byte[cs - 1];
            int n = codec.compress(src, cs, comp);
            in.add(Arrays.copyOf(comp, n));
            in.add(Arrays.copyOf(comp, n + 511)); // the sector-rounded span: zeros after the stream
            in.add(Arrays.copyOf(comp, n / 2));
            byte[] garbage = Arrays.copyOf(comp, n + 600);
            Random rnd = new Random(SEED);
            for (int i = n; i < garbage.length; i++) {
                garbage[i] = (byte) rnd.nextInt();
            }
            in.add(garbage);
        }
        byte[] random = new byte[cs];
        new Random(SEED).nextBytes(random);
        in.add(random);
        byte[] two = TestData.HALF.make(2 * cs, SEED); // a stream of two clusters
        byte[] comp = new byte[4 * cs];
        in.add(Arrays.copyOf(comp, codec.compress(two, 2 * cs, comp)));
        return in;
    }

    @ParameterizedTest(name = "{0} cluster {1}")
    @MethodSource("cases")
    void sameAsArrays(CompressionType type, int cs) {
        ClusterCodec reference = ClusterCodec.of(type);
        ClusterCodec codec = ClusterCodec.of(type);
        int k = 0;
        for (byte[] in : inputs(reference, cs)) {
            byte[] expected = new byte[cs];
            IOException refFailure = null;
            try {
                reference.decompress(in, 0, in.length, expected, cs);
            } catch (IOException e) {
                refFailure = e;
            }
            for (boolean direct : new boolean[] {true, false}) {
                // at odd offsets inside larger buffers, as in a batch
                ByteBuffer src = direct ? ByteBuffer.allocateDirect(in.length + 100) : ByteBuffer.allocate(in.length + 100);
                src.put(37, in);
                ByteBuffer dst = direct ? ByteBuffer.allocateDirect(cs + 64) : ByteBuffer.allocate(cs + 64);
                String what = type + " input " + k + (direct ? " direct" : " heap");
                try {
                    codec.decompress(src, 37, in.length, dst, 13, cs);
                    assertEquals(null, refFailure, what + ": the array path failed, the buffer path did not");
                    byte[] got = new byte[cs];
                    dst.get(13, got);
                    assertArrayEquals(expected, got, what);
                    assertEquals(0, dst.get(12), what + ": wrote before its place");
                    assertEquals(0, dst.get(13 + cs), what + ": wrote past its place");
                } catch (IOException e) {
                    assertNotNull(refFailure, what + ": the buffer path failed alone: " + e.getMessage());
                    assertEquals(refFailure.getMessage(), e.getMessage(), what);
                }
                assertEquals(0, src.position(), what);
                assertEquals(0, dst.position(), what);
            }
            k++;
        }
    }

    /** Where the system has libdeflate, it takes the ordinary streams and leaves the rest. */
    @ParameterizedTest(name = "{0}")
    @EnumSource(value = CompressionType.class, names = "ZLIB")
    void libdeflateWhenThere(CompressionType type) {
        Libdeflate l = Libdeflate.create();
        boolean there = Files.exists(Path.of("/lib/x86_64-linux-gnu/libdeflate.so.0"))
                || Files.exists(Path.of("/usr/lib/x86_64-linux-gnu/libdeflate.so.0"));
        if (!there || !"amd64".equals(System.getProperty("os.arch"))) {
            return; // nothing to check: Inflater does it all (sameAsArrays covers that)
        }
        assertNotNull(l, "libdeflate.so.0 is installed but was not loaded");
        int cs = 65536;
        ClusterCodec codec = ClusterCodec.of(type);
        List<byte[]> in = inputs(codec, cs);
        ByteBuffer dst = ByteBuffer.allocateDirect(cs);
        for (int i = 0; i < in.size(); i++) {
            ByteBuffer src = ByteBuffer.allocateDirect(in.get(i).length).put(0, in.get(i));
            boolean taken = l.inflate(src, 0, in.get(i).length, dst, 0, cs);
            // per data kind: stream, stream + zeros, cut, stream + garbage; then random, two clusters
            boolean ordinary = i < 12 && (i % 4 == 0 || i % 4 == 1 || i % 4 == 3);
            assertEquals(ordinary, taken, "input " + i);
        }
        assertFalse(l.inflate(ByteBuffer.allocate(10), 0, 10, dst, 0, cs), "heap buffers are not for libdeflate");
        assertFalse(l.inflate(ByteBuffer.allocateDirect(10), 0, 11, dst, 0, cs), "past the buffer");
    }
}
