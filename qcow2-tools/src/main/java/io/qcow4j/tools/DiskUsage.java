package io.qcow4j.tools;

import io.qcow4j.core.storage.HostFile;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Bytes a file occupies on disk ({@code st_blocks * 512}), what qemu-img calls "disk
 * size" / "actual-size". Java's file attributes have no block count, so:
 * <ol>
 * <li>Linux {@code statx(2)} through JNA ({@link HostFile#blocks}) (already on the class path: Chronicle's
 *     {@code net.openhft:posix} depends on it). statx's struct has one layout on every
 *     architecture, unlike {@code struct stat}, so no per-platform offsets are needed.
 *     ({@code posix}'s own {@code PosixAPI.du()} just runs {@code du}.)</li>
 * <li>failing that, {@code stat -c %b} (coreutils, also in 512-byte units);</li>
 * <li>failing that, the file's length.</li>
 * </ol>
 */
final class DiskUsage {
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
        return HostFile.blocks(file);
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
