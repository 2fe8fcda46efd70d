package io.qcow4j.tools;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;

/**
 * Several source disks one after the other, as qemu-img convert concatenates them: each
 * takes its virtual size (in whole sectors), the next starts where it ends. Statuses and
 * reads never cross from one source into the next.
 */
final class ConcatDevice implements BlockDevice {
    private final List<BlockDevice> parts;
    private final long[] starts;
    private final long size;

    ConcatDevice(List<BlockDevice> parts) {
        this.parts = List.copyOf(parts);
        this.starts = new long[parts.size()];
        long pos = 0;
        for (int i = 0; i < parts.size(); i++) {
            starts[i] = pos;
            pos += Images.virtualSize(parts.get(i));
        }
        this.size = pos;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public String formatName() {
        return parts.get(0).formatName();
    }

    @Override
    public Path path() {
        return null;
    }

    private int partAt(long offset) {
        int i = parts.size() - 1;
        while (i > 0 && starts[i] > offset) {
            i--;
        }
        return i;
    }

    private long end(int i) {
        return i + 1 < starts.length ? starts[i + 1] : size;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        while (dst.hasRemaining()) {
            if (offset >= size) {
                while (dst.hasRemaining()) {
                    dst.put((byte) 0);
                }
                return;
            }
            int i = partAt(offset);
            int n = (int) Math.min(dst.remaining(), end(i) - offset);
            ByteBuffer part = dst.duplicate();
            part.limit(part.position() + n);
            parts.get(i).read(offset - starts[i], part);
            dst.position(dst.position() + n);
            offset += n;
        }
    }

    @Override
    public BlockStatus blockStatus(long offset, long length) throws IOException {
        int i = partAt(offset);
        BlockDevice part = parts.get(i);
        long local = offset - starts[i];
        long n = Math.min(length, end(i) - offset);
        if (local >= part.size()) {
            // the tail of a source that is not whole sectors: zeros
            return new BlockStatus(offset, n, false, true, false, 0, -1, false);
        }
        BlockStatus st = part.blockStatus(local, Math.min(n, part.size() - local));
        return new BlockStatus(offset, st.length(), st.allocated(), st.zero(), st.data(), st.depth(), st.hostOffset(),
                st.compressed());
    }

    @Override
    public void close() throws IOException {
        for (BlockDevice d : parts) {
            Images.closeQuietly(d);
        }
    }
}
