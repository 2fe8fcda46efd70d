package io.qcow4j.core.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The header as a value: parsing cluster 0 of what qemu-img wrote and serializing it again
 * gives qemu-img's bytes; a change makes a new header and leaves the old one as it was.
 */
class HeaderTest {

    /** qemu-img create options (";" separates extra steps: a bitmap, a snapshot). */
    @ParameterizedTest
    @ValueSource(strings = {
        "compat=0.10",
        "compat=1.1",
        "cluster_size=512",
        "cluster_size=2M",
        "compression_type=zstd",
        "extended_l2=on,cluster_size=128k",
        "lazy_refcounts=on,refcount_bits=1",
        "backing_file=base.qcow2,backing_fmt=qcow2",
        "compat=0.10,backing_file=base.qcow2,backing_fmt=qcow2",
        "data_file=data.raw,data_file_raw=on",
        "compat=1.1;bitmap",
        "compat=1.1;snapshot",
        "backing_file=base.qcow2,backing_fmt=qcow2;bitmap",
    })
    void serializesQemuImagesByteForByte(String spec, @TempDir Path tmp) throws IOException {
        Path base = tmp.resolve("base.qcow2");
        Qemu.create(base, "64M");
        Path img = tmp.resolve("img.qcow2");
        String[] steps = spec.split(";");
        Qemu.besideImage(img, "qemu-img", "create", "-q", "-f", "qcow2", "-o", steps[0], img.toString(), "64M").assertOk();
        for (int i = 1; i < steps.length; i++) {
            if (steps[i].equals("bitmap")) {
                Qemu.qemuImg("bitmap", "--add", img.toString(), "b0").assertOk();
            } else {
                Qemu.qemuImg("snapshot", "-c", "s1", img.toString()).assertOk();
            }
        }
        byte[] file = Files.readAllBytes(img);
        Header h = Header.parse(Arrays.copyOf(file, Math.min(file.length, 2 << 20)));
        byte[] bytes = h.serialize();
        assertArrayEquals(Arrays.copyOf(file, bytes.length), bytes, spec + ": bytes differ from qemu-img's");
        assertEquals(h.headerLength(), Header.parse(padded(bytes, h.clusterSize())).headerLength());
        assertArrayEquals(bytes, Header.parse(padded(bytes, h.clusterSize())).serialize(), "a second round trip changes nothing");
    }

    @Test
    void unknownFieldsAndExtensionsKeptVerbatim(@TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("u.qcow2");
        Qemu.create(img, "1M");
        Header qemu = Header.parse(Files.readAllBytes(img));
        byte[] unknown = {1, 2, 3, 4, 5, 6, 7, 8};
        Header h = qemu.toBuilder().unknownFields(unknown).extension(0x12345678, "keep me".getBytes()).build();
        unknown[0] = 9;
        Header back = Header.parse(padded(h.serialize(), h.clusterSize()));
        assertEquals(120, back.headerLength());
        assertArrayEquals(new byte[] {1, 2, 3, 4, 5, 6, 7, 8}, back.unknownFields());
        assertEquals("keep me", back.stringExtension(0x12345678));
        List<Integer> types = new ArrayList<>();
        back.extensions().forEach(e -> types.add(e.type()));
        assertEquals(List.of(HeaderExtension.FEATURE_NAME_TABLE, 0x12345678), types, "unknown extensions after QEMU's");
    }

    @Test
    void changesMakeNewHeadersAndLeaveTheOldOneAlone(@TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("c.qcow2");
        Qemu.create(img, "1M");
        Header h = Header.parse(Files.readAllBytes(img));
        byte[] before = h.serialize();

        Header grown = h.withSize(2L << 20).withL1Table(7L << 16, 3).withRefcountTable(9L << 16, 2)
                .withSnapshots(1, 11L << 16).withBackingFile("b.qcow2")
                .withExtension(HeaderExtension.BACKING_FORMAT, "qcow2".getBytes())
                .withBitmapsExtension(new byte[24])
                .withIncompatibleFeatures(Header.INCOMPAT_DIRTY).withCompatibleFeatures(Header.COMPAT_LAZY_REFCOUNTS);
        assertNotSame(h, grown);
        assertArrayEquals(before, h.serialize(), "the original header changed");
        assertEquals(1L << 20, h.size());
        assertNull(h.backingFile());
        assertNull(h.extension(HeaderExtension.BITMAPS));

        Header back = Header.parse(padded(grown.serialize(), grown.clusterSize()));
        assertEquals(2L << 20, back.size());
        assertEquals(7L << 16, back.l1TableOffset());
        assertEquals(3, back.l1Size());
        assertEquals(9L << 16, back.refcountTableOffset());
        assertEquals(2, back.refcountTableClusters());
        assertEquals(1, back.nbSnapshots());
        assertEquals(11L << 16, back.snapshotsOffset());
        assertEquals("b.qcow2", back.backingFile());
        assertEquals("qcow2", back.stringExtension(HeaderExtension.BACKING_FORMAT));
        assertEquals(Header.AUTOCLEAR_BITMAPS, back.autoclearFeatures());
        assertTrue(back.hasIncompatible(Header.INCOMPAT_DIRTY));
        assertEquals(Header.COMPAT_LAZY_REFCOUNTS, back.compatibleFeatures());

        Header dropped = grown.withBitmapsExtension(null).withoutExtension(HeaderExtension.BACKING_FORMAT);
        assertNull(dropped.extension(HeaderExtension.BITMAPS));
        assertNull(dropped.extension(HeaderExtension.BACKING_FORMAT));
        assertEquals(0, dropped.autoclearFeatures());
        assertTrue(grown.extension(HeaderExtension.BITMAPS) != null, "withBitmapsExtension(null) changed its source");
    }

    @Test
    void handsOutNothingMutable(@TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("m.qcow2");
        Qemu.create(img, "1M");
        Header h = Header.parse(Files.readAllBytes(img)).toBuilder().unknownFields(new byte[8]).build();
        assertThrows(UnsupportedOperationException.class, () -> h.extensions().clear());
        h.unknownFields()[0] = 1;
        assertEquals(0, h.unknownFields()[0]);
        byte[] table = h.extension(HeaderExtension.FEATURE_NAME_TABLE).data();
        table[0] ^= 1;
        assertTrue(h.extension(HeaderExtension.FEATURE_NAME_TABLE).data()[0] != table[0], "extension data shared");
        HeaderBuilder b = h.toBuilder().size(5L << 20);
        Header first = b.build();
        b.size(6L << 20).extension(HeaderExtension.BACKING_FORMAT, "raw".getBytes());
        assertEquals(5L << 20, first.size(), "a built header follows its builder");
        assertNull(first.extension(HeaderExtension.BACKING_FORMAT));
        assertEquals(1L << 20, h.size());
    }

    private static byte[] padded(byte[] header, int clusterSize) {
        return Arrays.copyOf(header, clusterSize);
    }
}
