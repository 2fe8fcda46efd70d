package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Issue 16, items 7 to 9: one image damaged alike twice ("twins": ours/img.qcow2 and
 * theirs/img.qcow2), each command run by qcow4j on one and by qemu-img (qemu-io) on the
 * other; exit codes, stdout and stderr must be qemu's, and afterwards both files must hold
 * the same data, check the same and map the same in qemu-img's eyes.
 *
 * <p>The base: 1 MiB, 64 KiB clusters; header 0, refcount table 0x10000, refcount block
 * 0x20000, L1 0x30000, L2 0x40000, data 0x50000 (guest 0, 0x5a) and 0x60000-0x7ffff (guest
 * 512 KiB, 128 KiB of 0x33). Files are written whole, without holes: qemu-img map reads a
 * sparse file's holes when an image looks metadata-preallocated (see qemu-quirks.md).
 */
class DamagedTwinsIT {
    private static final String IMG = "img.qcow2";
    private static final long COPIED = 1L << 63;

    @TempDir
    static Path shared;

    @TempDir
    Path tmp;

    private static byte[] base;

    @BeforeAll
    static void makeBase() throws IOException {
        Cli.qemuImg(shared, "create", "-q", "-f", "qcow2", IMG, "1M").assertOk();
        Cli.qemuIo(shared, "-c", "write -P 0x5a 0 64k", "-c", "write -P 0x33 512k 128k", IMG).assertOk();
        base = Files.readAllBytes(shared.resolve(IMG));
        assertEquals(0x80000, base.length, "the layout the cases below edit");
    }

    // ================================================================ item 7: check -r all

    /** A damage of the refcount structure and whether qemu still opens the image to check it. */
    record Damage(String name, Consumer<ByteBuffer> edit) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Arguments> refcountDamages() {
        return Stream.of(
            new Damage("refcount_table_clusters 0", b -> b.putInt(56, 0)),
            new Damage("refcount table at offset 0, 0 clusters", b -> b.putLong(48, 0).putInt(56, 0)),
            new Damage("refcount table over the header", b -> b.putLong(48, 0)),
            new Damage("refcount table past the end of the file", b -> b.putLong(48, 0x100000)),
            new Damage("refcount table over the L1 table", b -> b.putLong(48, 0x30000)),
            new Damage("refcount table over the L2 table", b -> b.putLong(48, 0x40000)),
            new Damage("refcount table over the L1 and L2 tables", b -> b.putInt(56, 2)),
            new Damage("refcount block offset 0", b -> b.putLong(0x10000, 0)),
            new Damage("refcount block past the end of the file", b -> b.putLong(0x10000, 0x200000)),
            new Damage("refcount block over the L1 table", b -> b.putLong(0x10000, 0x30000)),
            new Damage("refcount block unaligned", b -> b.putLong(0x10000, 0x20200))
        ).map(Arguments::of);
    }

    /**
     * Without -r: qemu's report, exit code, and the file untouched. With -r all: qemu's
     * report and exit code, and the repaired twins hold the same data (the original data:
     * nothing lost) and check and map the same.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("refcountDamages")
    void checkRepairsTheRefcountStructureAsQemuDoes(Damage damage) {
        Twins t = Twins.of(tmp, damaged(damage.edit()));
        String before = t.sha256Ours();
        t.same("check", IMG);
        t.same("check", "--output=json", IMG);
        assertEquals(before, t.sha256Ours(), "check without -r changed the file");
        t.same("check", "-r", "all", IMG);
        t.sameState();
        t.ioOnOurs("read -P 0x5a 0 64k", "read -P 0 64k 448k", "read -P 0x33 512k 128k", "read -P 0 640k 384k");
    }

    static Stream<Arguments> refusedDamages() {
        return Stream.of(
            Arguments.of(new Damage("refcount table unaligned", b -> b.putLong(48, 0x10200)),
                "refcount table at offset 0x10200: Reference count table offset invalid"),
            Arguments.of(new Damage("refcount table over 8 MiB", b -> b.putInt(56, 129)),
                "refcount table at offset 0x10000: Reference count table too large"));
    }

    /** What qemu refuses even to check: one line in its words (after our structure and offset), the file unchanged. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("refusedDamages")
    void checkRefusesWhatQemuRefuses(Damage damage, String why) {
        Twins t = Twins.of(tmp, damaged(damage.edit()));
        String before = t.sha256Ours();
        for (String[] args : new String[][] {{"check", IMG}, {"check", "-r", "all", IMG}, {"info", IMG}}) {
            Qemu.Result theirs = Cli.qemuImg(t.theirs, args);
            Qemu.Result ours = Cli.qcow4j(t.ours, args);
            assertEquals(1, theirs.exitCode(), theirs.describe());
            Cli.assertOneLineError(ours, 1, "Could not open 'img.qcow2': " + why);
            assertTrue(why.endsWith(Cli.qemuMessage(theirs).replace("Could not open 'img.qcow2': ", "")), theirs.describe());
        }
        assertEquals(before, t.sha256Ours());
    }

    // ================================================================ item 8: a cluster cut off

    /**
     * The last data cluster (host 0x70000, guest 576 KiB) cut off the end of the file: it
     * maps as data at its offset and reads as zeros, as in qemu; check reports it alike;
     * a write there is refused and changes nothing (qemu writes past the end of the file).
     */
    @Test
    void aDataClusterCutOffTheEndOfTheFileMapsAndReadsAsZeros() throws IOException {
        Twins t = Twins.of(tmp, Arrays.copyOf(base, 0x70000));
        byte[] expected = new byte[1 << 20];
        Arrays.fill(expected, 0, 0x10000, (byte) 0x5a);
        Arrays.fill(expected, 0x80000, 0x90000, (byte) 0x33);
        for (Path dir : List.of(t.ours, t.theirs)) {
            Files.write(dir.resolve("expected.raw"), expected);
        }
        t.same("map", "--output=json", IMG);
        t.same("map", IMG);
        t.same("compare", IMG, "expected.raw");
        t.same("check", IMG);
        t.same("convert", "-O", "raw", IMG, "out.raw");
        assertArrayEquals(expected, Files.readAllBytes(t.ours.resolve("out.raw")));
        t.sameIo("-r", "-c", "read -P 0x33 512k 64k", "-c", "read -P 0 576k 64k", "-c", "read -P 0x33 576k 4k", IMG);
        // no repair for it in qemu either
        t.same("check", "-r", "all", IMG);
        t.sameState();
        String before = t.sha256Ours();
        Qemu.Result write = Cli.qcow4j(t.ours, "io", "-c", "write -P 0x44 580k 4k", IMG);
        assertEquals(1, write.exitCode(), write.describe());
        assertTrue(write.stdout().contains("cluster offset 0x70000 invalid"), write.describe());
        assertEquals(before, t.sha256Ours(), "a refused write changed the file");
    }

    // ================================================================ item 9: feature bits

    static Stream<Arguments> unknownIncompatible() {
        return Stream.of(
            Arguments.of("one unnamed", 1L << 5, List.of()),
            Arguments.of("one named", 1L << 5, List.of("0:5:Test feature")),
            Arguments.of("two named, in table order", 1L << 63 | 1L << 5, List.of("0:63:Other one", "0:5:Test feature")),
            Arguments.of("named and unnamed", 1L << 63 | 1L << 6 | 1L << 5, List.of("0:6:Test feature")),
            Arguments.of("with a known bit", 1L << 5 | 1, List.of("0:5:Test feature")),
            Arguments.of("named as compatible only", 1L << 5, List.of("1:5:Compatible one")),
            Arguments.of("an empty name ends the table", 1L << 63 | 1L << 5, List.of("0:5:", "0:63:Other one")),
            Arguments.of("a name of 46 bytes", 1L << 5, List.of("0:5:" + "abcdefghij".repeat(4) + "abcdef")),
            Arguments.of("the first of two names", 1L << 5, List.of("0:5:Test feature", "0:5:Second name")),
            // qemu's 1ULL << 69 is 1 << 5 on the machines it runs on
            Arguments.of("a bit number over 63", 1L << 5, List.of("0:69:Bit sixty-nine")));
    }

    /** qemu's one message: the names from the image's feature table in its order, then the rest as one mask. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("unknownIncompatible")
    void unknownIncompatibleFeaturesAreNamedAsQemuNamesThem(String name, long bits, List<String> entries) {
        Twins t = Twins.of(tmp, withFeatures(bits, 0, 0, entries));
        String before = t.sha256Ours();
        t.same("info", IMG);
        t.same("check", IMG);
        t.same("check", "-r", "all", IMG);
        assertEquals(before, t.sha256Ours());
    }

    /**
     * Unknown autoclear bits: check leaves them, a repair (-r leaks or all) clears them as
     * qemu's read-write open does. Unknown compatible bits stay.
     */
    @Test
    void repairClearsUnknownAutoclearBitsAndKeepsUnknownCompatibleOnes() throws IOException {
        byte[] image = withFeatures(0, 1L << 1, 1L << 5 | 1L << 40, List.of("2:5:Autoclear one", "1:1:Compatible one"));
        for (String mode : List.of("leaks", "all")) {
            Twins t = Twins.of(Cli.mkdir(tmp, mode), image);
            String before = t.sha256Ours();
            t.same("check", IMG);
            assertEquals(before, t.sha256Ours());
            t.same("check", "-r", mode, IMG);
            t.sameState();
            for (Path dir : List.of(t.ours, t.theirs)) {
                ByteBuffer h = ByteBuffer.wrap(Files.readAllBytes(dir.resolve(IMG)));
                assertEquals(0, h.getLong(88), dir + ": autoclear bits");
                assertEquals(1L << 1, h.getLong(80), dir + ": compatible bits");
            }
        }
    }

    // ================================================================ helpers

    private static byte[] damaged(Consumer<ByteBuffer> edit) {
        byte[] b = base.clone();
        edit.accept(ByteBuffer.wrap(b));
        return b;
    }

    /**
     * The base with these feature bits and its feature name table's last entries replaced by
     * {@code entries} ("type:bit:name"), as a newer writer might have named its features.
     */
    private static byte[] withFeatures(long incompatible, long compatible, long autoclear, List<String> entries) {
        byte[] b = base.clone();
        ByteBuffer bb = ByteBuffer.wrap(b);
        bb.putLong(72, incompatible).putLong(80, compatible).putLong(88, autoclear);
        int ext = bb.getInt(100);
        assertEquals(0x6803f857, bb.getInt(ext), "the feature name table comes first");
        int count = bb.getInt(ext + 4) / 48;
        for (int i = 0; i < entries.size(); i++) {
            String[] f = entries.get(i).split(":", 3);
            int at = ext + 8 + (count - entries.size() + i) * 48;
            Arrays.fill(b, at, at + 48, (byte) 0);
            b[at] = (byte) Integer.parseInt(f[0]);
            b[at + 1] = (byte) Integer.parseInt(f[1]);
            byte[] n = f[2].getBytes(StandardCharsets.US_ASCII);
            System.arraycopy(n, 0, b, at + 2, n.length);
        }
        return b;
    }

    /** ours/img.qcow2 for qcow4j and theirs/img.qcow2 for qemu, the same bytes, written without holes. */
    private record Twins(Path ours, Path theirs) {
        static Twins of(Path dir, byte[] image) {
            Twins t = new Twins(Cli.mkdir(dir, "ours"), Cli.mkdir(dir, "theirs"));
            try {
                Files.write(t.ours.resolve(IMG), image);
                Files.write(t.theirs.resolve(IMG), image);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return t;
        }

        /** The command through qcow4j and qemu-img: the same exit code, stdout and stderr. */
        void same(String... args) {
            compare(String.join(" ", args), Cli.qcow4j(ours, args), Cli.qemuImg(theirs, args), false);
        }

        /** qcow4j io and qemu-io: the same, but for qemu-io's timing lines. */
        void sameIo(String... args) {
            compare("io " + String.join(" ", args), Cli.qcow4j(ours, Cli.prepend("io", args)), Cli.qemuIo(theirs, args), true);
        }

        private static void compare(String what, Qemu.Result ours, Qemu.Result theirs, boolean io) {
            String detail = what + "\n" + ours.describe() + "\n" + theirs.describe();
            assertEquals(theirs.exitCode(), ours.exitCode(), detail);
            String want = io ? Cli.withoutTiming(theirs.stdout()) : theirs.stdout();
            assertEquals(want, io ? Cli.withoutTiming(ours.stdout()) : ours.stdout(), detail);
            assertEquals(theirs.stderr().replace("qemu-img: ", "qcow4j: ").replace("qemu-io: ", "qcow4j: "), ours.stderr(), detail);
            Cli.assertNoStackTrace(ours);
        }

        /** In qemu-img's eyes both files now read, check and map the same. */
        void sameState() {
            Path o = ours.resolve(IMG);
            Path t = theirs.resolve(IMG);
            Qemu.Result co = Cli.qemuImg(ours, "check", IMG);
            Qemu.Result ct = Cli.qemuImg(theirs, "check", IMG);
            assertEquals(ct.exitCode(), co.exitCode(), co.describe() + "\n" + ct.describe());
            assertEquals(ct.stdout(), co.stdout());
            assertEquals(ct.stderr(), co.stderr());
            Qemu.Result mo = Cli.qemuImg(ours, "map", "--output=json", IMG);
            assertEquals(Cli.qemuImg(theirs, "map", "--output=json", IMG).stdout(), mo.stdout(), mo.describe());
            Qemu.Result cmp = Qemu.run(tmp(o), Qemu.DEFAULT_TIMEOUT, "qemu-img", "compare", o.toString(), t.toString());
            assertEquals(0, cmp.exitCode(), cmp.describe());
        }

        /** qemu-io reads on our file: every pattern matches. */
        void ioOnOurs(String... reads) {
            String[] args = new String[2 * reads.length + 2];
            args[0] = "-r";
            for (int i = 0; i < reads.length; i++) {
                args[1 + 2 * i] = "-c";
                args[2 + 2 * i] = reads[i];
            }
            args[args.length - 1] = IMG;
            Qemu.Result r = Cli.qemuIo(ours, args);
            assertEquals(0, r.exitCode(), r.describe());
            assertFalse(r.stdout().contains("verification failed") || r.stdout().contains("failed"), r.describe());
        }

        String sha256Ours() {
            return HostileInputIT.sha256(ours.resolve(IMG));
        }

        private static Path tmp(Path p) {
            return p.getParent().getParent();
        }
    }
}
