package io.qcow4j.core.storage;

import java.io.IOException;
import java.nio.charset.Charset;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Locale;

/**
 * {@link ImageLock}'s mechanism on Linux: fcntl(2) open file description locks on a
 * descriptor of our own, as QEMU takes them. They belong to that descriptor, so closing
 * another descriptor of the file cannot drop them. Kept apart from the permission model:
 * this is the part that talks to libc (through JNA).
 */
final class OfdLocks {
    private static final int O_RDONLY = 0;
    private static final int O_CLOEXEC = 0x80000;
    private static final int F_OFD_GETLK = 36;
    private static final int F_OFD_SETLK = 37;
    private static final short F_RDLCK = 0;
    private static final short F_WRLCK = 1;
    private static final short F_UNLCK = 2;
    private static final int EINTR = 4;
    private static final int ENOENT = 2;
    private static final int EACCES = 13;
    private static final int EINVAL = 22;
    /** struct flock on 64-bit Linux: l_type, l_whence (shorts), l_start, l_len (off_t), l_pid. */
    private static final int FLOCK_SIZE = 32;
    private static final int L_START = 8;
    private static final int L_LEN = 16;

    private OfdLocks() {
    }

    /** F_OFD_SETLK unknown to this kernel (before 3.15). */
    static final class Unsupported extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Unsupported() {
            super(null, null, false, false);
        }
    }

    static boolean available() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        // O_CLOEXEC and struct flock as below: the generic 64-bit Linux ABI
        if (!os.contains("linux") || !(arch.equals("amd64") || arch.equals("x86_64") || arch.equals("aarch64")
                || arch.equals("riscv64") || arch.equals("ppc64le") || arch.equals("s390x")
                || arch.equals("loongarch64"))) {
            return false;
        }
        try {
            return Native.available();
        } catch (Throwable e) {
            return false; // no JNA, or its native part cannot load here
        }
    }

    static ImageLock.Releaser acquire(Path path, int perm, int unshared) throws IOException {
        int fd = Native.open(path);
        boolean ok = false;
        try {
            com.sun.jna.Memory fl = new com.sun.jna.Memory(FLOCK_SIZE);
            for (int bit = 0; bit < ImageLock.BITS; bit++) {
                if ((perm & (1 << bit)) != 0) {
                    lock(fd, fl, ImageLock.PERM_BASE + bit);
                }
            }
            for (int bit = 0; bit < ImageLock.BITS; bit++) {
                if ((unshared & (1 << bit)) != 0) {
                    lock(fd, fl, ImageLock.SHARED_BASE + bit);
                }
            }
            // what we need that someone does not share, then what someone holds that we do not share
            for (int bit = 0; bit < ImageLock.BITS; bit++) {
                if ((perm & (1 << bit)) != 0 && taken(fd, fl, ImageLock.SHARED_BASE + bit)) {
                    throw new ImageLock.LockedException("Failed to get \"" + ImageLock.name(bit) + "\" lock", path);
                }
            }
            for (int bit = 0; bit < ImageLock.BITS; bit++) {
                if ((unshared & (1 << bit)) != 0 && taken(fd, fl, ImageLock.PERM_BASE + bit)) {
                    throw new ImageLock.LockedException("Failed to get shared \"" + ImageLock.name(bit) + "\" lock", path);
                }
            }
            ok = true;
        } finally {
            if (!ok) {
                Native.close(fd);
            }
        }
        // closing the descriptor drops every lock taken through it
        return () -> Native.close(fd);
    }

    private static void lock(int fd, com.sun.jna.Memory fl, int offset) throws IOException {
        int errno = fcntl(fd, F_OFD_SETLK, fl, F_RDLCK, offset);
        if (errno == EINVAL) {
            throw new Unsupported();
        }
        if (errno != 0) {
            throw new IOException("Failed to lock byte " + offset);
        }
    }

    private static boolean taken(int fd, com.sun.jna.Memory fl, int offset) throws IOException {
        int errno = fcntl(fd, F_OFD_GETLK, fl, F_WRLCK, offset);
        if (errno != 0) {
            throw new IOException("Failed to get lock status of byte " + offset + " (errno " + errno + ")");
        }
        return fl.getShort(0) != F_UNLCK;
    }

    /** 0, or the errno of a failed call. */
    private static int fcntl(int fd, int cmd, com.sun.jna.Memory fl, short type, long offset) {
        fl.clear();
        fl.setShort(0, type);
        fl.setShort(2, (short) 0); // SEEK_SET
        fl.setLong(L_START, offset);
        fl.setLong(L_LEN, 1);
        while (true) {
            int rc = Native.FCNTL.invokeInt(new Object[] {fd, cmd, fl});
            if (rc != -1) {
                return 0;
            }
            int errno = com.sun.jna.Native.getLastError();
            if (errno != EINTR) {
                return errno;
            }
        }
    }

    /** libc through JNA ({@link Libc}: the process's own symbols, no library search). */
    private static final class Native {
        static final com.sun.jna.Function OPEN = Libc.function("open");
        static final com.sun.jna.Function CLOSE = Libc.function("close");
        static final com.sun.jna.Function FCNTL = Libc.function("fcntl");

        static boolean available() {
            return com.sun.jna.Native.LONG_SIZE == 8 && OPEN != null && CLOSE != null && FCNTL != null;
        }

        static int open(Path path) throws IOException {
            Charset cs = Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
            byte[] name = path.toString().getBytes(cs);
            byte[] cName = java.util.Arrays.copyOf(name, name.length + 1);
            while (true) {
                int fd = OPEN.invokeInt(new Object[] {cName, O_RDONLY | O_CLOEXEC});
                if (fd >= 0) {
                    return fd;
                }
                int errno = com.sun.jna.Native.getLastError();
                switch (errno) {
                    case EINTR:
                        continue;
                    case ENOENT:
                        throw new NoSuchFileException(path.toString(), null, "No such file or directory");
                    case EACCES:
                        throw new AccessDeniedException(path.toString(), null, "Permission denied");
                    default:
                        throw new IOException("Could not open " + path + " to lock it (errno " + errno + ")");
                }
            }
        }

        static void close(int fd) {
            CLOSE.invokeInt(new Object[] {fd});
        }
    }
}
