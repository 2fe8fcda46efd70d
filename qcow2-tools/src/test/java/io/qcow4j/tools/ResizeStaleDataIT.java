package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.storage.HostFile;
import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Issue 16, items 2 to 5: what a resize leaves readable. Each scenario runs through qcow4j
 * on one twin and through qemu-img on the other (both made by qemu-img), and compares the
 * data (qemu-io -P, qemu-img compare), qemu-img check, qemu-img map and the messages and
 * exit codes. Where qcow4j deliberately goes further than QEMU 7.2 (zeros in the tail of
 * the cluster a shrink cut through, when no longer backing file makes QEMU zero it at the
 * next grow), qcow4j's result is checked against what the guest must see, and the twins
 * are compared only up to the shrunk size.
 */
class ResizeStaleDataIT {
    private static final int K = 1024;

    @TempDir
    Path tmp;

    /** Two directories, ours and theirs; each gets the same base (if any) and top, by qemu-img. */
    private List<Path> twins(String topOpts, String topSize, String baseSize, String... topIo) {
        List<Path> dirs = new ArrayList<>();
        for (String who : List.of("ours", "theirs")) {
            Path d = Cli.mkdir(tmp, who);
            List<String> create = new ArrayList<>(List.of("create", "-q", "-f", "qcow2", "-o", topOpts));
            if (baseSize != null) {
                qemuImg(d, "create", "-q", "-f", "qcow2", "base.qcow2", baseSize).assertOk();
                qemuIo(d, "-c", "write -q -P 0x11 0 " + baseSize, "base.qcow2").assertOk();
                create.addAll(List.of("-b", "base.qcow2", "-F", "qcow2"));
            }
            create.addAll(List.of("top.qcow2", topSize));
            qemuImg(d, create.toArray(new String[0])).assertOk();
            io(d, "top.qcow2", topIo);
            dirs.add(d);
        }
        return dirs;
    }

    private static void io(Path dir, String img, String... commands) {
        if (commands.length == 0) {
            return;
        }
        List<String> args = new ArrayList<>();
        for (String c : commands) {
            args.add("-c");
            args.add(c);
        }
        args.add(img);
        Qemu.Result r = qemuIo(dir, args.toArray(new String[0])).assertOk();
        assertFalse(r.stdout().contains("failed") || r.stdout().contains("Pattern verification"), r.describe());
    }

    /** The same command line through qcow4j (ours) and qemu-img (theirs): same exit code, output and message. */
    private static Qemu.Result both(List<Path> d, String... args) {
        Qemu.Result ours = qcow4j(d.get(0), args);
        Qemu.Result theirs = qemuImg(d.get(1), args);
        String what = String.join(" ", args) + "\n" + ours.describe() + "\n" + theirs.describe();
        assertEquals(theirs.exitCode(), ours.exitCode(), what);
        assertEquals(theirs.stdout(), ours.stdout(), what);
        assertEquals(theirs.stderr().replace("qemu-img:", "qcow4j:"), ours.stderr(), what);
        Cli.assertNoStackTrace(ours);
        return ours;
    }

    private static String map(Path dir, String img, String... extra) {
        List<String> args = new ArrayList<>(List.of("map", "--output=json"));
        args.addAll(List.of(extra));
        args.add(img);
        return qemuImg(dir, args.toArray(new String[0])).assertOk().stdout();
    }

    /**
     * A map without host offsets, runs merged where only the offsets told them apart: which
     * free cluster an allocation takes (a freed L1 table's, or one at the end) and where the
     * host file has holes are the writer's choice; what the guest sees, and which layer
     * answers, are not.
     */
    static List<String> withoutOffsets(String mapJson) {
        List<String> runs = new ArrayList<>();
        long start = 0;
        long length = 0;
        String kind = null;
        for (JsonNode e : Cli.json(mapJson)) {
            // a data run's zero flag tells a hole in the host file (QEMU leaves some where it
            // skips writing a fresh cluster's zeros): layout, not content
            boolean data = e.get("data").asBoolean();
            String k = "depth " + e.get("depth") + (e.get("present").asBoolean() ? " present" : "")
                    + (data ? " data" : e.get("zero").asBoolean() ? " zero" : "") + (e.has("offset") ? " offset" : "");
            if (k.equals(kind)) {
                length += e.get("length").asLong();
                continue;
            }
            if (kind != null) {
                runs.add(start + "+" + length + ": " + kind);
            }
            start = e.get("start").asLong();
            length = e.get("length").asLong();
            kind = k;
        }
        if (kind != null) {
            runs.add(start + "+" + length + ": " + kind);
        }
        return runs;
    }

    private static void assertSameImages(List<Path> d, String img) {
        assertEquals(withoutOffsets(map(d.get(1), img)), withoutOffsets(map(d.get(0), img)), "qemu-img map of the twins");
        Qemu.Result cmp = qemuImg(d.get(0), "compare", img, d.get(1).resolve(img).toString());
        assertEquals(0, cmp.exitCode(), cmp.describe());
        for (Path dir : d) {
            Cli.checkJson(dir, img);
        }
    }

    // ------------------------------------------------------------------ item 2

    /**
     * A 1 MiB top of 0x22 shrunk to 520 KiB and grown to 567 KiB: the bytes from 520 KiB
     * on read as zeros, with a longer, a shorter and no backing file, extended L2 on and off.
     * A longer backing file makes QEMU zero the new range too (twins identical); otherwise
     * QEMU 7.2 shows the old 0x22 of the cut cluster again, and qcow4j does not.
     */
    @ParameterizedTest(name = "extended_l2={0} base={1}")
    @CsvSource({"off, none, false", "off, 1M, true", "off, 256k, false", "on, none, false", "on, 1M, true", "on, 256k, false"})
    void shrinkThenGrowReadsZeros(String extendedL2, String base, boolean qemuZeroes) throws IOException {
        List<Path> d = twins("extended_l2=" + extendedL2, "1M", base.equals("none") ? null : base, "write -q -P 0x22 0 1M");
        both(d, "resize", "--shrink", "top.qcow2", "520K");
        // the shrink freed the clusters past the end and cut the file as qemu-img does
        assertEquals(Files.size(d.get(1).resolve("top.qcow2")), Files.size(d.get(0).resolve("top.qcow2")));
        Cli.checkJson(d.get(0), "top.qcow2");
        // the library's grow over an image qemu-img shrank: zeros too
        Path lib = d.get(1).resolve("lib.qcow2");
        Files.copy(d.get(1).resolve("top.qcow2"), lib, StandardCopyOption.REPLACE_EXISTING);
        try (Qcow2Image img = Qcow2Image.open(lib, OpenOptions.readWrite())) {
            img.resize(567 * K);
        }
        both(d, "resize", "top.qcow2", "567K");
        for (String img : List.of("top.qcow2", "lib.qcow2")) {
            Path dir = img.equals("lib.qcow2") ? d.get(1) : d.get(0);
            io(dir, img, "read -q -P 0x22 0 520k", "read -q -P 0 520k 47k");
            Cli.checkJson(dir, img);
        }
        if (qemuZeroes) {
            assertSameImages(d, "top.qcow2");
        } else {
            // beyond QEMU: only the part both keep is compared
            assertEquals(withoutOffsets(map(d.get(1), "top.qcow2", "--max-length=520k")),
                    withoutOffsets(map(d.get(0), "top.qcow2", "--max-length=520k")));
            Cli.checkJson(d.get(1), "top.qcow2");
        }
    }

    // ------------------------------------------------------------------ item 3

    /**
     * Growing a top whose backing file is longer: the new range reads as zeros, as QEMU
     * makes it (zero data to the next subcluster boundary, zero flags after, across new L2
     * tables); a v2 image, which has no zero flag, is refused in qemu-img's words and left
     * unchanged. The old size (1000 KiB) is not a whole number of clusters.
     */
    @ParameterizedTest(name = "{0} to {1}")
    @CsvSource(delimiter = ';', value = {
            "extended_l2=off; 1008k", "extended_l2=off; 1100M",
            "extended_l2=on; 1008k", "extended_l2=on; 1100M",
            "extended_l2=on,preallocation=metadata; 3M",
            "extended_l2=on,cluster_size=16k; 3M",
            "compat=0.10; 1008k", "compat=0.10; 3M"})
    void growOverLongerBackingReadsZeros(String opts, String newSize) throws IOException {
        List<Path> d = twins(opts, "1000k", "4M", "write -q -P 0x22 0 900k");
        byte[] before = Files.readAllBytes(d.get(0).resolve("top.qcow2"));
        Qemu.Result r = both(d, "resize", "top.qcow2", newSize);
        if (r.exitCode() != 0) {
            assertEquals("qcow4j: Failed to zero out new clusters: Operation not supported\n", r.stderr());
            assertArrayEquals(before, Files.readAllBytes(d.get(0).resolve("top.qcow2")));
            return;
        }
        long size = Cli.json(qemuImg(d.get(0), "info", "--output=json", "top.qcow2").stdout()).get("virtual-size").asLong();
        io(d.get(0), "top.qcow2", "read -q -P 0x22 0 900k", "read -q -P 0x11 900k 100k",
                "read -q -P 0 1000k " + Math.min(size - 1000 * K, 4L << 20));
        assertSameImages(d, "top.qcow2");
    }

    /** A v2 image with internal snapshots: qemu-img's refusal, the file unchanged. */
    @Test
    void v2WithSnapshotsIsRefused() throws IOException {
        List<Path> d = twins("compat=0.10", "1M", null, "write -q -P 3 0 1M");
        for (Path dir : d) {
            qemuImg(dir, "snapshot", "-c", "s", "top.qcow2").assertOk();
        }
        byte[] before = Files.readAllBytes(d.get(0).resolve("top.qcow2"));
        for (String size : List.of("2M", "512k")) {
            Qemu.Result r = both(d, "resize", "--shrink", "top.qcow2", size);
            assertEquals(1, r.exitCode());
            assertArrayEquals(before, Files.readAllBytes(d.get(0).resolve("top.qcow2")));
        }
    }

    // ------------------------------------------------------------------ item 4

    /**
     * External data files: a raw one's bytes past the old end (written there by the user)
     * become the grown disk's data and are mapped, as qemu-img maps them; a non-raw one is
     * cut to the size. After a shrink and a grow, the cut cluster reads zeros in both.
     */
    @ParameterizedTest(name = "data_file_raw={0} extended_l2={1}")
    @CsvSource({"on, off", "on, on", "off, off", "off, on"})
    void dataFileGrowAsQemuImg(String raw, String extendedL2) throws IOException {
        List<Path> d = twins("data_file=d.raw,data_file_raw=" + raw + ",extended_l2=" + extendedL2, "1M", null,
                "write -q -P 5 0 1M");
        for (Path dir : d) {
            byte[] more = new byte[2 << 20];
            java.util.Arrays.fill(more, (byte) 7);
            try (FileChannel ch = FileChannel.open(dir.resolve("d.raw"), StandardOpenOption.WRITE)) {
                ch.write(java.nio.ByteBuffer.wrap(more), 1 << 20);
            }
        }
        both(d, "resize", "top.qcow2", "2560K");
        assertEquals(Files.size(d.get(1).resolve("d.raw")), Files.size(d.get(0).resolve("d.raw")));
        // with subclusters qemu leaves the new clusters' subclusters unallocated: zeros, not the raw bytes
        io(d.get(0), "top.qcow2", "read -q -P " + (raw.equals("on") && extendedL2.equals("off") ? 7 : 0) + " 1M 1536k");
        assertSameImages(d, "top.qcow2");
        both(d, "resize", "--shrink", "top.qcow2", "300K");
        both(d, "resize", "top.qcow2", "1M");
        assertEquals(Files.size(d.get(1).resolve("d.raw")), Files.size(d.get(0).resolve("d.raw")));
        io(d.get(0), "top.qcow2", "read -q -P 5 0 300k", "read -q -P 0 300k 724k");
        assertSameImages(d, "top.qcow2");
    }

    // ------------------------------------------------------------------ item 5

    /**
     * iotest 250's shape: data written near the end of a metadata-preallocated image, then
     * a shrink far below it. The clusters past the end are freed and the file is cut as
     * qemu-img cuts it, so the space comes back ("Disk usage delta" 15 MiB, not 0); the map
     * of what remains is qemu-img's (holes of the preallocated clusters read as zeros).
     */
    @Test
    void shrinkFreesSpaceAsQemuImg() throws IOException {
        List<Path> d = twins("cluster_size=1M,preallocation=metadata", "200M", null,
                "write -q -P 1 0 1M", "write -q -P 2 180M 15M");
        long[] before = {usage(d.get(0)), usage(d.get(1))};
        both(d, "resize", "--shrink", "top.qcow2", "5M");
        long oursDelta = before[0] - usage(d.get(0));
        long theirsDelta = before[1] - usage(d.get(1));
        assertEquals(Files.size(d.get(1).resolve("top.qcow2")), Files.size(d.get(0).resolve("top.qcow2")));
        assertTrue(oursDelta >= 15L << 20, "Disk usage delta " + oursDelta + " (qemu-img: " + theirsDelta + ")");
        assertEquals(theirsDelta, oursDelta, "Disk usage delta");
        io(d.get(0), "top.qcow2", "read -q -P 1 0 1M", "read -q -P 0 1M 4M");
        for (Path dir : d) {
            fsync(dir.resolve("top.qcow2"));
        }
        assertSameImages(d, "top.qcow2");
        assertMapAsQemuImg(d.get(0), "top.qcow2");
    }

    /**
     * qemu-img map of metadata-preallocated images (made and written by qemu): clusters
     * allocated but never written are holes in the file, which qemu reports as zero (and
     * data), and the human map leaves out. Over a backing file and with a data file too.
     */
    @Test
    void mapOfPreallocatedImagesAsQemuImg() {
        Path dir = Cli.mkdir(tmp, "map");
        qemuImg(dir, "create", "-q", "-f", "qcow2", "-o", "preallocation=metadata", "p.qcow2", "4M").assertOk();
        io(dir, "p.qcow2", "write -q -P 1 64k 64k", "write -q -P 2 1M 100k");
        qemuImg(dir, "create", "-q", "-f", "qcow2", "b.qcow2", "8M").assertOk();
        io(dir, "b.qcow2", "write -q -P 1 0 8M");
        qemuImg(dir, "create", "-q", "-f", "qcow2", "-o", "preallocation=metadata,extended_l2=on,cluster_size=128k",
                "-b", "b.qcow2", "-F", "qcow2", "e.qcow2", "6M").assertOk();
        io(dir, "e.qcow2", "write -q -P 2 100k 300k", "write -q -P 3 3M 4k");
        qemuImg(dir, "create", "-q", "-f", "qcow2", "-o", "preallocation=metadata,data_file=d.raw", "d.qcow2", "4M").assertOk();
        io(dir, "d.qcow2", "write -q -P 2 100k 300k");
        for (String f : List.of("p.qcow2", "b.qcow2", "e.qcow2", "d.qcow2", "d.raw")) {
            fsync(dir.resolve(f));
        }
        for (String img : List.of("p.qcow2", "e.qcow2", "d.qcow2")) {
            assertMapAsQemuImg(dir, img);
        }
        // the holes under the preallocated clusters are there: zero and data both
        assertTrue(map(dir, "p.qcow2").contains("\"zero\": true, \"data\": true"));
    }

    private static void assertMapAsQemuImg(Path dir, String img) {
        for (String out : List.of("--output=json", "--output=human")) {
            Qemu.Result theirs = qemuImg(dir, "map", out, img).assertOk();
            Qemu.Result ours = qcow4j(dir, "map", out, img);
            assertEquals(theirs.stdout(), ours.stdout(), img + " " + out + "\n" + ours.describe());
            assertEquals(0, ours.exitCode(), ours.describe());
        }
    }

    /** Bytes the file occupies (st_blocks), what du and iotest 250 measure. */
    private static long usage(Path dir) {
        Path f = dir.resolve("top.qcow2");
        fsync(f);
        long blocks = HostFile.blocks(f);
        assertTrue(blocks >= 0, "st_blocks unavailable");
        return blocks * 512;
    }

    /** Flushed, so the file system's answer about holes does not change under the two maps. */
    private static void fsync(Path f) {
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.WRITE)) {
            ch.force(true);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
