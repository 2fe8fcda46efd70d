package io.qcow4j.core.storage;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;

import net.openhft.chronicle.bytes.MappedBytesStore;
import net.openhft.chronicle.bytes.MappedFile;
import net.openhft.chronicle.core.io.ReferenceOwner;

/**
 * Metadata through a Chronicle Bytes mapping of the image file; guest data through the
 * positional I/O of {@link FileStorage} (both share the page cache, so they stay coherent).
 *
 * <p>The file is mapped in 64 MiB chunks, each kept mapped from first use to close:
 * metadata of one write often lives in two chunks (a refcount block near the start, an L2
 * table far out), and remapping on every switch would cost more than the write.
 * Chronicle grows the file to whole chunks; that padding is not part of the image:
 * {@link #length()} is the true end and {@link #close()} cuts the file there. Accessors
 * never touch bytes at or past {@link #length()}: those read as zeros, and writes there
 * go through positional I/O, which fails cleanly on a full disk.
 *
 * <p>Chronicle needs JVM flags (the parent pom's {@code <chronicle.jvm.flags>});
 * {@link MappingSupport} uses this class only where they are granted, else
 * {@link ChannelMappedStorage}.
 */
public final class MappedStorage extends FileStorage {
    static {
        // Chronicle closes released mappings on a background thread by default. A file
        // descriptor of the image closed late drops every POSIX record lock this process
        // holds on the file (the fallback when OFD locks are missing), so release on close.
        if (System.getProperty("background.releaser") == null) {
            System.setProperty("background.releaser", "false");
        }
        // Chronicle's POSIX binding (jnr-ffi, which generates its native stubs at every start:
        // about 0.2 s of CPU) serves it here only for msync, and no flush needs that: flush()
        // is fdatasync, which writes the pages dirtied through the mapping as well
        net.openhft.posix.PosixAPI.useNoOpPosixApi();
    }

    private static final long CHUNK = 64L << 20;
    private static final long OVERLAP = 1L << 20;

    private final MappedFile mappedFile;
    private final ReferenceOwner owner = ReferenceOwner.temporary("qcow4j");
    private MappedBytesStore[] chunks = new MappedBytesStore[4];

    public MappedStorage(Path path, boolean readOnly) throws IOException {
        super(path, readOnly);
        try {
            this.mappedFile = MappedFile.of(path.toFile(), CHUNK, OVERLAP, readOnly);
            // the engine serialises access itself; Chronicle's owner-thread check would
            // refuse a caller that hands the image to another thread
            mappedFile.singleThreadedCheckDisabled(true);
        } catch (FileNotFoundException e) {
            channel.close();
            throw e;
        } catch (RuntimeException e) {
            channel.close();
            throw new IOException("Could not map " + path + ": " + e.getMessage(), e);
        } catch (LinkageError e) {
            // Chronicle failed to initialise (MappingSupport falls back to positional I/O)
            channel.close();
            throw e;
        }
    }

    private MappedBytesStore chunk(long offset) throws IOException {
        int index = (int) (offset / CHUNK);
        if (index >= chunks.length) {
            chunks = Arrays.copyOf(chunks, Math.max(index + 1, chunks.length * 2));
        }
        MappedBytesStore store = chunks[index];
        if (store == null) {
            try {
                // Grow the file to the chunk's end ourselves: Chronicle would do it under an
                // exclusive whole-file FileLock, which waits forever on QEMU's image locks
                // (ours included, see ImageLock) while any holder, even a qemu-io -U, is there.
                long need = (index + 1L) * CHUNK + OVERLAP;
                java.io.RandomAccessFile raf = mappedFile.raf();
                if (raf.length() < need) {
                    raf.setLength(need);
                }
                store = mappedFile.acquireByteStore(owner, (long) index * CHUNK);
                store.singleThreadedCheckDisabled(true);
            } catch (RuntimeException e) {
                throw mappingFailure(offset, e);
            }
            chunks[index] = store;
        }
        return store;
    }

    @Override
    public long readLong(long offset) throws IOException {
        if (offset < 0 || offset + 8 > length) {
            return super.readLong(offset);
        }
        try {
            return Long.reverseBytes(chunk(offset).readLong(offset));
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
            return Integer.reverseBytes(chunk(offset).readInt(offset));
        } catch (RuntimeException e) {
            throw mappingFailure(offset, e);
        }
    }

    @Override
    public void readLongs(long offset, long[] dst, int dstOff, int count) throws IOException {
        long end = offset + 8L * count;
        if (offset < 0 || end > length || offset / CHUNK != (end - 1) / CHUNK) {
            super.readLongs(offset, dst, dstOff, count);
            return;
        }
        try {
            MappedBytesStore store = chunk(offset);
            for (int i = 0; i < count; i++) {
                dst[dstOff + i] = Long.reverseBytes(store.readLong(offset + 8L * i));
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
            chunk(offset).writeLong(offset, Long.reverseBytes(value));
        } catch (RuntimeException e) {
            throw mappingFailure(offset, e);
        }
    }

    @Override
    public void writeLongs(long offset, long[] src, int srcOff, int count) throws IOException {
        checkWritable();
        long end = offset + 8L * count;
        if (offset < 0 || end > length || offset / CHUNK != (end - 1) / CHUNK) {
            super.writeLongs(offset, src, srcOff, count);
            return;
        }
        try {
            MappedBytesStore store = chunk(offset);
            for (int i = 0; i < count; i++) {
                store.writeLong(offset + 8L * i, Long.reverseBytes(src[srcOff + i]));
            }
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
            chunk(offset).writeInt(offset, Integer.reverseBytes(value));
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
            for (MappedBytesStore store : chunks) {
                if (store != null) {
                    store.release(owner);
                }
            }
            mappedFile.releaseLast();
        } finally {
            super.close();
        }
    }
}
