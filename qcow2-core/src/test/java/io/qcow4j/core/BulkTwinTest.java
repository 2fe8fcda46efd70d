package io.qcow4j.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.testing.Patterns;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Large requests (up to several MiB, many clusters, across L2 tables) over a disk that
 * qemu-io prepared with every kind of cluster: data, compressed, zero, partly written
 * (subclusters with extended L2), discarded, never written (backing data showing through
 * on an overlay, zeros past a shorter backing file). qcow4j's large reads return what
 * qemu-img reads; the same large writes (plain, and compressed over many clusters) by
 * qcow4j and by qemu-io on twin images leave disks that qemu-img compare finds identical
 * and qemu-img check finds clean.
 */
class BulkTwinTest {

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "plain,          65536, 1.1,  '',                  false, 21",
            "small-l2,        4096, 1.1,  '',                  false, 22",
            "extended,       65536, 1.1,  extended_l2=on,      false, 23",
            "extended-small, 16384, 1.1,  extended_l2=on,      true,  24",
            "overlay,        65536, 1.1,  '',                  true,  25",
            "v2-overlay,     65536, 0.10, '',                  true,  26",
            "zstd,           65536, 1.1,  compression_type=zstd, false, 27",
            "data-file,      65536, 1.1,  data_file,           false, 28",
    })
    void largeRequestsAsQemu(String name, int cs, String compat, String extra, boolean overlay, long seedBase,
                             @TempDir Path tmp) throws IOException {
        long seed = seedBase * 7919 + Long.getLong("qcow4j.seed", 0);
        String what = name + ", seed " + seed;
        Random r = new Random(seed);
        // 384 clusters at least, whatever their size; 4 KiB clusters: an L2 table maps 2 MiB
        long size = Math.min(24L << 20, 1536L * cs);
        boolean dataFile = extra.equals("data_file");
        if (overlay) {
            Path base = tmp.resolve("base.qcow2");
            Qemu.create(base, String.valueOf(size - 5 * 65536 - 4096));
            List<String> cmds = new ArrayList<>();
            for (long off = 0; off + 65536 <= size - 6 * 65536; off += 65536) {
                if (r.nextInt(3) != 0) {
                    cmds.add("write -P 0x" + Integer.toHexString(1 + r.nextInt(255)) + " " + off + " 65536");
                }
            }
            qemuIo(base, cmds, tmp);
        }
        Path ours = tmp.resolve("ours.qcow2");
        Path theirs = tmp.resolve("theirs.qcow2");
        for (Path p : List.of(ours, theirs)) {
            List<String> opts = new ArrayList<>(List.of("cluster_size=" + cs, "compat=" + compat));
            if (dataFile) {
                opts.add("data_file=" + p.getFileName().toString().replace(".qcow2", ".data"));
            } else if (!extra.isEmpty()) {
                opts.add(extra);
            }
            if (overlay) {
                opts.add("backing_file=base.qcow2");
                opts.add("backing_fmt=qcow2");
            }
            Qemu.create(p, String.valueOf(size), opts.toArray(new String[0]));
        }
        // the same mixture of clusters in both, written by qemu-io
        boolean compressed = !dataFile;
        List<String> setup = setup(r, size, cs, compressed, compat.equals("1.1"));
        qemuIo(ours, setup, tmp);
        qemuIo(theirs, setup, tmp);
        Path raw = tmp.resolve("theirs.raw");
        Qemu.convertToRaw(theirs, raw);
        assertReadsAs(ours, Files.readAllBytes(raw), r, what + " (before the writes)");

        // large writes, aligned or not, by qcow4j on ours and by qemu-io on theirs
        List<String> commands = new ArrayList<>();
        int compressedOps = 0;
        try (Qcow2Image img = Qcow2Image.open(ours, OpenOptions.readWrite())) {
            for (int op = 0; op < 24; op++) {
                long off = switch (r.nextInt(3)) {
                    case 0 -> (long) r.nextInt((int) (size / cs)) * cs;
                    case 1 -> (long) r.nextInt((int) (size / 512)) * 512;
                    default -> r.nextInt((int) size);
                };
                int len = (int) Math.min(size - off, 1 + r.nextInt(r.nextBoolean() ? 5 << 20 : 4 * cs));
                byte[] data = Patterns.random(r.nextLong(), len);
                if (r.nextInt(6) == 0) {
                    // whole runs of zeros inside the data (a copy's zero chunks)
                    java.util.Arrays.fill(data, len / 4, len / 2, (byte) 0);
                }
                Path src = tmp.resolve("op" + op + ".bin");
                if (compressed && r.nextInt(4) == 0) {
                    // compressed clusters, some of which do not shrink (random data: written plain)
                    off = off / cs * cs;
                    len = (int) Math.min(size - off, (1 + r.nextInt(48)) * (long) cs);
                    data = Patterns.random(r.nextLong(), len);
                    for (int c = 0; c < len; c += cs) {
                        if (r.nextInt(3) != 0) {
                            java.util.Arrays.fill(data, c, Math.min(len, c + cs - 64), (byte) (c / cs));
                        }
                    }
                    img.writeCompressed(off, ByteBuffer.wrap(data));
                    compressedOps++;
                    Files.write(src, data);
                    // qemu-io compresses only over unallocated clusters: its twin gets the data plain
                    commands.add("write -s " + src + " " + off + " " + len);
                    continue;
                }
                img.write(off, ByteBuffer.wrap(data));
                Files.write(src, data);
                commands.add("write -s " + src + " " + off + " " + len);
            }
        }
        qemuIo(theirs, commands, tmp);
        for (Path p : List.of(ours, theirs)) {
            Qemu.Result check = Qemu.check(p);
            assertEquals(0, check.exitCode(), what + ": qemu-img check " + p.getFileName() + "\n" + check.stdout() + check.stderr());
        }
        assertTrue(Qemu.compare(ours, theirs), what + ": qemu-img compare");
        if (compressedOps > 0) {
            // theirs got those writes plain: ours must hold more compressed clusters
            long oursZ = Qemu.checkJson(ours).path("compressed-clusters").asLong();
            long theirsZ = Qemu.checkJson(theirs).path("compressed-clusters").asLong();
            assertTrue(oursZ > theirsZ, what + ": compressed clusters " + oursZ + " against " + theirsZ);
        }
        Qemu.convertToRaw(theirs, raw);
        assertReadsAs(ours, Files.readAllBytes(raw), r, what + " (after the writes)");
    }

    /** One qemu-io process for all the commands, read from its stdin (thousands of -c would take many). */
    private static void qemuIo(Path img, List<String> commands, Path tmp) throws IOException {
        Path script = Files.createTempFile(tmp, "qemu-io", ".txt");
        Files.write(script, commands);
        ProcessBuilder pb = new ProcessBuilder("qemu-io", "-f", "qcow2", img.getFileName().toString())
                .directory(img.toAbsolutePath().getParent().toFile())
                .redirectInput(script.toFile())
                .redirectErrorStream(true);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        try {
            assertEquals(0, p.waitFor(), out);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
        long done = out.lines().filter(l -> l.contains("wrote ") || l.contains("discard ")).count();
        assertEquals(commands.size(), done, "qemu-io did not run every command:\n" + out);
    }

    /**
     * qemu-io commands that leave every kind of cluster: data, compressed (when allowed),
     * zero, written in part (a few subclusters), discarded, untouched.
     */
    private static List<String> setup(Random r, long size, int cs, boolean compressed, boolean v3) {
        List<String> cmds = new ArrayList<>();
        for (long off = 0; off < size; off += cs) {
            int p = 1 + r.nextInt(255);
            switch (r.nextInt(8)) {
                case 0, 1 -> cmds.add("write -P " + p + " " + off + " " + cs);
                case 2 -> cmds.add((compressed ? "write -c -P " : "write -P ") + p + " " + off + " " + cs);
                case 3 -> {
                    if (v3) {
                        cmds.add("write -z " + off + " " + cs);
                    }
                }
                case 4 -> {
                    int piece = 512 * (1 + r.nextInt(Math.max(1, cs / 2048)));
                    int at = 512 * r.nextInt((cs - piece) / 512 + 1);
                    cmds.add("write -P " + p + " " + (off + at) + " " + piece);
                }
                case 5 -> {
                    cmds.add("write -P " + p + " " + off + " " + cs);
                    cmds.add("discard " + off + " " + cs);
                }
                default -> {
                    // untouched: backing data or zeros
                }
            }
        }
        return cmds;
    }

    /** Reads the whole disk with qcow4j in random pieces of up to 5 MiB (read and readShared) and compares with {@code expected}. */
    private static void assertReadsAs(Path img, byte[] expected, Random r, String what) throws IOException {
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            assertEquals(expected.length, image.size(), what);
            long pos = 0;
            while (pos < expected.length) {
                int len = (int) Math.min(expected.length - pos, 1 + r.nextInt(r.nextBoolean() ? 5 << 20 : 70_000));
                ByteBuffer buf = r.nextBoolean() ? ByteBuffer.allocate(len) : ByteBuffer.allocateDirect(len);
                if (r.nextBoolean()) {
                    image.read(pos, buf);
                } else {
                    // the NBD server's read: data clusters read after the image's lock is let go
                    image.readShared(pos, buf);
                }
                assertEquals(len, buf.position(), what);
                int at = buf.flip().mismatch(ByteBuffer.wrap(expected, (int) pos, len));
                if (at >= 0) {
                    throw new AssertionError(what + ": read of " + len + " at " + pos + " differs at " + (pos + at));
                }
                pos += len;
            }
        }
    }
}
