package io.qcow4j.core.storage;

import java.io.Closeable;
import java.io.IOException;
import java.nio.channels.FileLock;
import java.nio.file.Path;
import java.util.Locale;

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
 * descriptor of our own, through JNA ({@link OfdLocks}). They belong to that descriptor, so closing some other
 * descriptor of the same file (a probe, Chronicle's mapping) cannot drop them, and two
 * opens within one JVM see each other exactly as two processes do. Elsewhere, or when JNA
 * cannot be used, Java's {@link FileLock} (POSIX record locks, which also conflict with
 * QEMU's OFD locks) with a JVM-wide registry per file ({@link PosixLocks}): those locks belong to the process,
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
    static final int BITS = 4;
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
                r = OfdLocks.acquire(path, perm, unshared);
            } catch (OfdLocks.Unsupported e) {
                // a kernel before 3.15: as QEMU, fall back to POSIX locks
                mechanism = Mechanism.POSIX;
                m = Mechanism.POSIX;
            }
        }
        if (m == Mechanism.POSIX) {
            r = PosixLocks.acquire(path, perm, unshared);
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
            default -> OfdLocks.available() ? Mechanism.OFD : Mechanism.POSIX;
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

    /** What a mechanism hands back: drops the locks it took for one holder. */
    interface Releaser {
        void release() throws IOException;
    }

    /** QEMU's name of permission bit {@code bit}, as its lock failures say it. */
    static String name(int bit) {
        return NAMES[bit];
    }
}
