package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.qcow4j.testing.Qemu;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Numbers as the qemu tools print them, checked against the tools themselves. */
class OutputTest {
    @TempDir
    Path tmp;

    /** "virtual size: X (N bytes)" of raw files of many sizes, including the 1000..1023 unit edge. */
    @Test
    void humanSizeAsQemuImgInfo() {
        List<Long> sizes = new ArrayList<>(List.of(0L, 512L, 1024L, 1536L, 12800L, 196608L, 200704L, 1023488L,
                1048064L, 1048576L, 1314816L, 4134400L, 1022976L, 1073741824L, 1610612736L, 1099511627776L,
                1023L << 30, 1000L << 30, 999L << 20, 1125899906842624L));
        Random rnd = new Random(42);
        for (int i = 0; i < 40; i++) {
            sizes.add((rnd.nextLong() >>> (20 + rnd.nextInt(43))) & ~511L);
        }
        for (long size : sizes) {
            Qemu.Result r = Qemu.run(tmp, Qemu.DEFAULT_TIMEOUT, "qemu-img", "create", "-q", "-f", "raw", "s.raw",
                    Long.toString(size));
            if (r.exitCode() != 0) {
                continue; // larger than the file system allows
            }
            String line = Qemu.run(tmp, Qemu.DEFAULT_TIMEOUT, "qemu-img", "info", "s.raw").assertOk().stdout()
                    .lines().filter(l -> l.startsWith("virtual size: ")).findFirst().orElseThrow();
            assertEquals(line, "virtual size: " + Output.humanSize(size) + " (" + size + " bytes)");
        }
    }

    @Test
    void formatG3Edges() {
        assertEquals("1e+03", Output.formatG3(999.5));
        assertEquals("999", Output.formatG3(999.4));
        assertEquals("0.977", Output.formatG3(0.9765625));
        assertEquals("1", Output.formatG3(1.0));
        assertEquals("100", Output.formatG3(100.0));
        assertEquals("12.5", Output.formatG3(12.5));
        assertEquals("0.0001", Output.formatG3(0.0001));
        assertEquals("1e-05", Output.formatG3(0.00001));
    }

    /** qemu-io's byte counts: "64 KiB", "1.500 KiB", "512 bytes", "1 bytes". */
    @Test
    void ioSizes() {
        assertEquals("64 KiB", Output.ioSize(65536));
        assertEquals("1.500 KiB", Output.ioSize(1536));
        assertEquals("512 bytes", Output.ioSize(512));
        assertEquals("1 bytes", Output.ioSize(1));
        assertEquals("0 bytes", Output.ioSize(0));
        assertEquals("563.750610 bytes", Output.ioSize(563.75061));
        assertEquals("1 MiB", Output.ioSize(1 << 20));
        assertEquals("1.444 GiB", Output.ioSize(1.444 * (1 << 30)));
        assertEquals("00.01 sec", Output.ioTime(12_000_000L));
        assertEquals("0:00:01.50", Output.ioTime(1_500_000_000L));
    }

    /** "read -v" dumps as qemu-io does (letters and digits shown, everything else '.'). */
    @Test
    void hexDumpAsQemuIo() {
        Qemu.run(tmp, Qemu.DEFAULT_TIMEOUT, "qemu-img", "create", "-q", "-f", "raw", "d.raw", "4k").assertOk();
        byte[] data = new byte[70];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (i * 37 + 11);
        }
        List<String> cmds = new ArrayList<>();
        for (int i = 0; i < data.length; i++) {
            cmds.add("-c");
            cmds.add("write -q -P " + (data[i] & 0xff) + " " + (100 + i) + " 1");
        }
        cmds.add("-c");
        cmds.add("read -v 100 70");
        cmds.add("-f");
        cmds.add("raw");
        cmds.add("d.raw");
        String out = Qemu.run(tmp, Qemu.DEFAULT_TIMEOUT, Cli.prepend("qemu-io", cmds.toArray(String[]::new)))
                .assertOk().stdout();
        String dump = out.substring(0, out.indexOf("read 70/70"));
        StringWriter sw = new StringWriter();
        try (PrintWriter pw = new PrintWriter(sw)) {
            Output.hexDump(pw, 100, ByteBuffer.wrap(data));
        }
        assertEquals(dump, sw.toString().replace(System.lineSeparator(), "\n"));
    }
}
