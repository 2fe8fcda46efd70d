package io.qcow4j.backup;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.BlockStatus;

/** Any read-only disk as a source without checkpoints (prune reads a point of the set through it). */
final class DeviceSource implements BackupSource {
    private final BlockDevice device;
    private final String name;

    DeviceSource(BlockDevice device, String name) {
        this.device = device;
        this.name = name;
    }

    @Override
    public String diskName() {
        return name;
    }

    @Override
    public String diskFormat() {
        return "qcow2";
    }

    @Override
    public long size() {
        return device.size();
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        device.read(offset, dst);
    }

    @Override
    public Allocation allocation(long offset, long length) throws IOException {
        BlockStatus st = device.blockStatus(offset, length);
        return new Allocation(st.offset(), st.length(), !st.allocated() ? Kind.HOLE : st.zero() ? Kind.ZERO : Kind.DATA);
    }

    @Override
    public List<Range> changedSince(String checkpoint) {
        throw new UnsupportedOperationException("no checkpoints");
    }

    @Override
    public List<Range> changedInBitmap(String bitmap) {
        throw new UnsupportedOperationException("no bitmaps");
    }

    @Override
    public String bitmapProblem(String bitmap) {
        return "the source keeps no bitmaps";
    }

    @Override
    public Checkpointing checkpoints() {
        return null;
    }

    @Override
    public void close() throws IOException {
        device.close();
    }
}
