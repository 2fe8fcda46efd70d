package io.qcow4j.core;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.Path;
import java.util.List;

/**
 * A qcow2 image: the public face of the engine. Not thread-safe beyond its own lock:
 * every public method is synchronized.
 *
 * <pre>{@code
 * try (Qcow2Image img = Qcow2Image.create(path, CreateOptions.size(1L << 30))) {
 *     img.write(0, ByteBuffer.wrap(data));
 * }
 * }</pre>
 */
public final class Qcow2Image implements BlockDevice {
    // filled in by the engine
    public static Qcow2Image create(Path path, CreateOptions options) throws IOException {
        throw new UnsupportedOperationException("not yet");
    }

    public static Qcow2Image open(Path path, OpenOptions options) throws IOException {
        throw new UnsupportedOperationException("not yet");
    }

    @Override public long size() { throw new UnsupportedOperationException(); }
    @Override public String formatName() { return "qcow2"; }
    @Override public Path path() { throw new UnsupportedOperationException(); }
    @Override public void read(long offset, ByteBuffer dst) throws IOException { throw new UnsupportedOperationException(); }
    public void write(long offset, ByteBuffer src) throws IOException { throw new UnsupportedOperationException(); }
    public void writeZeroes(long offset, long length) throws IOException { throw new UnsupportedOperationException(); }
    public void discard(long offset, long length) throws IOException { throw new UnsupportedOperationException(); }
    /** Writes one whole cluster compressed (convert -c); offset cluster-aligned, src one cluster (or the tail). */
    public void writeCompressed(long offset, ByteBuffer src) throws IOException { throw new UnsupportedOperationException(); }
    @Override public BlockStatus blockStatus(long offset, long length) throws IOException { throw new UnsupportedOperationException(); }
    public void flush() throws IOException { throw new UnsupportedOperationException(); }
    public void resize(long newSize) throws IOException { throw new UnsupportedOperationException(); }
    @Override public void close() throws IOException { throw new UnsupportedOperationException(); }
    public SeekableByteChannel channel() { throw new UnsupportedOperationException(); }
    public boolean isReadOnly() { throw new UnsupportedOperationException(); }
    public int version() { throw new UnsupportedOperationException(); }
    public int clusterSize() { throw new UnsupportedOperationException(); }
    public int refcountBits() { throw new UnsupportedOperationException(); }
    public CompressionType compressionType() { throw new UnsupportedOperationException(); }
    public boolean lazyRefcounts() { throw new UnsupportedOperationException(); }
    public boolean isCorrupt() { throw new UnsupportedOperationException(); }
    public boolean isDirty() { throw new UnsupportedOperationException(); }
    public boolean extendedL2() { throw new UnsupportedOperationException(); }
    /** Data file name as recorded in the image, or null. */
    public String dataFile() { throw new UnsupportedOperationException(); }
    public boolean dataFileRaw() { throw new UnsupportedOperationException(); }
    /** Backing file name as recorded in the image, or null. */
    public String backingFile() { throw new UnsupportedOperationException(); }
    /** Backing format from the header extension, or null. */
    public String backingFormat() { throw new UnsupportedOperationException(); }
    /** The opened backing device, or null. */
    public BlockDevice backing() { throw new UnsupportedOperationException(); }
    public List<Snapshot> snapshots() { throw new UnsupportedOperationException(); }
    /** Read-only view of an internal snapshot's disk, by id or name. */
    public BlockDevice snapshot(String idOrName) throws IOException { throw new UnsupportedOperationException(); }
}
