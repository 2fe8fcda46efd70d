package io.qcow4j.backup;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Verify finds one flipped byte anywhere in any file of a set; prune keeps every kept point restorable. */
class VerifyPruneTest {
    private static final long SEED = Long.getLong("qcow4j.seed", 0);

    @TempDir
    Path tmp;
    Path img;
    Path dir;
    final List<String> points = new ArrayList<>();
    final List<Path> raws = new ArrayList<>();

    /** full, inc, inc, diff, inc. */
    private void fiveBackups(Format format, boolean compress) throws IOException {
        img = tmp.resolve("disk.qcow2");
        dir = tmp.resolve("set");
        Qemu.create(img, "16M");
        Sets.io(img, "write -P 0x11 0 2M", "write -P 0x12 5M 1M");
        Level[] levels = {Level.FULL, Level.INC, Level.INC, Level.DIFF, Level.INC};
        for (int i = 0; i < levels.length; i++) {
            if (i > 0) {
                Sets.io(img, "write -P " + (0x20 + i) + " " + i + "M 64k", "write -P 0x3" + i + " " + (8 + i) + "M 4k");
            }
            BackupResult r = Sets.backup(img, dir, levels[i], format, compress);
            points.add(r.checkpoint() != null ? r.checkpoint() : r.file().getFileName().toString());
            raws.add(Sets.snapshot(img, tmp.resolve("p" + i + ".raw")));
        }
    }

    @ParameterizedTest(name = "{0} compressed={1}")
    @CsvSource({"qcow2,false", "stream,false", "stream,true"})
    void verifyFindsOneFlippedByteInAnyFile(String fmt, boolean compress) throws IOException {
        fiveBackups(Format.parse(fmt), compress);
        assertTrue(BackupSet.verify(dir, Progress.none()).good());
        SplittableRandom rnd = new SplittableRandom(SEED);
        for (BackupRecord b : Manifest.load(dir).backups) {
            Path f = dir.resolve(b.file);
            long size = Files.size(f);
            for (long at : new long[] {0, size / 2, size - 1, rnd.nextLong(size)}) {
                flip(f, at);
                VerifyReport v = BackupSet.verify(dir, Progress.none());
                assertFalse(v.good(), "seed " + SEED + ": flip at " + at + " of " + b.file);
                for (VerifyReport.FileReport r : v.files()) {
                    if (r.file().equals(b.file)) {
                        assertEquals("damaged", r.status());
                        assertEquals(at / Files2.CHUNK * Files2.CHUNK, r.offset(), r.reason());
                    } else {
                        assertTrue(r.ok(), r.toString());
                    }
                }
                flip(f, at);
            }
        }
        assertTrue(BackupSet.verify(dir, Progress.none()).good());
    }

    private static void flip(Path f, long at) throws IOException {
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            ByteBuffer b = ByteBuffer.allocate(1);
            ch.read(b, at);
            b.put(0, (byte) (b.get(0) ^ 0x40)).rewind();
            ch.write(b, at);
        }
    }

    @ParameterizedTest(name = "{0} compressed={1}")
    @CsvSource({"qcow2,false", "stream,true"})
    void pruneKeepsEveryKeptPointRestorable(String fmt, boolean compress) throws IOException {
        Format format = Format.parse(fmt);
        fiveBackups(format, compress);
        List<String> gone = BackupSet.prune(dir, 3, Progress.none());
        assertEquals(List.of("disk.001.full" + format.extension(), "disk.002.inc" + format.extension(),
                "disk.003.inc" + format.extension()), gone);
        for (String g : gone) {
            assertFalse(Files.exists(dir.resolve(g)), g);
        }
        Manifest m = Manifest.load(dir);
        assertEquals(List.of("disk.003.full" + format.extension(), "disk.004.diff" + format.extension(),
                "disk.005.inc" + format.extension()), m.backups.stream().map(b -> b.file).toList());
        assertEquals(points.get(2), m.backups.get(0).checkpoint);
        for (int i = 2; i < 5; i++) {
            Sets.assertRestores(dir, points.get(i), raws.get(i), tmp.resolve("r" + i + ".qcow2"), false);
        }
        assertTrue(BackupSet.verify(dir, Progress.none()).good());
        if (format == Format.QCOW2) {
            for (int i = 0; i < 3; i++) {
                Path f = dir.resolve(m.backups.get(i).file);
                Qemu.check(f).assertOk();
                Path conv = tmp.resolve("conv" + i + ".raw");
                Qemu.convertToRaw(f, conv);
                assertTrue(Qemu.compare(conv, raws.get(i + 2)), f + " by qemu-img convert");
            }
        }
        // down to one point; the chain goes on from its checkpoint
        BackupSet.prune(dir, 1, Progress.none());
        assertEquals(1, Manifest.load(dir).backups.size());
        Sets.assertRestores(dir, points.get(4), raws.get(4), tmp.resolve("last.raw"), true);
        Sets.io(img, "write -P 0x77 15M 64k");
        BackupResult inc = Sets.backup(img, dir, Level.AUTO, format, compress);
        assertEquals(Level.INC, inc.level());
        assertEquals(65536, inc.dataBytes());
        Sets.assertRestores(dir, inc.checkpoint(), Sets.snapshot(img, tmp.resolve("now.raw")), tmp.resolve("now.qcow2"), false);
        assertTrue(BackupSet.verify(dir, Progress.none()).good());
    }
}
