package io.qcow4j.backup;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.List;

/**
 * What a backup reads: a disk with its allocation and its changed blocks. An image file at
 * rest ({@link ImageSource}) keeps its checkpoints itself; a VM's NBD export reads changes
 * from a dirty-bitmap context whose checkpoints belong to whoever runs the VM
 * ({@link #checkpoints()} is then null).
 */
public interface BackupSource extends Closeable {
    /** How a run of the disk is backed, as NBD's base:allocation says it. */
    enum Kind {
        /** bytes to read */
        DATA,
        /** allocated, reads as zeros */
        ZERO,
        /** never allocated (reads as zeros): not read, and left unallocated by a restore */
        HOLE
    }

    /** A run of the disk and how it is backed. */
    record Allocation(long offset, long length, Kind kind) {
    }

    /** A run of changed blocks. */
    record Range(long start, long length) {
        public long end() {
            return start + length;
        }
    }

    /** A short name of the disk: it names the backup files and the stream's diskName. */
    String diskName();

    /** The source's format as the stream meta data records it ("qcow2", "raw"). */
    String diskFormat();

    /** Virtual size in bytes, now. */
    long size() throws IOException;

    /** Fills {@code dst} from {@code offset}. */
    void read(long offset, ByteBuffer dst) throws IOException;

    /** How the run at {@code offset} is backed: same offset, length 1 .. {@code length}. */
    Allocation allocation(long offset, long length) throws IOException;

    /** The blocks changed since checkpoint {@code name} (every later checkpoint included), sorted. */
    List<Range> changedSince(String name) throws IOException;

    /** The dirty blocks of bitmap {@code name} (someone else's: read, never changed), sorted. */
    List<Range> changedInBitmap(String name) throws IOException;

    /**
     * Why bitmap {@code name} cannot say what changed (not there, in_use, sized for another
     * disk size), or null when {@link #changedInBitmap} can be trusted to read it.
     */
    String bitmapProblem(String name) throws IOException;

    /** The source's own checkpoints, or null when they belong to someone else (an NBD export). */
    Checkpointing checkpoints();
}
