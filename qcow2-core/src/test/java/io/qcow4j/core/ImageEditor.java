package io.qcow4j.core;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Patches big-endian fields of a (copied) image file at given offsets, for the adversarial
 * tests. Every call writes through at once; nothing is cached.
 */
final class ImageEditor {
    private final Path file;

    private ImageEditor(Path file) {
        this.file = file;
    }

    static ImageEditor of(Path file) {
        return new ImageEditor(file);
    }

    ImageEditor u8(long offset, int value) {
        return bytes(offset, new byte[] {(byte) value});
    }

    ImageEditor u16(long offset, int value) {
        return bytes(offset, ByteBuffer.allocate(2).putShort(0, (short) value).array());
    }

    ImageEditor u32(long offset, long value) {
        return bytes(offset, ByteBuffer.allocate(4).putInt(0, (int) value).array());
    }

    ImageEditor u64(long offset, long value) {
        return bytes(offset, ByteBuffer.allocate(8).putLong(0, value).array());
    }

    ImageEditor ascii(long offset, String s) {
        return bytes(offset, s.getBytes(StandardCharsets.US_ASCII));
    }

    ImageEditor bytes(long offset, byte[] data) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.wrap(data);
            long pos = offset;
            while (b.hasRemaining()) {
                pos += ch.write(b, pos);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return this;
    }

    ImageEditor truncate(long length) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(length);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return this;
    }

    long u64(long offset) {
        return ByteBuffer.wrap(read(offset, 8)).getLong();
    }

    long u32(long offset) {
        return ByteBuffer.wrap(read(offset, 4)).getInt() & 0xffffffffL;
    }

    int u16(long offset) {
        return ByteBuffer.wrap(read(offset, 2)).getShort() & 0xffff;
    }

    byte[] read(long offset, int length) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.allocate(length);
            while (b.hasRemaining() && ch.read(b, offset + b.position()) >= 0) {
                // keep reading
            }
            return b.array();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** SHA-256 of the whole file, hex. */
    static String sha256(Path file) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            return HexFormat.of().formatHex(md.digest(Files.readAllBytes(file)));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }
}
