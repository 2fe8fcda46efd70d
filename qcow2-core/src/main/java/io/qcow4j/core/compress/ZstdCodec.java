package io.qcow4j.core.compress;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdCompressCtx;
import com.github.luben.zstd.ZstdDecompressCtx;
import com.github.luben.zstd.ZstdException;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * compression_type 1: one standard zstd frame at the default level, as QEMU's
 * {@code qcow2_zstd_compress} writes it ({@code ZSTD_compressStream2(..., ZSTD_e_end)}).
 *
 * <p>Decompression streams, like QEMU's {@code qcow2_zstd_decompress}: it stops when the cluster
 * is full, so bytes after the frame are never parsed. Also like QEMU, several frames may make up
 * the cluster, and a frame that is still unfinished when the cluster is full is corrupt.
 *
 * <p>Not thread-safe: the native contexts are reused across calls (and freed by zstd-jni's
 * cleaner when the codec becomes unreachable).
 */
public final class ZstdCodec implements ClusterCodec {

    /**
     * Largest window a compressed cluster needs: 2 MiB, the largest cluster size. A frame header
     * may claim up to 2^31 bytes of window, which the decoder would allocate before producing
     * anything; larger claims than this are rejected instead.
     */
    static final int MAX_WINDOW_LOG = 21;

    // Made on first use: creating one loads zstd-jni's native library, which an image
    // that is only inspected (qcow4j info) never needs.
    private ZstdCompressCtx cctx;
    private ZstdDecompressCtx dctx;

    private ZstdCompressCtx cctx() {
        if (cctx == null) {
            cctx = new ZstdCompressCtx().setLevel(Zstd.defaultCompressionLevel());
        }
        return cctx;
    }

    private ZstdDecompressCtx dctx() {
        if (dctx == null) {
            dctx = new ZstdDecompressCtx();
        }
        return dctx;
    }

    @Override
    public int compress(byte[] src, int srcLen, byte[] dst) {
        try {
            return cctx().compressByteArray(dst, 0, dst.length, src, 0, srcLen);
        } catch (ZstdException e) {
            if (e.getErrorCode() == Zstd.errDstSizeTooSmall()) {
                return -1;
            }
            throw e;
        }
    }

    @Override
    public void decompress(byte[] src, int srcOff, int srcLen, byte[] dst, int dstLen) throws IOException {
        stream(ByteBuffer.wrap(src, srcOff, srcLen), ByteBuffer.wrap(dst, 0, dstLen), false);
    }

    /** Between direct buffers, in place; else through arrays. */
    @Override
    public void decompress(ByteBuffer src, int srcOff, int srcLen, ByteBuffer dst, int dstOff, int dstLen)
            throws IOException {
        if (!src.isDirect() || !dst.isDirect()) {
            ClusterCodec.super.decompress(src, srcOff, srcLen, dst, dstOff, dstLen);
            return;
        }
        stream(src.slice(srcOff, srcLen), dst.slice(dstOff, dstLen), true);
    }

    private void stream(ByteBuffer in, ByteBuffer out, boolean direct) throws IOException {
        // A failed call leaves the context mid-frame; reset also drops parameters, so set them again.
        ZstdDecompressCtx dctx = dctx();
        dctx.reset();
        dctx.setLongMax(MAX_WINDOW_LOG);
        int dstLen = out.remaining();
        boolean frameDone = dstLen == 0;
        while (out.hasRemaining()) {
            int inPos = in.position();
            int outPos = out.position();
            try {
                frameDone = direct ? dctx.decompressDirectByteBufferStream(out, in)
                        : dctx.decompressByteBufferStream(out, in);
            } catch (ZstdException e) {
                throw new IOException("zstd: corrupt compressed cluster after " + out.position() + " of "
                        + dstLen + " bytes: " + e.getMessage(), e);
            }
            if (in.position() == inPos && out.position() == outPos) {
                throw new IOException("zstd: compressed data truncated after " + out.position() + " of "
                        + dstLen + " bytes");
            }
        }
        if (!frameDone) {
            throw new IOException("zstd: frame decodes to more than " + dstLen + " bytes");
        }
    }
}
