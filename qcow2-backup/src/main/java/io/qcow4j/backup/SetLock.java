package io.qcow4j.backup;

import java.io.Closeable;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** One writer per backup set at a time: an exclusive lock on the set's {@code .lock} file. */
final class SetLock implements Closeable {
    static final String FILE = ".lock";
    private final FileChannel ch;
    private final FileLock lock;

    private SetLock(FileChannel ch, FileLock lock) {
        this.ch = ch;
        this.lock = lock;
    }

    static SetLock acquire(Path dir) throws IOException {
        FileChannel ch = FileChannel.open(dir.resolve(FILE), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        FileLock l;
        try {
            l = ch.tryLock();
        } catch (OverlappingFileLockException e) {
            l = null;
        }
        if (l == null) {
            ch.close();
            throw new BackupException("the backup set '" + dir + "' is in use by another backup, restore or prune");
        }
        return new SetLock(ch, l);
    }

    @Override
    public void close() throws IOException {
        try {
            lock.release();
        } finally {
            ch.close();
        }
    }
}
