package io.qcow4j.backup;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a sparse stream (see {@link SparseStream}) as virtnbdbackup does: its meta frame
 * (the data size is patched in at the end, into room left for it), data and zero frames in
 * guest order, stop, and with compression the trailer of stored sizes. The file is written
 * front to back, the meta frame rewritten at the end ({@link SetStore.Output#rewrite}).
 */
final class StreamWriter implements TargetWriter {
    private static final int LZ4_LEVEL = 2; // virtnbdbackup's default; lz4 below 3 is its fast mode
    private final SetStore.Output out;
    private final Map<String, Object> meta;
    private final boolean compressed;
    private final List<Long> storedSizes = new ArrayList<>();
    private final int metaRoom;
    private long pos;

    StreamWriter(SetStore.Output out, Map<String, Object> meta, boolean compressed) throws IOException {
        this.out = out;
        this.meta = new LinkedHashMap<>(meta);
        this.compressed = compressed;
        this.meta.put("dataSize", 0L);
        this.meta.put("compressed", compressed ? (Object) LZ4_LEVEL : Boolean.FALSE);
        this.meta.put("compressionMethod", "lz4");
        this.meta.put("streamVersion", 2);
        byte[] json = metaJson();
        metaRoom = json.length + 24; // room for any data size
        write(SparseStream.frame(SparseStream.META, 0, metaRoom));
        write(padded(json));
        write(SparseStream.TERM);
    }

    /** Creates the stream's meta data as virtnbdbackup names it. */
    static Map<String, Object> meta(long virtualSize, String disk, String format, String checkpoint,
                                    String parentCheckpoint, boolean incremental, String date) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("virtualSize", virtualSize);
        m.put("dataSize", 0L);
        m.put("date", date);
        m.put("diskName", disk);
        m.put("diskFormat", format);
        m.put("checkpointName", checkpoint == null ? "" : checkpoint);
        m.put("compressed", false);
        m.put("compressionMethod", "lz4");
        m.put("parentCheckpoint", parentCheckpoint == null ? Boolean.FALSE : parentCheckpoint);
        m.put("incremental", incremental);
        m.put("streamVersion", 2);
        return m;
    }

    private byte[] metaJson() throws IOException {
        return Manifest.JSON.writeValueAsBytes(meta);
    }

    private byte[] padded(byte[] json) throws IOException {
        if (json.length > metaRoom) {
            throw new IOException("stream meta data outgrew its room");
        }
        byte[] out = new byte[metaRoom];
        System.arraycopy(json, 0, out, 0, json.length);
        java.util.Arrays.fill(out, json.length, metaRoom, (byte) ' ');
        return out;
    }

    @Override
    public void data(long offset, ByteBuffer buf, ExtentRecord record) throws IOException {
        int len = buf.remaining();
        if (len > SparseStream.MAX_DATA_FRAME) {
            throw new IllegalArgumentException("data frame of " + len + " bytes");
        }
        write(SparseStream.frame(SparseStream.DATA, offset, len));
        record.pos = pos;
        if (compressed) {
            byte[] plain = new byte[len];
            buf.duplicate().get(plain);
            byte[] lz = Lz4Frames.compress(plain, 0, len);
            write(lz);
            record.stored = (long) lz.length;
            storedSizes.add((long) lz.length);
        } else {
            record.stored = (long) len;
            writeBuffer(buf.duplicate());
        }
        write(SparseStream.TERM);
    }

    @Override
    public void zero(long offset, long length) throws IOException {
        write(SparseStream.frame(SparseStream.ZERO, offset, length));
    }

    @Override
    public void finish(long dataBytes) throws IOException {
        write(SparseStream.frame(SparseStream.STOP, 0, 0));
        if (compressed) {
            byte[] trailer = Manifest.JSON.writer().without(com.fasterxml.jackson.databind.SerializationFeature.INDENT_OUTPUT)
                    .writeValueAsBytes(storedSizes);
            write(trailer);
            write(SparseStream.TERM);
            write(SparseStream.frame(SparseStream.COMP, 0, trailer.length));
        }
        meta.put("dataSize", dataBytes);
        out.rewrite(SparseStream.FRAME_LEN, ByteBuffer.wrap(padded(metaJson())));
    }

    private void write(byte[] b) throws IOException {
        writeBuffer(ByteBuffer.wrap(b));
    }

    private void writeBuffer(ByteBuffer b) throws IOException {
        pos += b.remaining();
        out.write(b);
    }

    @Override
    public void close() {
        // the output is its owner's to publish or drop
    }

    static String json(Object o) throws IOException {
        return new String(Manifest.JSON.writeValueAsBytes(o), StandardCharsets.UTF_8);
    }
}
