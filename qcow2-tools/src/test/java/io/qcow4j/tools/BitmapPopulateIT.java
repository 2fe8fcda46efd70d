package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.qcow4j.testing.Qemu;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code qcow4j bitmap --populate}: the bits of what the image's own layer allocates, nothing from its backing file. */
class BitmapPopulateIT {
    @Test
    void setsTheImagesOwnAllocation(@TempDir Path dir) {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "base.qcow2", "8M").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write 0 4M", "base.qcow2").assertOk();
        qemuImg(dir, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write 1M 64k", "-c", "write -z 5M 128k", "-c", "write 7M 512", "top.qcow2").assertOk();
        Qemu.Result r = qcow4j(dir, "bitmap", "--add", "--disable", "--populate", "top.qcow2", "p");
        assertEquals(0, r.exitCode(), r.describe());
        assertEquals("         0     1048576    0  clean\n"
                + "   1048576       65536    1  dirty\n"
                + "   1114112     4128768    0  clean\n"
                + "   5242880      131072    1  dirty\n"
                + "   5373952     1966080    0  clean\n"
                + "   7340032       65536    1  dirty\n"
                + "   7405568      983040    0  clean\n", Qemu.nbdMap(dir.resolve("top.qcow2"), "p"));
        assertEquals(java.util.List.of("p 65536 []"), OverlayIT.bitmapSummary(dir, "top.qcow2"));
        Cli.checkJson(dir, "top.qcow2");
    }
}
