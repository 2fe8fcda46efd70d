package io.qcow4j.backup;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.CreateOptions;

/**
 * Writes a qcow2 backup: the full holds the data; an incremental holds only the changed
 * clusters over its parent as backing file (named relative to the set's directory, so the set
 * can move), with zero clusters where the disk now reads zeros. Any file of the chain is the
 * disk at its point for {@code qemu-img convert}.
 */
final class Qcow2Writer implements TargetWriter {
    static final int CLUSTER = 64 * 1024;
    private final Qcow2Image image;

    Qcow2Writer(Path file, long size, String parentFile) throws IOException {
        CreateOptions o = CreateOptions.size(size).clusterSize(CLUSTER);
        if (parentFile != null) {
            o.backingFile(parentFile).backingFormat("qcow2");
        }
        image = Qcow2Image.create(file, o);
    }

    @Override
    public void data(long offset, ByteBuffer buf, ExtentRecord record) throws IOException {
        image.write(offset, buf.duplicate());
    }

    @Override
    public void zero(long offset, long length) throws IOException {
        image.writeZeroes(offset, length);
    }

    @Override
    public void finish(long dataBytes) throws IOException {
        image.flush();
        image.close();
    }

    @Override
    public void close() throws IOException {
        image.close();
    }
}
