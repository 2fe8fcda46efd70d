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
     * A v3 snapshot table entry with less than 16 bytes of extra data (no disk size) is
     * "incomplete": check reports it (exit 2), -r leaks leaves it, -r all writes the table
     * anew with every entry complete. The image is qemu-img's, with entry 0's extra data cut
     * to none (version 2's minimum) and entry 1's to 8 bytes.
     */
    @Test
    void incompleteSnapshotEntries(@TempDir Path dir) throws IOException {
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "cut.qcow2", "16M").assertOk();
        Cli.qemuIo(dir, "-c", "write -P 0x11 0 64k", "cut.qcow2").assertOk();
        Cli.qemuImg(dir, "snapshot", "-c", "s1", "cut.qcow2").assertOk();
        Cli.qemuIo(dir, "-c", "write -P 0x22 0 64k", "cut.qcow2").assertOk();
        Cli.qemuImg(dir, "snapshot", "-c", "s2", "cut.qcow2").assertOk();
        cutExtraData(dir.resolve("cut.qcow2"), 0, 8);
        Qemu.Result plain = Cli.qemuImg(dir, "check", "cut.qcow2");
        assertEquals(2, plain.exitCode(), plain.describe());
        assertEquals("ERROR snapshot table entry 0 is incomplete\nERROR snapshot table entry 1 is incomplete\n",
                plain.stderr());
        same(dir, "check", "cut.qcow2");
        same(dir, "check", "--output=json", "cut.qcow2");
        same(dir, "check", "-r", "leaks", "cut.qcow2");
        for (String who : List.of("ours", "theirs")) {
            Files.copy(dir.resolve("cut.qcow2"), dir.resolve(who + ".qcow2"));
        }
        Qemu.Result ours = Cli.qcow4j(dir, "check", "-r", "all", "ours.qcow2");
        Qemu.Result theirs = Cli.qemuImg(dir, "check", "-r", "all", "theirs.qcow2");
        assertEquals(0, theirs.exitCode(), theirs.describe());
        assertEquals(theirs.exitCode(), ours.exitCode(), ours.describe());
        assertEquals(theirs.stdout(), ours.stdout());
        assertEquals(theirs.stderr(), ours.stderr());
        assertTrue(ours.stderr().contains("Repairing snapshot table entry 1 is incomplete"), ours.describe());
        // repaired: clean to qemu-img, the same report as its own repair, snapshots intact
        Qemu.Result after = Cli.qemuImg(dir, "check", "ours.qcow2").assertOk();
        assertEquals(Cli.qemuImg(dir, "check", "theirs.qcow2").assertOk().stdout(), after.stdout());
        assertEquals(0, Cli.qemuImg(dir, "compare", "ours.qcow2", "theirs.qcow2").exitCode());
        assertEquals(Cli.qemuImg(dir, "snapshot", "-l", "theirs.qcow2").assertOk().stdout(),
                Cli.qemuImg(dir, "snapshot", "-l", "ours.qcow2").assertOk().stdout());
        Cli.qemuImg(dir, "snapshot", "-a", "s1", "ours.qcow2").assertOk();
        Cli.qemuIo(dir, "-c", "read -P 0x11 0 64k", "ours.qcow2").assertOk();
    }

    /**
     * A repair drops unknown autoclear bits as qemu-img's does, but keeps the snapshots:
     * qemu-img 7.2's check -r (leaks or all) rewrites the header with the snapshot table
     * pointer it did not read in check mode (0 snapshots at 0), so their clusters become
     * leaks and are freed. Ours reports the image clean and leaves the snapshots as they were.
     */
    @Test
    void repairKeepsSnapshotsWithUnknownAutoclearBits(@TempDir Path dir) throws IOException {
        Cli.qemuImg(dir, "create", "-q", "-f", "qcow2", "a.qcow2", "16M").assertOk();
        Cli.qemuIo(dir, "-c", "write -P 0x11 0 64k", "a.qcow2").assertOk();
        Cli.qemuImg(dir, "snapshot", "-c", "s1", "a.qcow2").assertOk();
        Cli.qemuIo(dir, "-c", "write -P 0x22 0 64k", "a.qcow2").assertOk();
        String snapshots = Cli.qemuImg(dir, "snapshot", "-l", "a.qcow2").assertOk().stdout();
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(dir.resolve("a.qcow2"),
                java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(java.nio.ByteBuffer.allocate(8).putLong(0, 1L << 55), 88); // autoclear_features
        }
        for (String mode : List.of("leaks", "all")) {
            Qemu.Result r = Cli.qcow4j(dir, "check", "-r", mode, "a.qcow2");
            assertEquals(0, r.exitCode(), r.describe());
            assertTrue(r.stdout().startsWith("No errors were found on the image."), r.describe());
            assertEquals(snapshots, Cli.qemuImg(dir, "snapshot", "-l", "a.qcow2").assertOk().stdout());
        }
        Cli.qemuImg(dir, "check", "a.qcow2").assertOk();
        byte[] header = Files.readAllBytes(dir.resolve("a.qcow2"));
        assertEquals(0, java.nio.ByteBuffer.wrap(header).getLong(88), "autoclear_features");
        Cli.qemuImg(dir, "snapshot", "-a", "s1", "a.qcow2").assertOk();
        Cli.qemuIo(dir, "-c", "read -P 0x11 0 64k", "a.qcow2").assertOk();
    }

    /** Cuts each snapshot table entry's extra data to {@code sizes[i]} bytes, rewriting the table in place. */
    private static void cutExtraData(Path img, int... sizes) throws IOException {
        try (java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(img,
                java.nio.file.StandardOpenOption.READ, java.nio.file.StandardOpenOption.WRITE)) {
            java.nio.ByteBuffer h = java.nio.ByteBuffer.allocate(12);
            ch.read(h, 60);
            int nb = h.getInt(0);
            long offset = h.getLong(4);
            assertEquals(sizes.length, nb);
            java.nio.ByteBuffer old = java.nio.ByteBuffer.allocate(64 * 1024);
            int read = ch.read(old, offset);
            java.nio.ByteBuffer cut = java.nio.ByteBuffer.allocate(old.capacity());
            int at = 0;
            for (int i = 0; i < nb; i++) {
                int names = (old.getShort(at + 12) & 0xffff) + (old.getShort(at + 14) & 0xffff);
                int extra = old.getInt(at + 36);
                assertTrue(extra >= sizes[i]);
                cut.position((cut.position() + 7) & ~7);
                cut.put(old.array(), at, 36).putInt(sizes[i]).put(old.array(), at + 40, sizes[i])
                        .put(old.array(), at + 40 + extra, names);
                at = (at + 40 + extra + names + 7) & ~7;
            }
            // the rest of the old table becomes zeros; the file does not grow
            cut.position(0).limit(Math.min(at, read));
            ch.write(cut, offset);
        }
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
