package io.qcow4j.core.compress;

import java.util.Arrays;
import java.util.Random;

/** Seeded cluster contents for the codec tests. */
enum TestData {
    RANDOM,
    ZERO,
    /** Every 8-byte word holds its own offset, like a disk filled by a test pattern. */
    PATTERN,
    /** 256-byte runs, alternately random and zero: compresses to about half. */
    HALF;

    byte[] make(int size, long seed) {
        Random rnd = new Random(seed);
        byte[] b = new byte[size];
        switch (this) {
            case RANDOM:
                rnd.nextBytes(b);
                break;
            case ZERO:
                break;
            case PATTERN:
                for (int i = 0; i < size; i++) {
                    b[i] = (byte) ((i & ~7L) >>> (8 * (7 - (i & 7))));
                }
                break;
            case HALF:
                rnd.nextBytes(b);
                for (int i = 256; i < size; i += 512) {
                    Arrays.fill(b, i, Math.min(size, i + 256), (byte) 0);
                }
                break;
            default:
                throw new AssertionError(this);
        }
        return b;
    }

    /**
     * {@code total} bytes made of one {@code block}-byte block repeated; the block holds random
     * letters 'a'..'p', so it compresses to about half even without the repeats. Plain deflate
     * finds the repeats at distance {@code block}; with {@code block} &gt; 4096 a stream that
     * uses them is invalid for QEMU's 4 KiB inflate window.
     */
    static byte[] repeatedLetters(int block, int total, long seed) {
        Random rnd = new Random(seed);
        byte[] unit = new byte[block];
        for (int i = 0; i < block; i++) {
            unit[i] = (byte) ('a' + rnd.nextInt(16));
        }
        byte[] b = new byte[total];
        for (int i = 0; i < total; i += block) {
            System.arraycopy(unit, 0, b, i, Math.min(block, total - i));
        }
        return b;
    }
}
