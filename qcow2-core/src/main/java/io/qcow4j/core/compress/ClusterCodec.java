package io.qcow4j.core.compress;

import io.qcow4j.core.api.CompressionType;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Objects;

/**
 * Compresses and decompresses one guest cluster, as QEMU does for the header field
 * {@code compression_type} (qcow2.txt "Compressed Clusters Descriptor").
 *
 * <p>An instance keeps native (de)compressor state for reuse and is <b>not thread-safe</b>:
 * use it from one thread at a time (e.g. one per worker thread).
 */
public interface ClusterCodec {

    /**
     * Compresses {@code src[0, srcLen)} into {@code dst}.
     *
     * <p>The engine passes {@code dst} of {@code cluster_size - 1} bytes, like QEMU, so that a
     * compressed cluster is always smaller than a plain one; on -1 it writes the cluster
     * uncompressed.
     *
     * <p>zstd, as in QEMU, needs a few bytes (about 8) of room beyond its final output, so it may
     * report -1 for output that would have fit within those last bytes.
     *
     * @return the compressed length, or -1 when the output would not fit in {@code dst.length} bytes
     */
    int compress(byte[] src, int srcLen, byte[] dst);

    /**
     * Decompresses exactly {@code dstLen} bytes into {@code dst[0, dstLen)}.
     *
     * <p>{@code src[srcOff, srcOff + srcLen)} is the sector-rounded span from the cluster
     * descriptor, so bytes after the end of the compressed stream are ignored: decompression
     * stops once {@code dstLen} bytes are produced. Memory use is bounded by
     * {@code dstLen}/{@code srcLen}, never by sizes read from the input.
     *
     * @throws IOException when the stream is malformed or ends before {@code dstLen} bytes
     */
    void decompress(byte[] src, int srcOff, int srcLen, byte[] dst, int dstLen) throws IOException;

    /**
     * {@link #decompress(byte[], int, int, byte[], int)} between buffers, by absolute index:
     * {@code src[srcOff, srcOff + srcLen)} into {@code dst[dstOff, dstOff + dstLen)}; positions
     * and limits are left alone. Direct buffers are read and filled in place (no copies).
     */
    default void decompress(ByteBuffer src, int srcOff, int srcLen, ByteBuffer dst, int dstOff, int dstLen)
            throws IOException {
        byte[] in = new byte[srcLen];
        src.get(srcOff, in);
        byte[] out = new byte[dstLen];
        decompress(in, 0, srcLen, out, dstLen);
        dst.put(dstOff, out);
    }

    /** A new codec for {@code type}; each call returns a fresh instance (see the thread note above). */
    static ClusterCodec of(CompressionType type) {
        switch (Objects.requireNonNull(type, "type")) {
            case ZLIB:
                return new ZlibCodec();
            case ZSTD:
                return new ZstdCodec();
            default:
                throw new IllegalArgumentException("no codec for compression type " + type);
        }
    }
}
