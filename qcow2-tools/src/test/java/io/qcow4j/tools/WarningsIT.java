package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.qcow4j.bitmaps.Bitmaps;
import io.qcow4j.bitmaps.Chain;
import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.RandomAccessFile;
import java.io.StringWriter;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The library's warnings reach stderr in the CLI as {@code qcow4j: warning: ...} lines (the
 * overlay and convert ones: {@link OverlayIT#warnsWhenTheBaseKeepsRecordingBitmaps},
 * {@link ConvertBitmapsIT#warnsWhenBitmapsStayBehind}).
 */
class WarningsIT {
    @TempDir
    Path dir;

    @Test
    void aCommitNoBitmapRecordsWarnsOnStderr() {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "base.qcow2", "4M").assertOk();
        qemuImg(dir, "bitmap", "--add", "--disable", "base.qcow2", "frozen").assertOk();
        qemuImg(dir, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write 0 64k", "top.qcow2").assertOk();
        Qemu.Result r = qcow4j(dir, "commit", "top.qcow2");
        assertEquals(0, r.exitCode(), r.describe());
        assertEquals("Image committed.\n", r.stdout());
        assertEquals("qcow4j: warning: commit into '" + dir.resolve("base.qcow2")
                + "': no enabled bitmap there records what it writes\n", r.stderr());
        // with a recording bitmap in the base: silent
        qemuImg(dir, "bitmap", "--add", "base.qcow2", "rec").assertOk();
        qemuIo(dir, "-f", "qcow2", "-c", "write 1M 64k", "top.qcow2").assertOk();
        Qemu.Result quiet = qcow4j(dir, "commit", "top.qcow2");
        assertEquals("", quiet.stderr(), quiet.describe());
        Cli.checkJson(dir, "base.qcow2");
    }

    @Test
    void closingAChainWithTransientBitmapsWarnsOnTheCommandsStderr() throws IOException {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "base.qcow2", "4M").assertOk();
        qemuImg(dir, "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2").assertOk();
        StringWriter err = new StringWriter();
        Chain chain = Chains.open(dir.resolve("top.qcow2").toString(), null, true, new PrintWriter(err), null);
        chain.bitmaps(0).add("scratch", Bitmaps.AddOptions.defaults().transientBitmap());
        chain.bitmaps(1).add("below", Bitmaps.AddOptions.defaults().transientBitmap());
        chain.close();
        assertEquals("qcow4j: warning: closing '" + dir.resolve("base.qcow2") + "' drops transient bitmap 'below'\n"
                + "qcow4j: warning: closing '" + dir.resolve("top.qcow2") + "' drops transient bitmap 'scratch'\n",
                err.toString());
    }

    @Test
    void theEnginesWarningsAsQemuImgPrintsThem() throws IOException {
        qemuImg(dir, "create", "-q", "-f", "qcow2", "a.qcow2", "1M").assertOk();
        qemuImg(dir, "bitmap", "--add", "a.qcow2", "b").assertOk();
        // a writer without bitmap support clears autoclear bit 0 (header bytes 88-95)
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve("a.qcow2").toFile(), "rw")) {
            f.seek(88);
            long autoclear = f.readLong();
            f.seek(88);
            f.writeLong(autoclear & ~1L);
        }
        for (String[] args : new String[][] {{"info", "a.qcow2"}, {"map", "a.qcow2"}}) {
            Qemu.Result theirs = qemuImg(dir, args).assertOk();
            Qemu.Result ours = qcow4j(dir, args);
            assertEquals(0, ours.exitCode(), ours.describe());
            String first = theirs.stderr().lines().findFirst().orElseThrow();
            assertEquals("qemu-img: warning: a program lacking bitmap support modified this file,"
                    + " so all bitmaps are now considered inconsistent", first);
            assertEquals(first.replace("qemu-img:", "qcow4j:"), ours.stderr().lines().findFirst().orElseThrow(), ours.describe());
        }
    }
}
