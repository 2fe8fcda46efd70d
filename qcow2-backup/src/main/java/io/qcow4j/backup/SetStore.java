package io.qcow4j.backup;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;

/**
 * Where a backup set's files live: a local directory ({@link #directory(Path)}) or an object
 * store (module qcow2-backup-s3 adds {@code s3://BUCKET/PREFIX}). A vendor plugs in its own
 * store by implementing this and passing it to {@link BackupSet}'s methods, or, to name it by
 * a URI scheme, by a {@link Provider} registered for {@link java.util.ServiceLoader}
 * ({@link SetStores#open}).
 *
 * <p>What the set needs of a store: small files replaced at once (the manifest); large files
 * written front to back and visible under their names only once complete ({@link Output});
 * files read at any offset ({@link ReadFile}); listing, deleting. Files are named without
 * directories.
 */
public interface SetStore {
    /** How messages name the set: a directory's path, {@code s3://bucket/prefix}. */
    String name();

    /**
     * The set's local directory when its files are local files, else null. qcow2 backups need
     * one: an incremental's backing file is read at random offsets and written in place.
     */
    Path directory();

    /** The whole of a small file (the manifest), or null when there is none. */
    byte[] readAll(String file) throws IOException;

    /** Replaces a small file at once and durably: a reader sees the old bytes or the new, never a mix. */
    void writeAtomically(String file, byte[] bytes) throws IOException;

    /** The complete files whose names end in {@code suffix}. */
    List<Entry> list(String suffix) throws IOException;

    /** Opens a file for reads at any offset; a missing file is a {@link java.nio.file.NoSuchFileException}. */
    ReadFile open(String file) throws IOException;

    /**
     * Starts a new file, written front to back: it is not seen under its name until
     * {@link Output#publish()}, and closing it unpublished leaves nothing behind.
     * {@code sizeHint} is about how large it will be (an object store picks its part size by it).
     */
    Output create(String file, long sizeHint) throws IOException;

    boolean exists(String file) throws IOException;

    /** Deletes a file; nothing when there is none. */
    void delete(String file) throws IOException;

    /**
     * Removes whatever an unfinished {@link #create} of {@code file} left behind, even from a
     * process that was killed: a partial file, an unfinished upload, and the file itself (the
     * caller knows it never completed: the manifest does not list it).
     */
    void discard(String file) throws IOException;

    /** One writer (backup, prune) at a time; released by close. */
    Closeable lock() throws IOException;

    /** A local directory as a store. */
    static SetStore directory(Path dir) {
        return new DirectoryStore(dir);
    }

    /** A complete file of the store: name, size in bytes, last modified (milliseconds since the epoch). */
    record Entry(String name, long size, long modified) {
    }

    /** A file open for reads. */
    interface ReadFile extends Closeable {
        /** Its name in the set. */
        String name();

        long size() throws IOException;

        /** Fills {@code dst} from {@code pos} until it is full or the file ends; returns the bytes read. */
        int read(long pos, ByteBuffer dst) throws IOException;
    }

    /** A file being written front to back. */
    interface Output extends Closeable {
        /** Appends {@code b} (all of it). */
        void write(ByteBuffer b) throws IOException;

        /**
         * Writes {@code b} over bytes already written at {@code pos}, within the file's first
         * {@link #HEAD} bytes (a stream's meta frame, completed at the end).
         */
        void rewrite(long pos, ByteBuffer b) throws IOException;

        /** Completes the file, durably, and makes it visible under its name. */
        void publish() throws IOException;

        /** Without {@link #publish()}: drops what was written, leaving nothing. */
        @Override
        void close() throws IOException;

        /** How far into a file {@link #rewrite} may reach. */
        int HEAD = 1 << 20;
    }

    /** Opens stores named by a URI scheme for {@link SetStores#open}. */
    interface Provider {
        /** The scheme it serves, as in {@code s3}. */
        String scheme();

        /** The store a location of that scheme names ({@code s3://bucket/prefix}). */
        SetStore open(String location) throws IOException;
    }
}
