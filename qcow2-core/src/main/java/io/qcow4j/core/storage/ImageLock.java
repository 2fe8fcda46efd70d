package io.qcow4j.core.storage;

import java.io.Closeable;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.Charset;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;

/**
 * QEMU's image locking ({@code file-posix.c}), so that qcow4j and QEMU never write an
 * image under each other: a running VM keeps its disk locked, qemu-img refuses to touch
 * it, and so does qcow4j; while qcow4j writes an image, qemu-img and qemu-io refuse it.
 *
 * <p>QEMU expresses what an opener does and tolerates as permissions ({@link #CONSISTENT_READ},
 * {@link #WRITE}, {@link #WRITE_UNCHANGED}, {@link #RESIZE}) and publishes them as shared
 * (read) byte-range locks on the image file: byte {@code 100 + bit} for each permission it
 * holds, byte {@code 200 + bit} for each permission it does not share with others. An open
 * fails when another holder has a permission we do not share (we test byte 100 + bit:
 * {@code Failed to get shared "write" lock}) or we need a permission another holder does
 * not share (byte 200 + bit: {@code Failed to get "write" lock}). What qemu-img 7.2 takes,
 * as observed in {@code /proc/locks}:
 * <pre>
 *                        holds (100+)              does not share (200+)
 * qcow2 read-write       100 101 103 (CR, W, RS)   201 203 (W, RS)
 * qcow2 read-only        100         (CR)          201 203 (W, RS)
 * qemu-img info          -                         201 203
 * -U (force-share)       qemu-io 100, qemu-img info nothing
 * external data file     like its image            203 only (RS)
 * raw image / backing    100 [101]                 -
 * qemu-img create        101 103                   203
 * </pre>
 *
 * <p>Mechanism: on Linux, open file description locks ({@code F_OFD_SETLK}, as QEMU) on a
 * descriptor of our own, through JNA. They belong to that descriptor, so closing some other
 * descriptor of the same file (a probe, Chronicle's mapping) cannot drop them, and two
 * opens within one JVM see each other exactly as two processes do. Elsewhere, or when JNA
 * cannot be used, Java's {@link FileLock} (POSIX record locks, which also conflict with
 * QEMU's OFD locks) with a JVM-wide registry per file: those locks belong to the process,
 * so the registry counts this JVM's holders and takes each lock byte once.
 * {@code -Dqcow4j.lock=ofd|posix} forces one mechanism (tests); {@code off} takes none.
 */
public final class ImageLock implements Closeable {
    /** Permission bits, QEMU's order: the lock byte is the base plus the bit's index. */
    public static final int CONSISTENT_READ = 1;
    public static final int WRITE = 2;
    public static final int WRITE_UNCHANGED = 4;
    public static final int RESIZE = 8;
    public static final int ALL = CONSISTENT_READ | WRITE | WRITE_UNCHANGED | RESIZE;
    /** Byte {@code PERM_BASE + i} is locked while permission bit i is held. */
    public static final int PERM_BASE = 100;
    /** Byte {@code SHARED_BASE + i} is locked while permission bit i is not shared. */
    public static final int SHARED_BASE = 200;
    private static final int BITS = 4;
    private static final String[] NAMES = {"consistent read", "write", "write unchanged", "resize"};

    private final Path path;
    private final int perm;
    private final int unshared;
    private Releaser releaser;

    private ImageLock(Path path, int perm, int unshared, Releaser releaser) {
        this.path = path;
        this.perm = perm;
        this.unshared = unshared;
        this.releaser = releaser;
    }

    /** A qcow2 image, as qemu-img/qemu-io open it (read-only: also each backing qcow2 image). */
    public static ImageLock qcow2(Path path, boolean readOnly) throws IOException {
        return readOnly
                ? acquire(path, CONSISTENT_READ, ALL & ~(WRITE | RESIZE))
                : acquire(path, CONSISTENT_READ | WRITE | RESIZE, ALL & ~(WRITE | RESIZE));
    }

    /** The external data file of a qcow2 image: the image's permissions; only resizing is not shared. */
    public static ImageLock dataFile(Path path, boolean readOnly) throws IOException {
        return acquire(path, readOnly ? CONSISTENT_READ : CONSISTENT_READ | WRITE | RESIZE, ALL & ~RESIZE);
    }

    /** A raw image (a top image, or a backing file): shares everything, as qemu-io's raw driver. */
    public static ImageLock raw(Path path, boolean readOnly) throws IOException {
        return acquire(path, readOnly ? CONSISTENT_READ : CONSISTENT_READ | WRITE, ALL);
    }

    /** An existing file about to be emptied and rewritten by create, as qemu-img create locks it. */
    public static ImageLock create(Path path) throws IOException {
        return acquire(path, WRITE | RESIZE, ALL & ~RESIZE);
    }

    /**
     * Takes the locks of {@code perm} (held) and of the permissions missing from
     * {@code shared}, or fails with QEMU's message if another holder conflicts.
     *
     * @throws LockedException the image is in use in a way these permissions conflict with
     */
    public static ImageLock acquire(Path path, int perm, int shared) throws IOException {
        if ((perm & ~ALL) != 0 || (shared & ~ALL) != 0) {
            throw new IllegalArgumentException("unknown permission bits");
        }
        int unshared = ALL & ~shared;
        Mechanism m = mechanism();
        Releaser r = null;
        if (m == Mechanism.OFD) {
            try {
                r = Ofd.acquire(path, perm, unshared);
            } catch (OfdUnsupported e) {
                // a kernel before 3.15: as QEMU, fall back to POSIX locks
                mechanism = Mechanism.POSIX;
                m = Mechanism.POSIX;
            }
        }
        if (m == Mechanism.POSIX) {
            r = Posix.acquire(path, perm, unshared);
        } else if (m == Mechanism.OFF) {
            r = () -> { };
        }
        return new ImageLock(path, perm, unshared, r);
    }

    public Path path() {
        return path;
    }

    /** The permissions held (lock bytes {@code 100 + bit}). */
    public int permissions() {
        return perm;
    }

    /** The permissions not shared with others (lock bytes {@code 200 + bit}). */
    public int unshared() {
        return unshared;
    }

    /** Releases the locks; idempotent. */
    @Override
    public synchronized void close() throws IOException {
        Releaser r = releaser;
        releaser = null;
        if (r != null) {
            r.release();
        }
    }

    /** The image is in use: QEMU's two lines, "Failed to get ... lock" and the hint naming the file. */
    public static final class LockedException extends IOException {
        private static final long serialVersionUID = 1L;

        LockedException(String what, Path path) {
            super(what + "\nIs another process using the image [" + path + "]?");
        }

        /** The same failure with context in front ("Could not open backing file: ..."). */
        public LockedException(String prefix, LockedException cause) {
            super(prefix + cause.getMessage(), cause);
        }
    }

    // ------------------------------------------------------------ mechanism

    private enum Mechanism { OFD, POSIX, OFF }

    private static volatile Mechanism mechanism;

    private static Mechanism mechanism() {
        Mechanism m = mechanism;
        if (m == null) {
            m = choose(System.getProperty("qcow4j.lock", "auto"));
            mechanism = m;
        }
        return m;
    }

    private static Mechanism choose(String name) {
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "off" -> Mechanism.OFF;
            case "posix" -> Mechanism.POSIX;
            default -> Ofd.available() ? Mechanism.OFD : Mechanism.POSIX;
        };
    }

    /** Tests: switches the mechanism ("ofd", "posix", "off"; null: as the system property says). */
    static void useMechanism(String name) {
        mechanism = name == null ? null : choose(name);
    }

    /** "ofd", "posix" or "off": what locks are taken with here. */
    public static String mechanismName() {
        return mechanism().name().toLowerCase(Locale.ROOT);
    }

    /** F_OFD_SETLK unknown to this kernel. */
    private static final class OfdUnsupported extends RuntimeException {
        private static final long serialVersionUID = 1L;

        OfdUnsupported() {
            super(null, null, false, false);
        }
    }

    private interface Releaser {
        void release() throws IOException;
    }

    private static String name(int bit) {
        return NAMES[bit];
    }

    // ------------------------------------------------------------ OFD locks (Linux)

    /** fcntl(2) open file description locks on a descriptor of our own, as QEMU takes them. */
    private static final class Ofd {
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

        private Ofd() {
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

        static Releaser acquire(Path path, int perm, int unshared) throws IOException {
            int fd = Native.open(path);
            boolean ok = false;
            try {
                com.sun.jna.Memory fl = new com.sun.jna.Memory(FLOCK_SIZE);
                for (int bit = 0; bit < BITS; bit++) {
                    if ((perm & (1 << bit)) != 0) {
                        lock(fd, fl, PERM_BASE + bit);
                    }
                }
                for (int bit = 0; bit < BITS; bit++) {
                    if ((unshared & (1 << bit)) != 0) {
                        lock(fd, fl, SHARED_BASE + bit);
                    }
                }
                // what we need that someone does not share, then what someone holds that we do not share
                for (int bit = 0; bit < BITS; bit++) {
                    if ((perm & (1 << bit)) != 0 && taken(fd, fl, SHARED_BASE + bit)) {
                        throw new LockedException("Failed to get \"" + name(bit) + "\" lock", path);
                    }
                }
                for (int bit = 0; bit < BITS; bit++) {
                    if ((unshared & (1 << bit)) != 0 && taken(fd, fl, PERM_BASE + bit)) {
                        throw new LockedException("Failed to get shared \"" + name(bit) + "\" lock", path);
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
                throw new OfdUnsupported();
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

    // ------------------------------------------------------------ POSIX locks (fallback)

    /**
     * Java's FileLock: POSIX record locks, owned by the process, so one registry entry per
     * file holds this JVM's locks through one channel and counts its holders. (A POSIX
     * limitation remains: closing any other descriptor of the file in this JVM drops them.)
     */
    private static final class Posix {
        private static final Map<Object, Posix> REGISTRY = new HashMap<>();

        private final Object key;
        private final FileChannel channel;
        private final boolean canProbe;
        private final int[] count = new int[2 * BITS];
        private final FileLock[] locks = new FileLock[2 * BITS];
        private int users;

        private Posix(Object key, FileChannel channel, boolean canProbe) {
            this.key = key;
            this.channel = channel;
            this.canProbe = canProbe;
        }

        static Releaser acquire(Path path, int perm, int unshared) throws IOException {
            synchronized (REGISTRY) {
                Object key = key(path);
                Posix f = REGISTRY.get(key);
                boolean fresh = f == null;
                if (fresh) {
                    f = open(key, path);
                }
                try {
                    f.check(path, perm, unshared);
                    f.take(perm, unshared);
                } catch (IOException | RuntimeException e) {
                    if (fresh) {
                        f.channel.close();
                    }
                    throw e;
                }
                if (fresh) {
                    REGISTRY.put(key, f);
                }
                f.users++;
                Posix file = f;
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

        private static Posix open(Object key, Path path) throws IOException {
            try {
                // exclusive test locks need a writable channel; the file is not written
                return new Posix(key, FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE), true);
            } catch (AccessDeniedException e) {
                // a file we cannot write: hold our shared locks, test nothing
                return new Posix(key, FileChannel.open(path, StandardOpenOption.READ), false);
            }
        }

        private void check(Path path, int perm, int unshared) throws IOException {
            for (int bit = 0; bit < BITS; bit++) {
                if ((perm & (1 << bit)) != 0 && (count[BITS + bit] > 0 || taken(SHARED_BASE + bit))) {
                    throw new LockedException("Failed to get \"" + name(bit) + "\" lock", path);
                }
            }
            for (int bit = 0; bit < BITS; bit++) {
                if ((unshared & (1 << bit)) != 0 && (count[bit] > 0 || taken(PERM_BASE + bit))) {
                    throw new LockedException("Failed to get shared \"" + name(bit) + "\" lock", path);
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
            return offset >= SHARED_BASE ? BITS + offset - SHARED_BASE : offset - PERM_BASE;
        }

        private void take(int perm, int unshared) throws IOException {
            int done = 0;
            try {
                for (int i = 0; i < 2 * BITS; i++) {
                    int mask = i < BITS ? perm : unshared;
                    if ((mask & (1 << (i % BITS))) == 0) {
                        continue;
                    }
                    if (count[i] == 0) {
                        int offset = (i < BITS ? PERM_BASE : SHARED_BASE) + i % BITS;
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
            } catch (IOException e) {
                drop(done);
                throw e;
            }
        }

        private void release(int perm, int unshared) throws IOException {
            synchronized (REGISTRY) {
                drop(perm | unshared << BITS);
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
            for (int i = 0; i < 2 * BITS; i++) {
                if (count[i] > 0) {
                    if (locks[i] != null) {
                        locks[i].release();
                    }
                    int offset = (i < BITS ? PERM_BASE : SHARED_BASE) + i % BITS;
                    locks[i] = channel.tryLock(offset, 1, true);
                }
            }
        }

        private void drop(int indexMask) throws IOException {
            for (int i = 0; i < 2 * BITS; i++) {
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
}
