package io.qcow4j.backup;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

/**
 * Passes a file on to its store while taking the manifest's CRC-32C of each
 * {@link Files2#CHUNK} bytes, so the file is never read back (an object store would have to
 * download it). The first chunk is kept until the end: {@link #rewrite} may still change it.
 */
final class SummingOutput implements SetStore.Output {
    private final SetStore.Output out;
    private final byte[] head = new byte[Files2.CHUNK];
    private final List<Long> sums = new ArrayList<>();
    private final CRC32C crc = new CRC32C();
    private long size;

    SummingOutput(SetStore.Output out) {
        this.out = out;
    }

    @Override
    public void write(ByteBuffer b) throws IOException {
        ByteBuffer view = b.duplicate();
        out.write(b);
        while (view.hasRemaining()) {
            int room = (int) (Files2.CHUNK - size % Files2.CHUNK);
            int n = Math.min(room, view.remaining());
            ByteBuffer part = view.duplicate();
            part.limit(part.position() + n);
            if (size < Files2.CHUNK) {
                part.get(head, (int) size, n);
            } else {
                crc.update(part);
            }
            view.position(view.position() + n);
            size += n;
            if (size % Files2.CHUNK == 0 && size > Files2.CHUNK) {
                sums.add(crc.getValue());
                crc.reset();
            }
        }
    }

    @Override
    public void rewrite(long pos, ByteBuffer b) throws IOException {
        if (pos < 0 || pos + b.remaining() > Math.min(size, HEAD)) {
            throw new IllegalArgumentException("rewrite of " + b.remaining() + " bytes at " + pos);
        }
        b.duplicate().get(head, (int) pos, b.remaining());
        out.rewrite(pos, b);
    }

    /** Bytes written. */
    long size() {
        return size;
    }

    /** The CRC-32C of each chunk of the file as it now stands (call when it is complete). */
    List<Long> sums() {
        List<Long> all = new ArrayList<>();
        if (size > 0) {
            CRC32C first = new CRC32C();
            first.update(head, 0, (int) Math.min(size, Files2.CHUNK));
            all.add(first.getValue());
        }
        all.addAll(sums);
        if (size > Files2.CHUNK && size % Files2.CHUNK != 0) {
            all.add(crc.getValue());
        }
        return all;
    }

    @Override
    public void publish() throws IOException {
        out.publish();
    }

    @Override
    public void close() throws IOException {
        out.close();
    }
}
