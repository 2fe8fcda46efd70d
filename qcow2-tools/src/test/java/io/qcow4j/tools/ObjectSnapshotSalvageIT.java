package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Against qemu-img in drop-in mode on twin directories: {@code --object} on every command
 * that takes it, {@code snapshot -l} with its flags and {@code -U}, and {@code convert
 * --salvage} over a damaged compressed cluster (same output, same image).
 */
class ObjectSnapshotSalvageIT {
    @TempDir
    Path tmp;

    private static final List<String> IMAGE = List.of("create -q -f qcow2 a.qcow2 1M", "snapshot -c s1 a.qcow2");

    @Test
    void objectOnEveryCommand() {
        DropInTwins twins = new DropInTwins(tmp);
        String s = "secret,id=s,data=x";
        for (String c : List.of("info --object " + s + " a.qcow2", "map --object " + s + " a.qcow2",
                "check --object " + s + " a.qcow2", "compare --object " + s + " a.qcow2 a.qcow2",
                "convert --object " + s + " -O qcow2 a.qcow2 b.qcow2", "commit --object " + s + " a.qcow2",
                "create --object " + s + " -f qcow2 c.qcow2 1M", "resize --object " + s + " a.qcow2 2M",
                "bitmap --object " + s + " --add a.qcow2 b", "snapshot -l --object " + s + " a.qcow2",
                "info --object foo a.qcow2", "info --object=" + s + " --object " + s + " a.qcow2",
                "info --object help a.qcow2", "info --object secret,help", "info --object", "resize --object",
                "info --object secret,id=s a.qcow2", "check --object secret,id=1x,data=x a.qcow2",
                "info --object secret,id=s,data=x,foo=1 a.qcow2", "measure --object " + s + " -O qcow2 a.qcow2")) {
            twins.same(IMAGE, c.split(" "));
        }
    }

    @Test
    void snapshotListFlags() {
        DropInTwins twins = new DropInTwins(tmp);
        // one snapshot taken now: the listing's date and clock are the same on both sides within the second
        for (String a : List.of("-l", "-l -U -q", "-Uql", "-l --force-share", "-l -f qcow2", "-l -c x", "-c x -l",
                "-l -a s1", "-l -d s1", "-l -l", "-U -c x", "-U -d s1", "-U", "-q", "", "-c x -c y", "-x", "-a")) {
            List<String> args = new java.util.ArrayList<>(List.of("snapshot"));
            if (!a.isEmpty()) {
                args.addAll(List.of(a.split(" ")));
            }
            args.add("a.qcow2");
            Qemu.Result r = twins.same(List.of("create -q -f qcow2 a.qcow2 1M"), args.toArray(String[]::new));
            if (a.equals("-l")) {
                assertEquals("", r.stdout(), "no snapshot: nothing listed");
            }
        }
        // with a snapshot the listing has a date: compared apart from it
        Twins t = Twins.in(tmp, "listed");
        t.img("create", "-q", "-f", "qcow2", "a.qcow2", "1M").img("snapshot", "-c", "s1", "a.qcow2");
        for (String[] a : new String[][] {{"-l", "-U"}, {"-lq"}, {"-l", "--object", "secret,id=s,data=x"}}) {
            String[] args = java.util.stream.Stream.concat(java.util.stream.Stream.of("snapshot"),
                    java.util.stream.Stream.concat(java.util.Arrays.stream(a), java.util.stream.Stream.of("a.qcow2")))
                    .toArray(String[]::new);
            Qemu.Result theirs = Cli.qemuImg(t.theirs, args);
            Qemu.Result ours = Cli.dropIn(t.ours, args);
            assertEquals(theirs.exitCode(), ours.exitCode(), ours.describe());
            assertEquals(theirs.stderr(), ours.stderr(), ours.describe());
            assertEquals(undated(theirs.stdout()), undated(ours.stdout()), ours.describe());
            assertTrue(ours.stdout().contains(" s1 "), ours.describe());
        }
    }

    private static String undated(String listing) {
        return listing.replaceAll("\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d", "DATE");
    }

    @Test
    void convertSalvage() {
        DropInTwins twins = new DropInTwins(tmp);
        List<String> setup = List.of("create -q -f qcow2 -o cluster_size=4k c.qcow2 1M",
                "io c.qcow2 write -P 6 0 4k|write -c -P 5 64k 4k|write -c -P 7 68k 4k");
        for (String a : List.of("convert -m 1 -O raw c.qcow2 o.raw", "convert --salvage -m 1 -O raw c.qcow2 o.raw",
                "convert --salvage -m 1 -O qcow2 c.qcow2 o.qcow2", "convert -C --salvage -O raw c.qcow2 o.raw")) {
            twins.same(setup, ObjectSnapshotSalvageIT::damageFirstCompressedCluster, a.split(" "));
        }
    }

    /** Overwrites the start of the compressed data at guest offset 64k (4 KiB clusters): it no longer inflates. */
    private static void damageFirstCompressedCluster(Path dir) {
        try (RandomAccessFile f = new RandomAccessFile(dir.resolve("c.qcow2").toFile(), "rw")) {
            f.seek(40);
            long l1 = f.readLong();
            f.seek(l1);
            long l2 = f.readLong() & 0x00fffffffffffe00L;
            f.seek(l2 + 16 * 8);
            long entry = f.readLong();
            assertTrue(entry < 0 || (entry & (1L << 62)) != 0, "not compressed: " + Long.toHexString(entry));
            long host = entry & ((1L << 58) - 1);
            f.seek(host);
            f.write(new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff});
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
