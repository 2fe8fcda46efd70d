package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.TestData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** qcow4j check against qemu-img check: output, exit codes, repairs (the engine's checker has its own deep tests). */
class CheckIT {

    private static void same(Path dir, String... args) {
        Qemu.Result ours = Cli.qcow4j(dir, args);
        Qemu.Result theirs = Cli.qemuImg(dir, args);
        String what = String.join(" ", args);
        assertEquals(theirs.exitCode(), ours.exitCode(), what + "\n" + ours.describe());
        assertEquals(theirs.stdout(), ours.stdout(), what);
        assertEquals(theirs.stderr().replace("qemu-img:", "qcow4j:"), ours.stderr(), what);
    }

    @Test
    void referenceImages(@TempDir Path dir) {
        for (String name : List.of("empty.qcow2", "zlib-compressed.qcow2", "snapshot.qcow2", "lazy-dirty.qcow2",
                "bitmaps.qcow2", "extended-l2.qcow2", "chain-top.qcow2")) {
            TestData.copyToTemp(name, dir);
            same(dir, "check", name);
            same(dir, "check", "--output=json", name);
        }
    }

    @Test
    void repairsLikeQemu(@TempDir Path dir) throws IOException {
        for (String who : List.of("ours", "theirs")) {
            TestData.copyToTemp("lazy-dirty.qcow2", dir);
            Files.move(dir.resolve("lazy-dirty.qcow2"), dir.resolve(who + ".qcow2"));
        }
        Qemu.Result ours = Cli.qcow4j(dir, "check", "-r", "all", "ours.qcow2");
        Qemu.Result theirs = Cli.qemuImg(dir, "check", "-r", "all", "theirs.qcow2");
        assertEquals(theirs.exitCode(), ours.exitCode(), ours.describe());
        assertEquals(theirs.stdout(), ours.stdout());
        assertEquals(0, Cli.qemuImg(dir, "check", "ours.qcow2").exitCode());
        assertEquals(0, Cli.qemuImg(dir, "compare", "ours.qcow2", "theirs.qcow2").exitCode());
    }

    /**
     * -p (qcow4j's own; qemu-img check has none) draws qemu-img's progress line on stdout,
     * "    (xx.xx/100%)\r" rising to 100.00 and a newline, before the report, which is
     * otherwise the report without -p (and qemu-img's).
     */
    @Test
    void progress(@TempDir Path dir) {
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", "big.qcow2", "1G").assertOk();
        Cli.qemuIo(dir, "-c", "write -P 0x11 0 24M", "-c", "write -P 0x22 512M 8M", "-c", "write -P 0x33 1020M 4M",
                "big.qcow2").assertOk();
        for (String[] args : new String[][] {{"check", "big.qcow2"}, {"check", "--output=json", "big.qcow2"}}) {
            String plain = Cli.qcow4j(dir, args).assertOk().stdout();
            assertEquals(Cli.qemuImg(dir, args).assertOk().stdout(), plain);
            String[] withP = Cli.prepend("check", Cli.prepend("-p", java.util.Arrays.copyOfRange(args, 1, args.length)));
            Qemu.Result r = Cli.qcow4j(dir, withP).assertOk();
            int end = r.stdout().indexOf("\r\n");
            assertTrue(end > 0, r.describe());
            String bar = r.stdout().substring(0, end + 1);
            assertEquals(plain, r.stdout().substring(end + 2), String.join(" ", withP));
            assertTrue(bar.matches("(    \\(\\d{1,3}\\.\\d\\d/100%\\)\r)+"), bar);
            assertTrue(bar.startsWith("    (0.00/100%)\r") && bar.endsWith("    (100.00/100%)\r"), bar);
            List<Double> shown = java.util.Arrays.stream(bar.split("\r"))
                    .map(p -> Double.parseDouble(p.strip().substring(1, p.strip().indexOf('/')))).toList();
            assertTrue(shown.size() >= 4, bar);
            for (int i = 1; i < shown.size(); i++) {
                assertTrue(shown.get(i) > shown.get(i - 1), bar);
            }
            assertEquals("", r.stderr());
        }
        // -q: neither report nor bar; a repair draws it too
        assertEquals("", Cli.qcow4j(dir, "check", "-p", "-q", "big.qcow2").assertOk().stdout());
        Qemu.Result repair = Cli.qcow4j(dir, "check", "-p", "-r", "leaks", "big.qcow2").assertOk();
        assertTrue(repair.stdout().contains("    (100.00/100%)\r\nNo errors were found on the image."), repair.describe());
    }

    @Test
    void errors(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("junk.raw"), "junk\n");
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "a.qcow2", "1M").assertOk();
        assertEquals(63, Cli.qcow4j(dir, "check", "junk.raw").exitCode());
        assertEquals(1, Cli.qcow4j(dir, "check", "-f", "qcow2", "junk.raw").exitCode());
        Qemu.Result bad = Cli.qcow4j(dir, "check", "-r", "foo", "a.qcow2");
        assertEquals(1, bad.exitCode());
        assertEquals("qcow4j: Unknown option value for -r (expecting 'leaks' or 'all'): foo\n", bad.stderr());
    }

    /**
     * 2 MiB clusters: an L2 table is read through windows of 256 KiB, so entries past the
     * first window (guest offsets past 64 GiB of a table) are damaged here, a COPIED flag
     * cleared and a second reference to the same cluster; reports and repair as qemu-img's.
     */
    @Test
    void damagePastTheFirstReadWindowOfAnL2Table(@TempDir Path dir) throws IOException {
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "-o", "cluster_size=2M", "w.qcow2", "1T").assertOk();
        Cli.qemuIo(dir, "-c", "write -P 0xab 100G 4M", "-c", "write -P 0xcd 300G 2M", "-c", "write 511G 2M",
                "w.qcow2").assertOk();
        same(dir, "check", "w.qcow2");
        try (java.nio.channels.FileChannel f = java.nio.channels.FileChannel.open(dir.resolve("w.qcow2"),
                java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE)) {
            java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(8);
            f.read(b, 40);
            long l1 = b.getLong(0);
            f.read(b.clear(), l1);
            long l2 = b.getLong(0) & 0x00fffffffffffe00L;
            long index = (300L << 30) / (2 << 20) % 262144;
            assertTrue(index * 8 >= 256 << 10, "past the first window");
            f.read(b.clear(), l2 + 8 * index);
            long entry = b.getLong(0);
            f.write(b.clear().putLong(0, entry & Long.MAX_VALUE), l2 + 8 * index);
            f.write(b.clear().putLong(0, entry | Long.MIN_VALUE), l2 + 8 * (index + 5));
        }
        same(dir, "check", "w.qcow2");
        same(dir, "check", "--output=json", "w.qcow2");
        Files.copy(dir.resolve("w.qcow2"), dir.resolve("ours.qcow2"));
        Files.copy(dir.resolve("w.qcow2"), dir.resolve("theirs.qcow2"));
        Qemu.Result ours = Cli.qcow4j(dir, "check", "-r", "all", "ours.qcow2");
        Qemu.Result theirs = Cli.qemuImg(dir, "check", "-r", "all", "theirs.qcow2");
        assertEquals(theirs.exitCode(), ours.exitCode(), ours.describe());
        assertEquals(theirs.stdout(), ours.stdout());
        assertEquals(0, Cli.qemuImg(dir, "check", "ours.qcow2").exitCode());
        assertEquals(0, Cli.qemuImg(dir, "compare", "ours.qcow2", "theirs.qcow2").exitCode());
    }
}
