package io.qcow4j.nbd.server;

import java.io.Closeable;
import java.nio.charset.Charset;
import java.nio.file.Path;

import com.sun.jna.Function;
import com.sun.jna.Memory;
import com.sun.jna.Native;

import io.qcow4j.core.storage.Libc;

/**
 * Where a host file has data and where holes, through {@code lseek(SEEK_DATA/SEEK_HOLE)}
 * (Linux, through JNA: Java has no such call), and how much of it is allocated
 * ({@code statx}'s block count). qemu asks the same of the file under a raw layer, and under
 * a qcow2 layer that looks metadata-preallocated, and reports the holes as zeros.
 * A file this cannot ask is all data, which is what qemu assumes too when it cannot tell.
 */
final class HostFile implements Closeable {
    private static final int O_RDONLY = 0;
    private static final int O_CLOEXEC = 0x80000;
    private static final int SEEK_DATA = 3;
    private static final int SEEK_HOLE = 4;
    private static final int ENXIO = 6;
    private static final int AT_FDCWD = -100;
    private static final int STATX_BLOCKS = 0x400;
    private static final int STATX_SIZE = 256;
    private static final int STX_BLOCKS_OFFSET = 0x30;

    private final int fd;

    private HostFile(int fd) {
        this.fd = fd;
    }

    /** A result of {@link #probe}: the first {@code length} bytes are a hole, or data. */
    record Piece(long length, boolean hole) {
    }

    /** Opens {@code path} for lseek, or null when this platform cannot (the file then counts as all data). */
    static HostFile open(Path path) {
        if (!isLinux()) {
            return null;
        }
        try {
            int fd = Libc.function("open").invokeInt(new Object[] {cString(path), O_RDONLY | O_CLOEXEC});
            return fd < 0 ? null : new HostFile(fd);
        } catch (Throwable e) {
            return null; // no JNA here: all data
        }
    }

    /** Bytes the file occupies on disk (st_blocks * 512), or -1 when unknown. */
    static long allocatedBytes(Path path) {
        if (!isLinux()) {
            return -1;
        }
        try {
            Memory buf = new Memory(STATX_SIZE);
            buf.clear();
            int rc = Libc.function("statx").invokeInt(new Object[] {AT_FDCWD, cString(path), 0, STATX_BLOCKS, buf});
            if (rc != 0 || (buf.getInt(0) & STATX_BLOCKS) == 0) {
                return -1;
            }
            return buf.getLong(STX_BLOCKS_OFFSET) * 512;
        } catch (Throwable e) {
            return -1;
        }
    }

    /** Whether the host range {@code [offset, offset+length)} starts with a hole, and for how long that holds. */
    Piece probe(long offset, long length) {
        long data = seek(offset, SEEK_DATA);
        if (data == -2) {
            return new Piece(length, true); // no data from here to the end of the file
        }
        if (data < 0) {
            return new Piece(length, false);
        }
        if (data > offset) {
            return new Piece(Math.min(length, data - offset), true);
        }
        long hole = seek(offset, SEEK_HOLE);
        if (hole <= offset) {
            return new Piece(length, false);
        }
        return new Piece(Math.min(length, hole - offset), false);
    }

    /** lseek's answer, -2 for ENXIO (no data after the offset), -1 for another failure. */
    private long seek(long offset, int whence) {
        try {
            long r = Libc.function("lseek").invokeLong(new Object[] {fd, offset, whence});
            if (r >= 0) {
                return r;
            }
            return Native.getLastError() == ENXIO ? -2 : -1;
        } catch (Throwable e) {
            return -1;
        }
    }

    @Override
    public void close() {
        try {
            Function close = Libc.function("close");
            close.invokeInt(new Object[] {fd});
        } catch (Throwable e) {
            // nothing to release then
        }
    }

    private static boolean isLinux() {
        return System.getProperty("os.name", "").toLowerCase().contains("linux");
    }

    private static byte[] cString(Path path) {
        Charset cs = Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
        byte[] name = path.toAbsolutePath().toString().getBytes(cs);
        byte[] c = new byte[name.length + 1];
        System.arraycopy(name, 0, c, 0, name.length);
        return c;
    }
}
