package io.qcow4j.core.compress;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.zip.DataFormatException;
import java.util.zip.Deflater;
import java.util.zip.Inflater;

/**
 * compression_type 0: raw deflate (no zlib header or checksum), as QEMU writes it.
 *
 * <p>QEMU inflates with windowBits -12, a 4 KiB window, and rejects any match that reaches
 * further back ("invalid distance too far back"). {@link Deflater} always uses a 32 KiB window,
 * so {@link #compress} issues a {@link Deflater#FULL_FLUSH} after every 4 KiB of input: a full
 * flush empties the match dictionary, so no match can reach past it.
 *
 * <p>Decompression between direct buffers goes through libdeflate where the system has it
 * ({@link Libdeflate}), falling back to the Inflater for any stream libdeflate does not
 * decode to exactly the cluster.
 *
 * <p>Not thread-safe: the Deflater and Inflater are reused across calls.
 */
public final class ZlibCodec implements ClusterCodec {

    /** QEMU's inflate window: windowBits 12. */
    static final int WINDOW = 4096;

    private final Deflater deflater = new Deflater(Deflater.DEFAULT_COMPRESSION, true);
    private final Inflater inflater = new Inflater(true);
    private final byte[] probe = new byte[1];
    /** Made on the first buffer decompression (an image only inspected never loads it); null: not there. */
    private Libdeflate libdeflate;
    private boolean libdeflateLooked;

    @Override
    public int compress(byte[] src, int srcLen, byte[] dst) {
        deflater.reset();
        int pos = 0;
        int off = 0;
        while (srcLen - off > WINDOW) {
            deflater.setInput(src, off, WINDOW);
            off += WINDOW;
            // A flushing deflate consumes all input unless it fills dst; and if it fills dst,
            // the output cannot fit because more input follows.
            pos += deflater.deflate(dst, pos, dst.length - pos, Deflater.FULL_FLUSH);
            if (pos == dst.length) {
                return -1;
            }
        }
        deflater.setInput(src, off, srcLen - off);
        deflater.finish();
        while (!deflater.finished()) {
            if (pos == dst.length) {
                // dst is full: it fits only if zlib has nothing left to write.
                return deflater.deflate(probe) == 0 && deflater.finished() ? pos : -1;
            }
            pos += deflater.deflate(dst, pos, dst.length - pos);
        }
        return pos;
    }

    @Override
    public void decompress(byte[] src, int srcOff, int srcLen, byte[] dst, int dstLen) throws IOException {
        inflater.reset();
        inflater.setInput(src, srcOff, srcLen);
        int pos = 0;
        try {
            while (pos < dstLen) {
                int remaining = inflater.getRemaining();
                int n = inflater.inflate(dst, pos, dstLen - pos);
                pos += n;
                if (n == 0 && inflater.getRemaining() == remaining) {
                    throw stalled(pos, dstLen);
                }
            }
        } catch (DataFormatException e) {
            throw corrupt(pos, dstLen, e);
        }
    }

    /** libdeflate when it is there and the stream is an ordinary one; else Inflater on the buffers themselves. */
    @Override
    public void decompress(ByteBuffer src, int srcOff, int srcLen, ByteBuffer dst, int dstOff, int dstLen)
            throws IOException {
        if (!libdeflateLooked) {
            libdeflate = Libdeflate.create();
            libdeflateLooked = true;
        }
        if (libdeflate != null && libdeflate.inflate(src, srcOff, srcLen, dst, dstOff, dstLen)) {
            return;
        }
        inflater.reset();
        inflater.setInput(src.slice(srcOff, srcLen));
        ByteBuffer out = dst.slice(dstOff, dstLen);
        try {
            while (out.hasRemaining()) {
                int remaining = inflater.getRemaining();
                int n = inflater.inflate(out);
                if (n == 0 && inflater.getRemaining() == remaining) {
                    throw stalled(out.position(), dstLen);
                }
            }
        } catch (DataFormatException e) {
            throw corrupt(out.position(), dstLen, e);
        }
    }

    private IOException stalled(int pos, int dstLen) {
        return new IOException("zlib: " + (inflater.finished() ? "deflate stream ended"
                : inflater.needsInput() ? "compressed data truncated" : "no progress")
                + " after " + pos + " of " + dstLen + " bytes");
    }

    private static IOException corrupt(int pos, int dstLen, DataFormatException e) {
        return new IOException("zlib: corrupt deflate stream after " + pos + " of " + dstLen
                + " bytes: " + e.getMessage(), e);
    }
}
