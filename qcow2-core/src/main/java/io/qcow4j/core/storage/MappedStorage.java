package io.qcow4j.core.storage;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.file.Path;

import net.openhft.chronicle.bytes.MappedBytes;
import net.openhft.chronicle.bytes.MappedFile;

/**
 * Metadata through a Chronicle Bytes mapping of the image file; guest data through the
 * positional I/O of {@link FileStorage} (both share the page cache, so they stay coherent).
 *
 * <p>Chronicle maps in chunks and grows the file to whole chunks; the padding is not part
 * of the image: {@link #length()} is the true end and {@link #close()} cuts the file there.
 * Accessors never touch bytes at or past {@link #length()}: those read as zeros, and
 * writes there must be {@link #reserve reserved} first.
 */
public final class MappedStorage extends FileStorage {
    /** Mapping chunk: large enough that metadata of most images lives in one chunk. */
    private static final long CHUNK = 64L << 20;
    private static final long OVERLAP = 1L << 20;

    private final MappedFile mappedFile;
    private final MappedBytes bytes;

    public MappedStorage(Path path, boolean readOnly) throws IOException {
        super(path, readOnly);
        MappedFile mf = null;
        try {
            mf = MappedFile.of(path.toFile(), CHUNK, OVERLAP, readOnly);
            this.mappedFile = mf;
            this.bytes = MappedBytes.mappedBytes(mf);
            // the engine serialises access itself; Chronicle's owner-thread check would
            // refuse a caller that hands the image to another thread
            bytes.singleThreadedCheckDisabled(true);
            mf.singleThreadedCheckDisabled(true);
        } catch (FileNotFoundException e) {
            channel.close();
            throw e;
        } catch (RuntimeException e) {
            if (mf != null) {
                mf.releaseLast();
            }
            channel.close();
            throw new IOException("Could not map " + path + ": " + e.getMessage(), e);
        }
    }

    @Override
    public long readLong(long offset) throws IOException {
        if (offset < 0 || offset + 8 > length) {
            return super.readLong(offset);
        }
        try {
            return Long.reverseBytes(bytes.readLong(offset));
        } catch (RuntimeException e) {
            throw mappingFailure(offset, e);
        }
    }

    @Override
    public int readInt(long offset) throws IOException {
        if (offset < 0 || offset + 4 > length) {
            return super.readInt(offset);
        }
        try {
            return Integer.reverseBytes(bytes.readInt(offset));
        } catch (RuntimeException e) {
            throw mappingFailure(offset, e);
        }
    }

    @Override
    public void readLongs(long offset, long[] dst, int dstOff, int count) throws IOException {
        if (offset < 0 || offset + 8L * count > length) {
            super.readLongs(offset, dst, dstOff, count);
            return;
        }
        try {
            for (int i = 0; i < count; i++) {
                dst[dstOff + i] = Long.reverseBytes(bytes.readLong(offset + 8L * i));
            }
        } catch (RuntimeException e) {
            throw mappingFailure(offset, e);
        }
    }

    @Override
    public void writeLong(long offset, long value) throws IOException {
        checkWritable();
        if (offset < 0 || offset + 8 > length) {
            // beyond the reserved end: an ordinary write extends the file safely
            super.writeLong(offset, value);
            return;
        }
        try {
            bytes.writeLong(offset, Long.reverseBytes(value));
        } catch (RuntimeException e) {
            throw mappingFailure(offset, e);
        }
    }

    @Override
    public void writeInt(long offset, int value) throws IOException {
        checkWritable();
        if (offset < 0 || offset + 4 > length) {
            super.writeInt(offset, value);
            return;
        }
        try {
            bytes.writeInt(offset, Integer.reverseBytes(value));
        } catch (RuntimeException e) {
            throw mappingFailure(offset, e);
        }
    }

    private static IOException mappingFailure(long offset, RuntimeException e) {
        return new IOException("I/O error at offset 0x" + Long.toHexString(offset) + ": " + e.getMessage(), e);
    }

    @Override
    public void close() throws IOException {
        try {
            bytes.releaseLast();
            mappedFile.releaseLast();
        } finally {
            super.close();
        }
    }
}
