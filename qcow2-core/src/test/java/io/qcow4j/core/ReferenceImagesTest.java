package io.qcow4j.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.TestData;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Every reference image made by qemu-img reads back exactly as {@code qemu-img convert -O raw} gives it. */
class ReferenceImagesTest {

    static List<String> images() {
        return TestData.qcow2Images();
    }

    @ParameterizedTest
    @MethodSource("images")
    void readsLikeQemuConvert(String name, @TempDir Path tmp) throws IOException {
        Path img = TestData.copyToTemp(name, tmp);
        Path raw = tmp.resolve("expected.raw");
        Qemu.besideImage(img, "qemu-img", "convert", "-U", "-O", "raw", img.getFileName().toString(), raw.toString()).assertOk();
        byte[] expected = Files.readAllBytes(raw);
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            assertEquals(expected.length, image.size(), "virtual size");
            byte[] actual = readAll(image);
            assertSame(expected, actual, name);
            // unaligned reads crossing clusters give the same bytes
            java.util.Random r = new java.util.Random(42);
            for (int i = 0; i < 200 && expected.length > 0; i++) {
                int off = r.nextInt(expected.length);
                int len = Math.min(expected.length - off, 1 + r.nextInt(300_000));
                ByteBuffer b = ByteBuffer.allocate(len);
                image.read(off, b);
                assertArrayEquals(Arrays.copyOfRange(expected, off, off + len), b.array(), name + " read at " + off + "+" + len);
            }
        }
    }

    static byte[] readAll(BlockDevice dev) throws IOException {
        byte[] out = new byte[(int) dev.size()];
        dev.read(0, ByteBuffer.wrap(out));
        return out;
    }

    static void assertSame(byte[] expected, byte[] actual, String what) {
        for (int i = 0; i < expected.length; i++) {
            if (expected[i] != actual[i]) {
                throw new AssertionError(what + ": first difference at offset " + i + " (0x" + Integer.toHexString(i)
                        + "): expected " + expected[i] + ", got " + actual[i]);
            }
        }
    }
}
