package io.qcow4j.backup;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32C;

/** File steps of a backup set: durable writes and renames, chunk checksums. */
final class Files2 {
    static final String PARTIAL = ".partial";
    /** Bytes per chunk checksum of a file: small enough to name where a file is damaged. */
    static final int CHUNK = 1 << 20;

    private Files2() {
    }

    /** Writes {@code bytes} to {@code target}.partial, flushes it, renames it over {@code target}, flushes the directory. */
    static void writeAtomically(Path target, byte[] bytes) throws IOException {
        Path tmp = target.resolveSibling(target.getFileName() + PARTIAL);
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer b = ByteBuffer.wrap(bytes);
            while (b.hasRemaining()) {
                ch.write(b);
            }
            ch.force(true);
        } catch (IOException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        publish(tmp, target);
    }

    /** Renames a complete, flushed {@code partial} to {@code target} and makes the rename durable. */
    static void publish(Path partial, Path target) throws IOException {
        Files.move(partial, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        syncDir(target.toAbsolutePath().getParent());
    }

    static void syncDir(Path dir) throws IOException {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException e) {
            // some file systems cannot flush a directory; the rename is as durable as they make it
        }
    }

    static void fsync(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.force(true);
        }
    }

    /** CRC-32C of every {@link #CHUNK} bytes of {@code file}. */
    static List<Long> chunkSums(Path file) throws IOException {
        List<Long> out = new ArrayList<>();
        ByteBuffer buf = ByteBuffer.allocateDirect(CHUNK);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long pos = 0;
            while (true) {
                buf.clear();
                int n = readFully(ch, buf, pos);
                if (n == 0) {
                    break;
                }
                buf.flip();
                CRC32C crc = new CRC32C();
                crc.update(buf);
                out.add(crc.getValue());
                pos += n;
                if (n < CHUNK) {
                    break;
                }
            }
        }
        return out;
    }

    /** CRC-32C of every {@link #CHUNK} bytes of a file of a store, read front to back. */
    static List<Long> chunkSums(SetStore.ReadFile file) throws IOException {
        List<Long> out = new ArrayList<>();
        ByteBuffer buf = ByteBuffer.allocate(CHUNK);
        for (long pos = 0; ; ) {
            buf.clear();
            int n = file.read(pos, buf);
            if (n == 0) {
                break;
            }
            buf.flip();
            CRC32C crc = new CRC32C();
            crc.update(buf);
            out.add(crc.getValue());
            pos += n;
            if (n < CHUNK) {
                break;
            }
        }
        return out;
    }

    /** Reads until {@code buf} is full or the file ends; returns the bytes read. */
    static int readFully(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
        int total = 0;
        while (buf.hasRemaining()) {
            int n = ch.read(buf, pos + total);
            if (n < 0) {
                break;
            }
            total += n;
        }
        return total;
    }

    static long crc(ByteBuffer data) {
        CRC32C c = new CRC32C();
        c.update(data.duplicate());
        return c.getValue();
    }
}
