package io.qcow4j.backup;

import java.io.ByteArrayOutputStream;
import java.io.IOException;

import net.jpountz.lz4.LZ4FrameOutputStream;
import net.jpountz.xxhash.XXHash32;
import net.jpountz.xxhash.XXHashFactory;

/**
 * LZ4 frames as virtnbdbackup writes them (python-lz4's {@code lz4.frame.compress} with block
 * and content checksums). Writing uses lz4-java's frame writer (independent blocks); reading
 * is our own decoder, because python-lz4 links its blocks (a block's matches may reach into
 * the previous 64 KiB of output), which lz4-java's frame reader refuses.
 */
final class Lz4Frames {
    private static final int MAGIC = 0x184D2204;
    private static final XXHash32 XXH = XXHashFactory.fastestInstance().hash32();

    private Lz4Frames() {
    }

    /** One LZ4 frame of {@code data}, with block and content checksums and the content size. */
    static byte[] compress(byte[] data, int off, int len) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream(len / 2 + 64);
        try (LZ4FrameOutputStream lz = new LZ4FrameOutputStream(out, LZ4FrameOutputStream.BLOCKSIZE.SIZE_64KB, len,
                LZ4FrameOutputStream.FLG.Bits.BLOCK_INDEPENDENCE, LZ4FrameOutputStream.FLG.Bits.BLOCK_CHECKSUM,
                LZ4FrameOutputStream.FLG.Bits.CONTENT_CHECKSUM, LZ4FrameOutputStream.FLG.Bits.CONTENT_SIZE)) {
            lz.write(data, off, len);
        }
        return out.toByteArray();
    }

    /**
     * Decodes the LZ4 frames that fill {@code src} (one or several, back to back) into exactly
     * {@code expected} bytes; anything malformed, a checksum that does not match, or another
     * length is an {@link IOException} naming {@code what}.
     */
    static byte[] decompress(byte[] src, int expected, String what) throws IOException {
        byte[] out = new byte[expected];
        int[] pos = {0, 0}; // src position, out position
        try {
            while (pos[0] < src.length) {
                frame(src, out, pos, what);
            }
        } catch (ArrayIndexOutOfBoundsException | IllegalArgumentException e) {
            throw new IOException(what + ": malformed LZ4 frame", e);
        }
        if (pos[1] != expected) {
            throw new IOException(what + ": LZ4 frames hold " + pos[1] + " bytes, not " + expected);
        }
        return out;
    }

    private static void frame(byte[] src, byte[] out, int[] pos, String what) throws IOException {
        int p = pos[0];
        if (intLE(src, p) != MAGIC) {
            throw new IOException(what + ": not an LZ4 frame at payload offset " + p);
        }
        int flg = src[p + 4] & 0xff;
        int bd = src[p + 5] & 0xff;
        if ((flg >>> 6) != 1 || (flg & 0x02) != 0 || (bd & 0x8f) != 0) {
            throw new IOException(what + ": unsupported LZ4 frame descriptor");
        }
        boolean blockSum = (flg & 0x10) != 0;
        boolean contentSize = (flg & 0x08) != 0;
        boolean contentSum = (flg & 0x04) != 0;
        boolean dictId = (flg & 0x01) != 0;
        int maxBlock = 1 << (8 + 2 * ((bd >>> 4) & 7));
        int descLen = 2 + (contentSize ? 8 : 0) + (dictId ? 4 : 0);
        int hc = (XXH.hash(src, p + 4, descLen, 0) >>> 8) & 0xff;
        if (hc != (src[p + 4 + descLen] & 0xff)) {
            throw new IOException(what + ": LZ4 frame descriptor checksum mismatch");
        }
        if (dictId) {
            throw new IOException(what + ": LZ4 frame needs a dictionary");
        }
        long size = contentSize ? longLE(src, p + 6) : -1;
        p += 4 + descLen + 1;
        int start = pos[1];
        while (true) {
            int word = intLE(src, p);
            p += 4;
            if (word == 0) {
                break;
            }
            int len = word & 0x7fffffff;
            if (len > maxBlock || len > src.length - p) {
                throw new IOException(what + ": LZ4 block of " + len + " bytes overruns its frame");
            }
            if (blockSum && XXH.hash(src, p, len, 0) != intLE(src, p + len)) {
                throw new IOException(what + ": LZ4 block checksum mismatch");
            }
            if ((word & 0x80000000) != 0) {
                System.arraycopy(src, p, out, pos[1], len);
                pos[1] += len;
            } else {
                pos[1] = block(src, p, len, out, pos[1], start, what);
            }
            p += len + (blockSum ? 4 : 0);
        }
        if (contentSum) {
            if (XXH.hash(out, start, pos[1] - start, 0) != intLE(src, p)) {
                throw new IOException(what + ": LZ4 content checksum mismatch");
            }
            p += 4;
        }
        if (size >= 0 && size != pos[1] - start) {
            throw new IOException(what + ": LZ4 frame content size mismatch");
        }
        pos[0] = p;
    }

    /**
     * Decodes one LZ4 block (sequences of literals and matches) to {@code out[o...]}; matches
     * may reach back to {@code floor}, the start of this frame's output (linked blocks).
     * Returns the new output position.
     */
    private static int block(byte[] src, int s, int len, byte[] out, int o, int floor, String what) throws IOException {
        int end = s + len;
        while (true) {
            int token = src[s++] & 0xff;
            int lit = token >>> 4;
            if (lit == 15) {
                int b;
                do {
                    b = src[s++] & 0xff;
                    lit += b;
                } while (b == 255);
            }
            if (lit > end - s || lit > out.length - o) {
                throw new IOException(what + ": LZ4 literals overrun");
            }
            System.arraycopy(src, s, out, o, lit);
            s += lit;
            o += lit;
            if (s == end) {
                return o; // the last sequence has literals only
            }
            int offset = (src[s] & 0xff) | (src[s + 1] & 0xff) << 8;
            s += 2;
            int match = (token & 15) + 4;
            if ((token & 15) == 15) {
                int b;
                do {
                    b = src[s++] & 0xff;
                    match += b;
                } while (b == 255);
            }
            if (offset == 0 || offset > o - floor || match > out.length - o) {
                throw new IOException(what + ": LZ4 match out of range");
            }
            for (int i = 0; i < match; i++) { // may overlap its own output
                out[o + i] = out[o - offset + i];
            }
            o += match;
        }
    }

    private static int intLE(byte[] b, int p) {
        return (b[p] & 0xff) | (b[p + 1] & 0xff) << 8 | (b[p + 2] & 0xff) << 16 | (b[p + 3] & 0xff) << 24;
    }

    private static long longLE(byte[] b, int p) {
        return (intLE(b, p) & 0xffffffffL) | ((long) intLE(b, p + 4)) << 32;
    }
}
