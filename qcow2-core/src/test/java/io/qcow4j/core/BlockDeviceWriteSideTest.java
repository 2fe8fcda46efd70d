package io.qcow4j.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * BlockDevice's write side, used through the interface alone: a raw file takes zero bytes
 * (no native zeroes, no discard), a qcow2 image zero clusters and discards, a read-only
 * device (an open for reading, a snapshot view) refuses; QEMU reads back what was written.
 */
class BlockDeviceWriteSideTest {
    private static final int MIB = 1 << 20;

    @Test
    void rawFileWritesZeroBytes(@TempDir Path tmp) throws IOException {
        Path file = tmp.resolve("disk.raw");
        try (BlockDevice dev = RawImage.create(file, 4L * MIB)) {
            assertFalse(dev.isReadOnly());
            assertFalse(dev.hasNativeZeroes());
            assertFalse(dev.canDiscard());
            dev.write(0, filled(3 * MIB, (byte) 0x5a));
            dev.writeZeroes(MIB, MIB + 4096);
            dev.discard(0, 4096); // no discard: nothing changes
            dev.flush();
        }
        Qemu.run("qemu-io", "-f", "raw", "-c", "read -P 0x5a 0 1M", "-c", "read -P 0 1M 1052672",
                "-c", "read -P 0x5a 2101248 1044480", "-c", "read -P 0 3M 1M", file.toString()).assertOk();
    }

    @Test
    void qcow2ImageWritesZeroClustersAndDiscards(@TempDir Path tmp) throws IOException {
        Path file = tmp.resolve("disk.qcow2");
        try (BlockDevice dev = Qcow2Image.create(file, CreateOptions.size(4L * MIB))) {
            assertFalse(dev.isReadOnly());
            assertTrue(dev.hasNativeZeroes());
            assertTrue(dev.canDiscard());
            dev.write(0, filled(4 * MIB, (byte) 0x33));
            dev.writeZeroes(MIB, MIB);
            dev.discard(2L * MIB, MIB);
            dev.flush();
        }
        assertEquals(0, Qemu.check(file).exitCode(), Qemu.check(file).describe());
        Qemu.io(file, "read -P 0x33 0 1M", "read -P 0 1M 2M", "read -P 0x33 3M 1M").assertOk();
        JsonNode map = new ObjectMapper().readTree(Qemu.qemuImg("map", "--output=json", file.toString()).assertOk().stdout());
        long covered = 0;
        for (JsonNode run : map) {
            long start = run.get("start").asLong();
            long end = start + run.get("length").asLong();
            if (start < 3L * MIB && end > MIB) {
                assertTrue(run.get("zero").asBoolean() && !run.get("data").asBoolean(),
                        "zero clusters or holes, not zero bytes, at 1M..3M: " + map);
                covered += Math.min(end, 3L * MIB) - Math.max(start, MIB);
            }
        }
        assertEquals(2L * MIB, covered, map.toString());
    }

    @Test
    void readOnlyDevicesRefuseWrites(@TempDir Path tmp) throws IOException {
        Path file = tmp.resolve("disk.qcow2");
        Qemu.create(file, "1M");
        try (Qcow2Image img = Qcow2Image.open(file, OpenOptions.readWrite())) {
            img.snapshots().create("s1");
        }
        try (Qcow2Image img = Qcow2Image.open(file, OpenOptions.readOnly())) {
            BlockDevice view = img.snapshots().view("s1");
            for (BlockDevice dev : new BlockDevice[] {img, view}) {
                assertTrue(dev.isReadOnly(), dev.toString());
                assertThrows(IOException.class, () -> dev.write(0, filled(512, (byte) 1)));
                assertThrows(IOException.class, () -> dev.writeZeroes(0, 512));
            }
        }
        Qemu.io(file, "read -P 0 0 1M").assertOk();
    }

    private static ByteBuffer filled(int n, byte b) {
        byte[] a = new byte[n];
        Arrays.fill(a, b);
        return ByteBuffer.wrap(a);
    }
}
