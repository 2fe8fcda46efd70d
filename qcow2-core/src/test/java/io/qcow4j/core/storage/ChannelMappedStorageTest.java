package io.qcow4j.core.storage;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The JDK-mapped storage (the plain-JVM fallback of MappedStorage) against positional I/O of
 * the same file: values at chunk edges and across them, big-endian as qcow2 stores them,
 * nothing mapped past the image's end, the file cut back to it on close.
 */
class ChannelMappedStorageTest {
    private static final long CHUNK = 64L << 20;

    @TempDir
    Path tmp;

    @Test
    void readsAndWritesMatchPositionalIo() throws IOException {
        Path f = tmp.resolve("m.img");
        Files.write(f, new byte[0]);
        long end = CHUNK + (1 << 20);
        try (ChannelMappedStorage s = new ChannelMappedStorage(f)) {
            s.reserve(0, end);
            long[] offsets = {0, 8, CHUNK - 8, CHUNK - 4, CHUNK - 3, CHUNK, end - 8};
            for (long off : offsets) {
                s.writeLong(off, 0x0102030405060708L ^ off);
                assertEquals(0x0102030405060708L ^ off, s.readLong(off), "at " + off);
            }
            s.writeInt(CHUNK - 2, 0x0a0b0c0d); // straddles the chunk edge: the overlap serves it
            assertEquals(0x0a0b0c0d, s.readInt(CHUNK - 2));
            // the same bytes through positional I/O of the shared page cache, big-endian
            ByteBuffer b = ByteBuffer.allocate(4);
            s.read(CHUNK - 2, b);
            assertEquals(0x0a0b0c0d, b.getInt(0));
            long[] many = new long[64];
            for (int i = 0; i < many.length; i++) {
                many[i] = i * 0x1111_1111_1111L;
            }
            s.writeLongs(CHUNK - 256, many, 0, many.length); // across the edge: positional I/O
            long[] back = new long[64];
            s.readLongs(CHUNK - 256, back, 0, back.length);
            assertArrayEquals(many, back);
            s.writeLongs(4096, many, 0, many.length);
            s.readLongs(4096, back, 0, back.length);
            assertArrayEquals(many, back);
            // past the image's end: zeros on read, and a write there extends it
            assertEquals(0, s.readLong(end));
            s.writeLong(end, 42);
            assertEquals(end + 8, s.length());
            assertEquals(42, s.readLong(end));
            s.flush();
        }
        // the chunks grew the file to whole mappings; close cut it back to the image's end
        assertEquals(end + 8, Files.size(f));
        try (FileStorage p = new FileStorage(f, true)) {
            assertEquals(0x0102030405060708L ^ 8, p.readLong(8));
            assertEquals(0x0102030405060708L ^ (end - 8), p.readLong(end - 8));
            assertEquals(42, p.readLong(end));
            long[] back = new long[64];
            p.readLongs(4096, back, 0, back.length);
            assertEquals(63 * 0x1111_1111_1111L, back[63]);
        }
    }

    @Test
    void closedStorageRefusesAccess() throws IOException {
        Path f = tmp.resolve("c.img");
        Files.write(f, new byte[4096]);
        ChannelMappedStorage s = new ChannelMappedStorage(f);
        s.writeLong(0, 7);
        s.close();
        assertEquals(4096, Files.size(f));
        assertThrows(IOException.class, () -> s.readLong(0));
    }
}
