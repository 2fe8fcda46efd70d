package io.qcow4j.tools;

import com.sun.jna.Function;
import io.qcow4j.core.storage.Libc;
import java.io.Closeable;
import java.io.IOException;
import java.nio.charset.Charset;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Data and holes of a host file, as lseek(SEEK_DATA / SEEK_HOLE) reports them. QEMU's file
 * driver answers block status this way, so a hole in the file reads as a zero run to
 * qemu-img (measure and map count it as no data). Where the file system cannot tell
 * (no SEEK_DATA, no JNA), every byte counts as data, as QEMU does.
 */
final class HostExtents implements Closeable {
    private static final int O_RDONLY = 0;
    private static final int O_CLOEXEC = 0x80000;
    private static final int SEEK_DATA = 3;
    private static final int SEEK_HOLE = 4;
    private static final int ENXIO = 6;
    private static final int EINTR = 4;

    /** A run at an offset: its length and whether it holds data. */
    record Run(long length, boolean data) {
    }

    private final int fd;
    private final long fileLength;

    private HostExtents(int fd, long fileLength) {
        this.fd = fd;
        this.fileLength = fileLength;
    }

    /** The extents of {@code path}; never fails: a file that cannot be asked counts as all data. */
    static HostExtents of(Path path) {
        long length;
        try {
            length = java.nio.file.Files.size(path);
        } catch (IOException e) {
            return new HostExtents(-1, Long.MAX_VALUE);
        }
        try {
            Charset cs = Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
            byte[] name = path.toString().getBytes(cs);
            int fd = Native.OPEN.invokeInt(new Object[] {Arrays.copyOf(name, name.length + 1), O_RDONLY | O_CLOEXEC});
            return new HostExtents(fd, length);
        } catch (RuntimeException | LinkageError e) {
            return new HostExtents(-1, length);
        }
    }

    /**
     * The run of data, or of holes, starting at {@code offset}, at most {@code max} bytes
     * long. Past the end of the file is a hole.
     */
    Run at(long offset, long max) {
        if (offset >= fileLength) {
            return new Run(max, false);
        }
        if (fd < 0) {
            return new Run(Math.min(max, fileLength - offset), true);
        }
        long data = seek(offset, SEEK_DATA);
        if (data == -ENXIO) {
            return new Run(max, false); // only a hole from here to the end
        }
        if (data < 0) {
            return new Run(Math.min(max, fileLength - offset), true);
        }
        if (data > offset) {
            return new Run(Math.min(max, data - offset), false);
        }
        long hole = seek(offset, SEEK_HOLE);
        if (hole <= offset) {
            return new Run(Math.min(max, fileLength - offset), true);
        }
        return new Run(Math.min(max, hole - offset), true);
    }

    /** lseek's result, or minus errno. */
    private long seek(long offset, int whence) {
        while (true) {
            long r = Native.LSEEK.invokeLong(new Object[] {fd, offset, whence});
            if (r >= 0) {
                return r;
            }
            int errno = com.sun.jna.Native.getLastError();
            if (errno != EINTR) {
                return -errno;
            }
        }
    }

    @Override
    public void close() {
        if (fd >= 0) {
            Native.CLOSE.invokeInt(new Object[] {fd});
        }
    }

    /** libc through JNA, looked up once. */
    private static final class Native {
        static final Function OPEN = Libc.function("open");
        static final Function LSEEK = Libc.function("lseek");
        static final Function CLOSE = Libc.function("close");
    }
}
