package io.qcow4j.core.storage;

import java.io.Closeable;
import java.nio.charset.Charset;
import java.nio.file.Path;

import com.sun.jna.Function;
import com.sun.jna.Memory;

/**
 * What the host file system says about a file: the bytes it occupies ({@code st_blocks}),
 * and where its holes are ({@code lseek} with {@code SEEK_DATA}/{@code SEEK_HOLE}), through
 * libc ({@link Libc}). QEMU asks the same of a metadata-preallocated image, whose clusters
 * are allocated but mostly never written: a hole there reads as zeros.
 * Linux only; elsewhere, or without the calls, nothing is known and nothing is claimed.
 */
public final class HostFile implements Closeable {
    private static final int AT_FDCWD = -100;
    private static final int STATX_BLOCKS = 0x400;
    private static final int STATX_SIZE = 256;
    private static final int STX_MASK_OFFSET = 0x00;
    private static final int STX_BLOCKS_OFFSET = 0x30;
    private static final int O_RDONLY = 0;
    private static final int O_CLOEXEC = 02000000;
    private static final int SEEK_DATA = 3;
    private static final int SEEK_HOLE = 4;
    private static final int ENXIO = 6;

    private final Function lseek;
    private final Function close;
    private int fd;

    private HostFile(int fd, Function lseek, Function close) {
        this.fd = fd;
        this.lseek = lseek;
        this.close = close;
    }

    private static boolean linux() {
        return System.getProperty("os.name", "").toLowerCase().contains("linux")
                && com.sun.jna.Native.LONG_SIZE == 8;
    }

    private static byte[] cName(Path file) {
        Charset fsCharset = Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
        byte[] name = file.toAbsolutePath().toString().getBytes(fsCharset);
        return java.util.Arrays.copyOf(name, name.length + 1);
    }

    /** {@code st_blocks} of the file, in 512-byte units, or -1 when that cannot be known here. */
    public static long blocks(Path file) {
        if (!linux()) {
            return -1;
        }
        try {
            Function statx = Libc.function("statx");
            Memory buf = new Memory(STATX_SIZE);
            buf.clear();
            int rc = statx.invokeInt(new Object[] {AT_FDCWD, cName(file), 0, STATX_BLOCKS, buf});
            if (rc != 0 || (buf.getInt(STX_MASK_OFFSET) & STATX_BLOCKS) == 0) {
                return -1;
            }
            return buf.getLong(STX_BLOCKS_OFFSET);
        } catch (Throwable e) {
            // no JNA native support, no statx in this libc, a sandbox: unknown
            return -1;
        }
    }

    /**
     * Sets the file's length with truncate(2) by name, as QEMU grows a raw file: no byte
     * written, so a grown file has no data block at its end. False when that is not
     * available here (the caller writes instead).
     */
    public static boolean truncate(Path file, long length) {
        if (!linux()) {
            return false;
        }
        try {
            return Libc.function("truncate").invokeInt(new Object[] {cName(file), length}) == 0;
        } catch (Throwable e) {
            return false;
        }
    }

    /** The file opened for hole queries, or null when they are not available here. */
    public static HostFile open(Path file) {
        if (!linux()) {
            return null;
        }
        try {
            Function open = Libc.function("open");
            Function lseek = Libc.function("lseek");
            Function close = Libc.function("close");
            int fd = open.invokeInt(new Object[] {cName(file), O_RDONLY | O_CLOEXEC});
            return fd < 0 ? null : new HostFile(fd, lseek, close);
        } catch (Throwable e) {
            return null;
        }
    }

    /**
     * The run of the file at {@code offset}, at most {@code max} bytes: its length when it
     * holds data, minus its length when it is a hole (past the end of the file included),
     * 0 when the file system cannot tell.
     */
    public synchronized long run(long offset, long max) {
        if (fd < 0 || max <= 0) {
            return 0;
        }
        try {
            long data = lseek.invokeLong(new Object[] {fd, offset, SEEK_DATA});
            if (data < 0) {
                return com.sun.jna.Native.getLastError() == ENXIO ? -max : 0;
            }
            if (data > offset) {
                return -Math.min(max, data - offset);
            }
            long hole = lseek.invokeLong(new Object[] {fd, offset, SEEK_HOLE});
            return hole <= offset ? 0 : Math.min(max, hole - offset);
        } catch (Throwable e) {
            return 0;
        }
    }

    @Override
    public synchronized void close() {
        if (fd >= 0) {
            try {
                close.invokeInt(new Object[] {fd});
            } catch (Throwable ignored) {
                // nothing left to do with it
            }
            fd = -1;
        }
    }
}
