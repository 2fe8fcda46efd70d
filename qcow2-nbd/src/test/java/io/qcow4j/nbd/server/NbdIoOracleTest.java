package io.qcow4j.nbd.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import io.qcow4j.testing.Qemu;

/**
 * Data through our export, with QEMU's and libnbd's tools as clients: copies are
 * byte-identical, writes land as qemu-io writes them into a twin image, the image stays
 * clean and its bitmap records every write.
 */
@Timeout(120)
class NbdIoOracleTest {
    private static final String[] WRITES = {
        "write -P 0x55 20M 1M", "write -P 0x66 100k 3k", "write -z 30M 2M", "write -z 1M 5000",
        "discard 0 1M", "write -P 0x77 63M 1M", "flush",
    };

    @TempDir
    Path dir;

    private Qemu.Result run(String... cmd) {
        return Qemu.run(dir, Duration.ofSeconds(60), cmd).assertOk();
    }

    private void image(String name) {
        run("qemu-img", "create", "-q", "-f", "qcow2", name, "64M");
        run("qemu-io", "-c", "write -P 1 0 1M", "-c", "write -z 2M 1M", "-c", "write -P 2 5M 100k",
                "-c", "write -P 3 10M 64k", name);
        run("qemu-img", "bitmap", "--add", name, "b");
        run("qemu-io", "-c", "write -P 4 40M 128k", name);
    }

    @Test
    void copiesAreIdentical() throws Exception {
        image("base.qcow2");
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2");
        run("qemu-io", "-c", "write -P 9 4M 3M", "-c", "write -z 40M 64k", "top.qcow2");
        Path top = dir.resolve("top.qcow2");
        try (Servers.Ours o = new Servers.Ours(top, "qcow2", false, dir.resolve("o.sock"), b -> b.shared(0))) {
            run("qemu-img", "convert", "-f", "raw", "-O", "raw", o.uri(), "convert.raw");
            assertTrue(Qemu.compare(dir.resolve("convert.raw"), top));
            run("nbdcopy", o.uri(), "nbdcopy.raw");
            assertTrue(Qemu.compare(dir.resolve("nbdcopy.raw"), top));
            assertEquals(0, Qemu.run("qemu-img", "compare", "-f", "raw", "-F", "qcow2", o.uri(), top.toString()).exitCode());
            run("qemu-io", "-c", "write -P 0xaa 0 64k", "-f", "raw", "nbdcopy.raw");
            assertEquals(1, Qemu.run("qemu-img", "compare", "-f", "raw", "-F", "raw", o.uri(),
                    dir.resolve("nbdcopy.raw").toString()).exitCode());
        }
    }

    @Test
    void writesLandAsInATwinAndDirtyTheBitmap() throws Exception {
        image("ours.qcow2");
        Files.copy(dir.resolve("ours.qcow2"), dir.resolve("twin.qcow2"));
        Path ours = dir.resolve("ours.qcow2");
        try (Servers.Ours o = new Servers.Ours(ours, "qcow2", true, dir.resolve("o.sock"),
                b -> b.bitmap("b").discard(true))) {
            String[] cmd = new String[WRITES.length * 2 + 3];
            cmd[0] = "qemu-io";
            cmd[1] = "-f";
            cmd[2] = "raw";
            for (int i = 0; i < WRITES.length; i++) {
                cmd[3 + 2 * i] = "-c";
                cmd[4 + 2 * i] = WRITES[i];
            }
            String[] withUri = java.util.Arrays.copyOf(cmd, cmd.length + 1);
            withUri[cmd.length] = o.uri();
            run(withUri);
            // what the bitmap says while the export runs
            String live = Servers.nbdinfo(o.uri(), "--map=qemu:dirty-bitmap:b");
            assertTrue(live.contains("20971520     1048576    1  dirty"), live);
        }
        String[] twin = new String[WRITES.length * 2 + 4];
        twin[0] = "qemu-io";
        twin[1] = "-d";
        twin[2] = "unmap";
        for (int i = 0; i < WRITES.length; i++) {
            twin[3 + 2 * i] = "-c";
            twin[4 + 2 * i] = WRITES[i];
        }
        twin[twin.length - 1] = "twin.qcow2";
        run(twin);

        assertEquals(0, Qemu.check(ours).exitCode(), Qemu.check(ours).describe());
        assertTrue(Qemu.compare(ours, dir.resolve("twin.qcow2")));
        run("qemu-io", "-c", "read -P 0x55 20M 1M", "-c", "read -P 0 100k 3k", "-c", "read -P 0 30M 2M",
                "-c", "read -P 0 0 1M", "-c", "read -P 0x77 63M 1M", "ours.qcow2");
        assertEquals(Qemu.nbdMap(dir.resolve("twin.qcow2"), "b"), Qemu.nbdMap(ours, "b"));
    }

    @Test
    void multiConnectionWritesFromNbdcopy() throws Exception {
        run("qemu-img", "create", "-q", "-f", "qcow2", "dst.qcow2", "48M");
        run("qemu-img", "create", "-q", "-f", "raw", "src.raw", "48M");
        run("qemu-io", "-f", "raw", "-c", "write -P 0x11 0 8M", "-c", "write -P 0x22 9M 13M",
                "-c", "write -P 0x33 30M 4k", "-c", "write -P 0x44 47M 1M", "src.raw");
        Path dst = dir.resolve("dst.qcow2");
        try (Servers.Ours o = new Servers.Ours(dst, "qcow2", true, dir.resolve("o.sock"), b -> b.shared(8))) {
            assertEquals("true", Qemu.run("nbdinfo", "--can", "multi-conn", o.uri()).exitCode() == 0 ? "true" : "false");
            run("nbdcopy", "--connections=4", "--requests=16", "src.raw", o.uri());
        }
        assertEquals(0, Qemu.check(dst).exitCode());
        assertTrue(Qemu.compare(dst, dir.resolve("src.raw")));
    }
}
