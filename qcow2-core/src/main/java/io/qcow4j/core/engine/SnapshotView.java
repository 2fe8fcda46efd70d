package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;

/** The disk as an internal snapshot saw it: reads through the snapshot's own L1 table. */
final class SnapshotView implements BlockDevice {
    private final Qcow2Engine image;
    private final long[] l1;
    private final long l1Offset;
    private final long size;

    SnapshotView(Qcow2Engine image, long[] l1, long l1Offset, long size) {
        this.image = image;
        this.l1 = l1;
        this.l1Offset = l1Offset;
        this.size = size;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public String formatName() {
        return "qcow2";
    }

    @Override
    public Path path() {
        return null;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        synchronized (image.lock()) {
            int cs = image.geo.clusterSize();
            while (dst.hasRemaining()) {
                if (offset >= size) {
                    ImageIo.zeroFill(dst);
                    return;
                }
                int n = (int) Math.min(Math.min(dst.remaining(), cs - image.geo.offsetInCluster(offset)), size - offset);
                ByteBuffer part = dst.duplicate();
                part.limit(part.position() + n);
                long index = offset / image.geo.l2Coverage();
                long l2 = index < l1.length ? ClusterMapper.l2TableOf(l1, l1Offset, (int) index, image.storage, image.geo) : 0;
                if (l2 == 0) {
                    image.io.readWithEntry(offset, part, 0, 0, 0, 0);
                } else {
                    int idx = image.mapper.l2Index(offset);
                    image.io.readWithEntry(offset, part, image.mapper.entry(l2, idx), image.mapper.bitmap(l2, idx), l2, idx);
                }
                dst.position(dst.position() + n);
                offset += n;
            }
        }
    }

    /** As the image's own block status, through the snapshot's L1 table (and the image's backing file). */
    @Override
    public BlockStatus blockStatus(long offset, long length) throws IOException {
        synchronized (image.lock()) {
            return BlockStatusWalker.status(image, this::l2Table, size, offset, length);
        }
    }

    private long l2Table(long offset) throws IOException {
        long index = offset / image.geo.l2Coverage();
        return index < l1.length ? ClusterMapper.l2TableOf(l1, l1Offset, (int) index, image.storage, image.geo) : 0;
    }

    @Override
    public void close() {
        // the image owns everything
    }
}
