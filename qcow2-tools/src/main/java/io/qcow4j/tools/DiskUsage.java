package io.qcow4j.tools;

import com.sun.jna.Function;
import com.sun.jna.Memory;
import io.qcow4j.core.storage.Libc;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.Charset;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Bytes a file occupies on disk ({@code st_blocks * 512}), what qemu-img calls "disk
 * size" / "actual-size". Java's file attributes have no block count, so:
 * <ol>
 * <li>Linux {@code statx(2)} through JNA (already on the class path: Chronicle's
 *     {@code net.openhft:posix} depends on it). statx's struct has one layout on every
 *     architecture, unlike {@code struct stat}, so no per-platform offsets are needed.
 *     ({@code posix}'s own {@code PosixAPI.du()} just runs {@code du}.)</li>
 * <li>failing that, {@code stat -c %b} (coreutils, also in 512-byte units);</li>
 * <li>failing that, the file's length.</li>
 * </ol>
 */
final class DiskUsage {
    private static final int AT_FDCWD = -100;
    private static final int STATX_BLOCKS = 0x400;
    private static final int STATX_SIZE = 256;
    private static final int STX_MASK_OFFSET = 0x00;
    private static final int STX_BLOCKS_OFFSET = 0x30;

    private DiskUsage() {
    }

    static long allocatedBytes(Path file) throws IOException {
        long blocks = statxBlocks(file);
        if (blocks < 0) {
            blocks = statCommandBlocks(file);
        }
        return blocks >= 0 ? blocks * 512 : Files.size(file);
    }

    /** st_blocks via statx(2), or -1 when that is not available here. */
    static long statxBlocks(Path file) {
        if (!System.getProperty("os.name", "").toLowerCase().contains("linux")) {
            return -1;
        }
        try {
            // the process's own symbols: libc is there, and no library search runs (JNA's
            // search for "c" starts /sbin/ldconfig -p, a whole process)
            Function statx = Libc.function("statx");
            Charset fsCharset = Charset.forName(System.getProperty("sun.jnu.encoding", "UTF-8"));
            byte[] name = file.toAbsolutePath().toString().getBytes(fsCharset);
            byte[] cName = new byte[name.length + 1];
            System.arraycopy(name, 0, cName, 0, name.length);
            Memory buf = new Memory(STATX_SIZE);
            buf.clear();
            int rc = statx.invokeInt(new Object[] {AT_FDCWD, cName, 0, STATX_BLOCKS, buf});
            if (rc != 0 || (buf.getInt(STX_MASK_OFFSET) & STATX_BLOCKS) == 0) {
                return -1;
            }
            return buf.getLong(STX_BLOCKS_OFFSET);
        } catch (Throwable e) {
            // no JNA native support, no statx in this libc, a sandbox: use the next way
            return -1;
        }
    }

    /** st_blocks from coreutils' stat, or -1. */
    static long statCommandBlocks(Path file) {
        try {
            Process p = new ProcessBuilder("stat", "-c", "%b", file.toAbsolutePath().toString())
                    .redirectError(ProcessBuilder.Redirect.DISCARD).start();
            String out;
            try (InputStream in = p.getInputStream()) {
                out = new String(in.readAllBytes(), StandardCharsets.US_ASCII).strip();
            }
            if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
                p.destroy();
                return -1;
            }
            return Long.parseLong(out);
        } catch (IOException | NumberFormatException e) {
            return -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }
}
