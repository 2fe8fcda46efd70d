package io.qcow4j.core.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * The cut cluster's clearing of a shrink, run alone under the old size (ResizeCrashTest
 * once found the backing file showing through there after a kill): what it leaves must
 * never show the backing file, whatever size the header holds.
 */
class ResizeInterruptedTest {

    @ParameterizedTest(name = "extended_l2={0} cluster_size={1} cut at {2}")
    @CsvSource({
            "on,  32768, 1121280",
            "on,  65536, 1049088",
            "off, 65536, 1100288",
    })
    void cutClusterNeverShowsTheBackingFile(String extendedL2, int clusterSize, long newSize, @TempDir Path tmp)
            throws IOException {
        Path base = tmp.resolve("base.qcow2");
        Path top = tmp.resolve("top.qcow2");
        Qemu.create(base, "4M");
        Qemu.io(base, "write -P 0x11 0 4M").assertOk();
        Qemu.besideImage(top, "qemu-img", "create", "-q", "-f", "qcow2", "-o",
                "extended_l2=" + extendedL2 + ",cluster_size=" + clusterSize,
                "-b", "base.qcow2", "-F", "qcow2", "top.qcow2", "2M").assertOk();
        Qemu.io(top, "write -P 0x22 0 2M").assertOk();
        try (Qcow2Image img = Qcow2Image.open(top, OpenOptions.readWrite())) {
            ImageResizer.clearCutCluster(img.engine(), newSize, img.size());
        }
        assertEquals(0, Qemu.check(top).exitCode(), Qemu.check(top).describe());
        try (Qcow2Image img = Qcow2Image.open(top, OpenOptions.readOnly())) {
            ByteBuffer all = ByteBuffer.allocate((int) img.size());
            img.read(0, all);
            byte[] b = all.array();
            for (int i = 0; i < b.length; i++) {
                byte want = i < newSize ? (byte) 0x22 : b[i] == 0 ? 0 : (byte) 0x22;
                if (b[i] != want) {
                    throw new AssertionError("reads " + b[i] + " at " + i + " after a shrink to " + newSize
                            + " stopped before the header");
                }
            }
        }
        // and the shrink finished later by qemu-img, then a grow by qemu-img, reads zeros past the cut
        Qemu.besideImage(top, "qemu-img", "resize", "-q", "--shrink", "top.qcow2", String.valueOf(newSize)).assertOk();
        Qemu.besideImage(top, "qemu-img", "resize", "-q", "top.qcow2", "2M").assertOk();
        Qemu.io(top, "read -P 0x22 0 " + newSize).assertOk();
        Qemu.io(top, "read -P 0 " + newSize + " " + ((2 << 20) - newSize)).assertOk();
    }
}
