package io.qcow4j.backup.s3;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;

/**
 * The bytes of one part of an upload, in blocks of {@link #BLOCK}: no array large enough to
 * be a "humongous" object of the G1 collector (half a region of 1 MiB, the region size of any
 * heap up to 2 GiB), which a small heap could not place even with room to spare.
 */
final class Part {
    static final int BLOCK = 256 << 10;
    private final byte[][] blocks;
    private int length;

    Part(int size) {
        blocks = new byte[(size + BLOCK - 1) / BLOCK][];
        for (int i = 0; i < blocks.length; i++) {
            blocks[i] = new byte[BLOCK];
        }
    }

    int capacity() {
        return blocks.length * BLOCK;
    }

    int length() {
        return length;
    }

    boolean full() {
        return length == capacity();
    }

    void clear() {
        length = 0;
    }

    /** Appends as much of {@code b} as fits. */
    void append(ByteBuffer b) {
        while (b.hasRemaining() && !full()) {
            byte[] blk = blocks[length / BLOCK];
            int at = length % BLOCK;
            int n = Math.min(BLOCK - at, b.remaining());
            b.get(blk, at, n);
            length += n;
        }
    }

    /** Writes {@code b} over bytes already appended at {@code pos}. */
    void overwrite(long pos, ByteBuffer b) {
        int p = (int) pos;
        while (b.hasRemaining()) {
            int n = Math.min(BLOCK - p % BLOCK, b.remaining());
            b.get(blocks[p / BLOCK], p % BLOCK, n);
            p += n;
        }
    }

    /** A fresh stream of the part's bytes (the SDK asks again for a retried request). */
    InputStream stream() {
        return new InputStream() {
            private int pos;

            @Override
            public int read() {
                if (pos >= length) {
                    return -1;
                }
                int v = blocks[pos / BLOCK][pos % BLOCK] & 0xff;
                pos++;
                return v;
            }

            @Override
            public int read(byte[] dst, int off, int len) {
                if (len == 0) {
                    return 0;
                }
                if (pos >= length) {
                    return -1;
                }
                int n = Math.min(len, Math.min(length - pos, BLOCK - pos % BLOCK));
                System.arraycopy(blocks[pos / BLOCK], pos % BLOCK, dst, off, n);
                pos += n;
                return n;
            }

            @Override
            public int available() {
                return length - pos;
            }

            @Override
            public void close() throws IOException {
                // nothing held
            }
        };
    }
}
