package io.qcow4j.testing;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Test data: qemu-io's {@code -P} patterns (every byte is the pattern; qemu-io accepts
 * only 0..255, and so do these helpers) and reproducible pseudo-random bytes.
 */
public final class Patterns {
    private Patterns() {
    }

    /** {@code length} bytes, as {@code qemu-io -c "write -P pattern off length"} writes them. */
    public static byte[] pattern(int pattern, int length) {
        byte[] b = new byte[length];
        fill(b, pattern);
        return b;
    }

    public static void fill(byte[] buf, int pattern) {
        Arrays.fill(buf, toByte(pattern));
    }

    public static void fill(byte[] buf, int off, int len, int pattern) {
        Arrays.fill(buf, off, off + len, toByte(pattern));
    }

    /** Fills the buffer's remaining bytes; position and limit stay where they are. */
    public static void fill(ByteBuffer buf, int pattern) {
        byte b = toByte(pattern);
        for (int i = buf.position(); i < buf.limit(); i++) {
            buf.put(i, b);
        }
    }

    /** Index of the first byte in {@code buf[off, off+len)} that is not {@code pattern}, or -1. */
    public static int firstMismatch(byte[] buf, int off, int len, int pattern) {
        byte b = toByte(pattern);
        for (int i = off; i < off + len; i++) {
            if (buf[i] != b) {
                return i;
            }
        }
        return -1;
    }

    /** True if every byte of {@code buf} is {@code pattern} (like qemu-io's {@code read -P}). */
    public static boolean matches(byte[] buf, int pattern) {
        return firstMismatch(buf, 0, buf.length, pattern) < 0;
    }

    /** The pattern byte; like qemu-io ("is not a valid pattern byte"), refuses values outside 0..255. */
    public static byte toByte(int pattern) {
        if (pattern < 0 || pattern > 0xff) {
            throw new IllegalArgumentException(pattern + " is not a valid pattern byte");
        }
        return (byte) pattern;
    }

    /** {@code length} pseudo-random bytes, the same for the same seed on every JVM. */
    public static byte[] random(long seed, int length) {
        byte[] b = new byte[length];
        fillRandom(b, seed);
        return b;
    }

    public static void fillRandom(byte[] buf, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < buf.length; ) {
            long v = r.nextLong();
            for (int k = 0; k < 8 && i < buf.length; k++, v >>>= 8) {
                buf[i++] = (byte) v;
            }
        }
    }
}
