package io.qcow4j.core.check;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Arrays;
import java.util.List;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.testing.Qemu;

/**
 * Runs our checker and {@code qemu-img check} on the same image and compares everything
 * qemu-img prints; and edits image metadata in place to corrupt it.
 */
final class CheckOracle {
    private CheckOracle() {
    }

    /** Our check of {@code img}, opened read-only in check mode. */
    static CheckResult check(Path img) throws IOException {
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly().checkMode(true).warnings(w -> { }))) {
            return ImageChecker.check(image.engine());
        }
    }

    /** Our repair of {@code img}, opened writable in check mode. */
    static CheckResult repair(Path img, Repair mode) throws IOException {
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite().checkMode(true).warnings(w -> { }))) {
            return ImageChecker.repair(image.engine(), mode);
        }
    }

    /** qemu-img check (human and JSON) and our check give the same report; returns ours. */
    static CheckResult assertCheckLikeQemu(Path img) throws IOException {
        Qemu.Result human = Qemu.check(img);
        Qemu.Result json = Qemu.check(img, "--output=json");
        CheckResult ours = check(img);
        assertSameOutput(human, json, ours, img);
        return ours;
    }

    /**
     * Repairs {@code img} with us and a byte-identical twin with {@code qemu-img check -r};
     * both reports must be the same. Returns ours.
     */
    static CheckResult assertRepairLikeQemu(Path img, Repair mode) throws IOException {
        return repairBoth(img, mode).ours();
    }

    /** Our repair and the twin qemu-img repaired. */
    record Repaired(CheckResult ours, Path qemuTwin) {
    }

    /** Like {@link #assertRepairLikeQemu}, also giving the twin qemu repaired (with the human report). */
    static Repaired repairBoth(Path img, Repair mode) throws IOException {
        return repairBoth(img, mode, true);
    }

    /** {@link #repairBoth(Path, Repair)}; the JSON report is compared only when {@code json} is set. */
    static Repaired repairBoth(Path img, Repair mode, boolean withJson) throws IOException {
        String flag = mode == Repair.ALL ? "all" : "leaks";
        Path twinHuman = twin(img, "qemu-human");
        Path twinJson = withJson ? twin(img, "qemu-json") : null;
        Qemu.Result human = Qemu.check(twinHuman, "-r", flag);
        Qemu.Result json = withJson ? Qemu.check(twinJson, "-r", flag, "--output=json") : null;
        CheckResult ours = repair(img, mode);
        String mine = img.toAbsolutePath().toString();
        assertEquals(human.exitCode(), ours.exitCode(), "exit code of -r " + flag + "\n" + human.describe() + "\nours: " + ours);
        assertEquals(lines(human.stdout()), ours.humanLines(), "stdout of -r " + flag + "\n" + human.describe());
        assertEquals(lines(human.stderr()), ours.stderrLines("qemu-img").stream()
                .map(l -> l.replace(mine, twinHuman.toAbsolutePath().toString())).toList(),
                "stderr of -r " + flag + "\n" + human.describe());
        if (withJson) {
            assertEquals(json.stdout(), orEmpty(ours.json(twinJson.toAbsolutePath().toString())),
                    "JSON of -r " + flag + "\n" + json.describe());
        }
        return new Repaired(ours, twinHuman);
    }

    static void assertSameOutput(Qemu.Result human, Qemu.Result json, CheckResult ours, Path img) {
        String name = img.toAbsolutePath().toString();
        assertEquals(human.exitCode(), ours.exitCode(), "exit code\n" + human.describe() + "\nours: " + ours);
        assertEquals(lines(human.stdout()), ours.humanLines(), "stdout\n" + human.describe());
        assertEquals(lines(human.stderr()), ours.stderrLines("qemu-img"), "stderr\n" + human.describe());
        assertEquals(json.stdout(), orEmpty(ours.json(name)), "JSON\n" + json.describe());
        assertEquals(lines(json.stderr()), ours.stderrLines("qemu-img"), "stderr (JSON)\n" + json.describe());
    }

    private static String orEmpty(String s) {
        return s == null ? "" : s;
    }

    static Path twin(Path img, String tag) throws IOException {
        Path t = img.resolveSibling(tag + "-" + img.getFileName());
        Files.copy(img, t, StandardCopyOption.REPLACE_EXISTING);
        return t;
    }

    static List<String> lines(String s) {
        if (s.isEmpty()) {
            return List.of();
        }
        String t = s.endsWith("\n") ? s.substring(0, s.length() - 1) : s;
        return Arrays.asList(t.split("\n", -1));
    }

    /** qemu-img check finds nothing wrong. */
    static void assertQemuClean(Path img) {
        Qemu.Result r = Qemu.check(img);
        assertEquals(0, r.exitCode(), "qemu-img check after repair\n" + r.describe());
    }

    // ------------------------------------------------------------ editing metadata

    static long readLong(Path f, long off) throws IOException {
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "r")) {
            raf.seek(off);
            return raf.readLong();
        }
    }

    static int readInt(Path f, long off) throws IOException {
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "r")) {
            raf.seek(off);
            return raf.readInt();
        }
    }

    static void writeLong(Path f, long off, long v) throws IOException {
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.seek(off);
            raf.writeLong(v);
        }
    }

    static void writeInt(Path f, long off, int v) throws IOException {
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.seek(off);
            raf.writeInt(v);
        }
    }

    static void writeShort(Path f, long off, int v) throws IOException {
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.seek(off);
            raf.writeShort(v);
        }
    }

    static int clusterBits(Path f) throws IOException {
        return readInt(f, 20);
    }

    static long l1Offset(Path f) throws IOException {
        return readLong(f, 40);
    }

    static long refcountTableOffset(Path f) throws IOException {
        return readLong(f, 48);
    }

    /** File offset of L2 entry {@code index} of the table L1 entry {@code l1Index} points at (standard entries). */
    static long l2EntryAddress(Path f, int l1Index, int index) throws IOException {
        long l2 = readLong(f, l1Offset(f) + 8L * l1Index) & 0x00fffffffffffe00L;
        return l2 + 8L * index;
    }

    /** bitmap_directory_offset from the bitmaps header extension. */
    static long bitmapDirectory(Path f) throws IOException {
        long ext = readInt(f, 100);
        while (true) {
            int type = readInt(f, ext);
            int len = readInt(f, ext + 4);
            if (type == 0) {
                throw new AssertionError("no bitmaps extension in " + f);
            }
            if (type == 0x23852875) {
                return readLong(f, ext + 8 + 16);
            }
            ext += 8 + ((len + 7) & ~7);
        }
    }

    /** Sets a 16-bit refcount (refcount_order 4) of {@code cluster}. */
    static void setRefcount16(Path f, long cluster, int value) throws IOException {
        int bits = clusterBits(f);
        long perBlock = (1L << bits) / 2;
        long block = readLong(f, refcountTableOffset(f) + 8 * (cluster / perBlock)) & ~0x1ffL;
        writeShort(f, block + 2 * (cluster % perBlock), value);
    }
}
