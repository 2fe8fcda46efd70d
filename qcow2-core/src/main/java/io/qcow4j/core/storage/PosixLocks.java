package io.qcow4j.core.storage;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.HashMap;
import java.util.Map;

/**
 * {@link ImageLock}'s fallback mechanism: Java's FileLock, POSIX record locks, which also
 * conflict with QEMU's OFD locks. They are owned by the process, so one registry entry per
 * file holds this JVM's locks through one channel and counts its holders. (A POSIX
 * limitation remains: closing any other descriptor of the file in this JVM drops them.)
 */
final class PosixLocks {
    private static final Map<Object, PosixLocks> REGISTRY = new HashMap<>();

    private final Object key;
    private final FileChannel channel;
    private final boolean canProbe;
    private final int[] count = new int[2 * ImageLock.BITS];
    private final FileLock[] locks = new FileLock[2 * ImageLock.BITS];
    private int users;

    private PosixLocks(Object key, FileChannel channel, boolean canProbe) {
        this.key = key;
        this.channel = channel;
        this.canProbe = canProbe;
    }

    static ImageLock.Releaser acquire(Path path, int perm, int unshared) throws IOException {
        synchronized (REGISTRY) {
            Object key = key(path);
            PosixLocks f = REGISTRY.get(key);
            boolean fresh = f == null;
            if (fresh) {
                f = open(key, path);
            }
            try {
                f.check(path, perm, unshared);
                f.take(perm, unshared);
            } catch (IOException | RuntimeException | Error e) {
                if (fresh) {
                    f.channel.close();
                }
                throw e;
            }
            if (fresh) {
                REGISTRY.put(key, f);
            }
            f.users++;
            PosixLocks file = f;
            return () -> file.release(perm, unshared);
        }
    }

    private static Object key(Path path) throws IOException {
        try {
            Object k = Files.readAttributes(path, BasicFileAttributes.class).fileKey();
            return k != null ? k : path.toRealPath();
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(path.toString(), null, "No such file or directory");
        }
    }

    private static PosixLocks open(Object key, Path path) throws IOException {
        try {
            // exclusive test locks need a writable channel; the file is not written
            return new PosixLocks(key, FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE), true);
        } catch (AccessDeniedException e) {
            // a file we cannot write: hold our shared locks, test nothing
            return new PosixLocks(key, FileChannel.open(path, StandardOpenOption.READ), false);
        }
    }

    private void check(Path path, int perm, int unshared) throws IOException {
        for (int bit = 0; bit < ImageLock.BITS; bit++) {
            if ((perm & (1 << bit)) != 0 && (count[ImageLock.BITS + bit] > 0 || taken(ImageLock.SHARED_BASE + bit))) {
                throw new ImageLock.LockedException("Failed to get \"" + ImageLock.name(bit) + "\" lock", path);
            }
        }
        for (int bit = 0; bit < ImageLock.BITS; bit++) {
            if ((unshared & (1 << bit)) != 0 && (count[bit] > 0 || taken(ImageLock.PERM_BASE + bit))) {
                throw new ImageLock.LockedException("Failed to get shared \"" + ImageLock.name(bit) + "\" lock", path);
            }
        }
    }

    /** Whether another process holds a lock on the byte (this JVM holds none there: checked first). */
    private boolean taken(int offset) throws IOException {
        if (!canProbe || locks[index(offset)] != null) {
            return false;
        }
        try {
            FileLock probe = channel.tryLock(offset, 1, false);
            if (probe == null) {
                return true;
            }
            probe.release();
            return false;
        } catch (OverlappingFileLockException e) {
            return true; // other code in this JVM locked the byte through its own channel
        }
    }

    private static int index(int offset) {
        return offset >= ImageLock.SHARED_BASE ? ImageLock.BITS + offset - ImageLock.SHARED_BASE : offset - ImageLock.PERM_BASE;
    }

    private void take(int perm, int unshared) throws IOException {
        int done = 0;
        try {
            for (int i = 0; i < 2 * ImageLock.BITS; i++) {
                int mask = i < ImageLock.BITS ? perm : unshared;
                if ((mask & (1 << (i % ImageLock.BITS))) == 0) {
                    continue;
                }
                if (count[i] == 0) {
                    int offset = (i < ImageLock.BITS ? ImageLock.PERM_BASE : ImageLock.SHARED_BASE) + i % ImageLock.BITS;
                    FileLock l;
                    try {
                        l = channel.tryLock(offset, 1, true);
                    } catch (OverlappingFileLockException e) {
                        l = null;
                    }
                    if (l == null) {
                        throw new IOException("Failed to lock byte " + offset);
                    }
                    locks[i] = l;
                }
                count[i]++;
                done |= 1 << i;
            }
        } catch (IOException | RuntimeException | Error e) {
            drop(done);
            throw e;
        }
    }

    private void release(int perm, int unshared) throws IOException {
        synchronized (REGISTRY) {
            drop(perm | unshared << ImageLock.BITS);
            if (--users == 0) {
                REGISTRY.remove(key);
                channel.close();
            } else {
                reassert();
            }
        }
    }

    /**
     * Takes this JVM's remaining locks again: the holder just released has closed its own
     * descriptors of the file (its storage), and closing any descriptor drops all of a
     * process's POSIX locks on the file.
     */
    private void reassert() throws IOException {
        for (int i = 0; i < 2 * ImageLock.BITS; i++) {
            if (count[i] > 0) {
                if (locks[i] != null) {
                    locks[i].release();
                }
                int offset = (i < ImageLock.BITS ? ImageLock.PERM_BASE : ImageLock.SHARED_BASE) + i % ImageLock.BITS;
                locks[i] = channel.tryLock(offset, 1, true);
            }
        }
    }

    private void drop(int indexMask) throws IOException {
        for (int i = 0; i < 2 * ImageLock.BITS; i++) {
            if ((indexMask & (1 << i)) != 0 && --count[i] == 0) {
                FileLock l = locks[i];
                locks[i] = null;
                if (l != null && l.isValid()) {
                    l.release();
                }
            }
        }
    }
}
