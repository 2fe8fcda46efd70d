package io.qcow4j.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import com.fasterxml.jackson.databind.JsonNode;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.HeaderExtension;
import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.TestData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Feature bits, unknown fields and extensions, the dirty bit: what a header rewrite must respect. */
class HeaderFeaturesTest {

    @Test
    void dirtyImageGetsRefcountsRebuiltOnReadWriteOpen(@TempDir Path tmp) throws IOException {
        Path img = TestData.copyToTemp("lazy-dirty.qcow2", tmp);
        assertEquals(2, Qemu.check(img).exitCode(), "the reference image has stale refcounts");
        Path before = tmp.resolve("before.raw");
        Qemu.convertToRaw(img, before);
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            assertTrue(image.info().dirty());
        }
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            assertTrue(image.info().dirty(), "an open that writes nothing changes nothing");
            // allocations after the repair must not hand out clusters still in use
            byte[] orig = new byte[(int) image.size()];
            image.read(0, ByteBuffer.wrap(orig));
            byte[] junk = new byte[(int) image.size()];
            new java.util.Random(1).nextBytes(junk);
            image.write(0, ByteBuffer.wrap(junk));
            image.write(0, ByteBuffer.wrap(orig));
            assertFalse(image.info().dirty(), "repaired before the first write");
        }
        Qemu.Result check = Qemu.check(img);
        assertEquals(0, check.exitCode(), check.stdout() + check.stderr());
        assertFalse(Qemu.infoJson(img).path("dirty-flag").asBoolean());
        assertTrue(Qemu.compare(img, before), "content changed by the repair");
    }

    @Test
    void unknownAutoclearBitsAreClearedBeforeTheFirstWrite(@TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("a.qcow2");
        Qemu.create(img, "1M");
        patchLong(img, Header.AUTOCLEAR_FEATURES, 1L << 63 | 1L << 40);
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            assertEquals(1L << 63 | 1L << 40, image.engine().header().autoclearFeatures(), "a read-only open writes nothing");
        }
        assertEquals(1L << 63 | 1L << 40, readLong(img, Header.AUTOCLEAR_FEATURES));
        Qcow2Image.open(img, OpenOptions.readWrite()).close();
        assertEquals(1L << 63 | 1L << 40, readLong(img, Header.AUTOCLEAR_FEATURES), "nothing written, nothing changed");
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            image.write(0, ByteBuffer.wrap(new byte[] {1}));
        }
        assertEquals(0, readLong(img, Header.AUTOCLEAR_FEATURES));
        assertEquals(0, Qemu.check(img).exitCode());
    }

    @Test
    void unknownHeaderFieldsAndExtensionsSurviveRewrites(@TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("u.qcow2");
        Qemu.create(img, "64M");
        // header_length 120: eight unknown bytes after the 112 QEMU knows, then an unknown extension
        Header h;
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            h = image.engine().header();
        }
        h = h.toBuilder().unknownFields(new byte[] {1, 2, 3, 4, 5, 6, 7, 8})
                .extension(0x12345678, "keep me".getBytes()).build();
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.seek(0);
            f.write(h.serialize());
        }
        assertEquals(0, Qemu.check(img).exitCode());
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            // growing the disk past what the L1 table maps rewrites the header
            image.resize(8L << 30);
            image.write(7L << 30, ByteBuffer.wrap(new byte[] {9}));
        }
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            Header after = image.engine().header();
            assertEquals(120, after.headerLength());
            assertArrayEquals(new byte[] {1, 2, 3, 4, 5, 6, 7, 8}, after.unknownFields());
            HeaderExtension ext = after.extension(0x12345678);
            assertTrue(ext != null, "unknown extension dropped");
            assertEquals("keep me", ext.asString());
            assertEquals(8L << 30, after.size());
        }
        assertEquals(0, Qemu.check(img).exitCode());
        JsonNode info = Qemu.infoJson(img);
        assertEquals(8L << 30, info.path("virtual-size").asLong());
    }

    @Test
    void corruptBitRefusesReadWrite(@TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("c.qcow2");
        Qemu.create(img, "1M");
        patchLong(img, Header.INCOMPATIBLE_FEATURES, Header.INCOMPAT_CORRUPT);
        byte[] before = Files.readAllBytes(img);
        IOException e = org.junit.jupiter.api.Assertions.assertThrows(IOException.class,
                () -> Qcow2Image.open(img, OpenOptions.readWrite()));
        assertTrue(e.getMessage().contains("corrupt"), e.getMessage());
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            assertTrue(image.info().corrupt());
        }
        assertArrayEquals(before, Files.readAllBytes(img));
    }

    static void patchLong(Path img, long offset, long value) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "rw")) {
            f.seek(offset);
            f.writeLong(value);
        }
    }

    static long readLong(Path img, long offset) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(img.toFile(), "r")) {
            f.seek(offset);
            return f.readLong();
        }
    }

    static byte[] bytes(int n, int v) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) v);
        return b;
    }
}
