package io.qcow4j.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import com.fasterxml.jackson.databind.JsonNode;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.api.SnapshotException;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Internal snapshots created, applied and deleted by qcow4j, judged by qemu-img: check
 * finds the image clean (no leak, no COPIED flag out of place), convert -l reads every
 * snapshot as the disk was when it was taken, snapshot -l lists the same ids and names.
 * Every step is seeded (the seed is in each message).
 */
class InternalSnapshotsTest {
    private static final long SIZE = 12L << 20;

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "qemu-64k,      qemu,   65536, 16, false, 1.1,  1",
            "qemu-4k,       qemu,    4096, 16, false, 1.1,  2",
            "qcow4j-64k,    qcow4j, 65536, 16, false, 1.1,  3",
            "qcow4j-4k,     qcow4j,  4096, 16, false, 1.1,  4",
            "qemu-ext-l2,   qemu,   65536, 16, true,  1.1,  5",
            "qemu-v2,       qemu,   65536, 16, false, 0.10, 6",
            "qcow4j-rc64,   qcow4j,  4096, 64, false, 1.1,  7",
            "qcow4j-ext-l2, qcow4j, 32768, 16, true,  1.1,  8",
    })
    void createWriteApplyDelete(String name, String writer, int cs, int refcountBits, boolean extendedL2, String compat,
                                long seedBase, @TempDir Path tmp) throws IOException {
        long seed = seedBase * 7919 + Long.getLong("qcow4j.seed", 0);
        Random r = new Random(seed);
        String what = name + " seed " + seed;
        Path img = tmp.resolve("img.qcow2");
        byte[] oracle = writer.equals("qemu")
                ? qemuImage(img, cs, refcountBits, extendedL2, compat, r)
                : qcow4jImage(img, cs, refcountBits, extendedL2, compat, r);
        Map<String, byte[]> byId = new LinkedHashMap<>();
        Map<String, String> names = new LinkedHashMap<>();
        List<String> newNames = List.of("first", "second", "first");
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            for (int round = 0; round < newNames.size(); round++) {
                Snapshot s = image.snapshots().create(newNames.get(round));
                assertEquals(String.valueOf(round + 1), s.id(), what);
                assertEquals(SIZE, s.diskSize(), what);
                byId.put(s.id(), oracle.clone());
                names.put(s.id(), s.name());
                randomOps(image, oracle, r, 40);
            }
        }
        verify(img, byId, names, oracle, tmp, what + " after create");

        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            assertEquals("2", image.snapshots().apply("2").id());
        }
        oracle = byId.get("2").clone();
        verify(img, byId, names, oracle, tmp, what + " after apply 2");

        // by name: the first snapshot named so (id 1), then writes on top
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            assertEquals("1", image.snapshots().apply("first").id());
            oracle = byId.get("1").clone();
            randomOps(image, oracle, r, 40);
        }
        verify(img, byId, names, oracle, tmp, what + " after apply first and writes");

        List<String> order = new ArrayList<>(byId.keySet());
        Collections.shuffle(order, r);
        for (String id : order) {
            try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
                assertEquals(id, image.snapshots().delete(id).id());
                randomOps(image, oracle, r, 10);
            }
            byId.remove(id);
            names.remove(id);
            verify(img, byId, names, oracle, tmp, what + " after delete " + id + " of " + order);
        }
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            Snapshot s = image.snapshots().create("again");
            assertEquals("1", s.id());
            byId.put("1", oracle.clone());
            names.put("1", "again");
            randomOps(image, oracle, r, 20);
        }
        verify(img, byId, names, oracle, tmp, what + " after a new snapshot");
    }

    @Test
    void deleteOrdersLeaveNoLeaks(@TempDir Path tmp) throws IOException {
        long seed = 4242 + Long.getLong("qcow4j.seed", 0);
        int[][] orders = {{1, 2, 3, 4}, {4, 3, 2, 1}, {2, 4, 1, 3}, {3, 1, 4, 2}};
        for (int[] order : orders) {
            Random r = new Random(seed);
            Path img = tmp.resolve("order-" + Arrays.toString(order) + ".qcow2");
            byte[] oracle = qcow4jImage(img, 4096, 16, false, "1.1", r);
            Map<String, byte[]> byId = new LinkedHashMap<>();
            Map<String, String> names = new LinkedHashMap<>();
            try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
                for (int i = 1; i <= 4; i++) {
                    image.snapshots().create("s" + i);
                    byId.put(String.valueOf(i), oracle.clone());
                    names.put(String.valueOf(i), "s" + i);
                    randomOps(image, oracle, r, 25);
                }
            }
            for (int id : order) {
                try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
                    image.snapshots().delete("s" + id);
                }
                byId.remove(String.valueOf(id));
                names.remove(String.valueOf(id));
                verify(img, byId, names, oracle, tmp, "seed " + seed + " order " + Arrays.toString(order) + " after s" + id);
            }
        }
    }

    @Test
    void refcountBits1RefusesBeforeChangingAnything(@TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("rc1.qcow2");
        Qemu.create(img, "4M", "refcount_bits=1");
        Qemu.io(img, "write -P 0x11 0 128k", "write -c -P 0x22 1M 64k").assertOk();
        byte[] before = Files.readAllBytes(img);
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            SnapshotException e = assertThrows(SnapshotException.class, () -> image.snapshots().create("x"));
            assertEquals(SnapshotException.Reason.REFCOUNT_OVERFLOW, e.reason());
            assertTrue(image.snapshots().list().isEmpty());
        }
        assertArrayEquals(before, Files.readAllBytes(img), "the refused snapshot changed the file");
        assertEquals(0, Qemu.check(img).exitCode());

        // nothing to share yet: QEMU takes that snapshot, so do we
        Path empty = tmp.resolve("rc1-empty.qcow2");
        Qemu.create(empty, "4M", "refcount_bits=1");
        try (Qcow2Image image = Qcow2Image.open(empty, OpenOptions.readWrite())) {
            image.snapshots().create("x");
        }
        Qemu.check(empty).assertOk();
        try (Qcow2Image image = Qcow2Image.open(empty, OpenOptions.readWrite())) {
            image.write(0, ByteBuffer.wrap(new byte[] {1, 2, 3}));
            image.snapshots().apply("x");
            image.snapshots().delete("x");
        }
        Qemu.check(empty).assertOk();
    }

    @Test
    void refcountBits2TakesTwoSnapshotsNotThree(@TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("rc2.qcow2");
        Qemu.create(img, "4M", "refcount_bits=2", "cluster_size=4096");
        Qemu.io(img, "write -P 0x13 1M 64k").assertOk();
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            image.snapshots().create("one");
            image.snapshots().create("two");
        }
        Qemu.check(img).assertOk();
        byte[] before = Files.readAllBytes(img);
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            SnapshotException e = assertThrows(SnapshotException.class, () -> image.snapshots().create("three"));
            assertEquals(SnapshotException.Reason.REFCOUNT_OVERFLOW, e.reason());
        }
        assertArrayEquals(before, Files.readAllBytes(img), "the refused snapshot changed the file");
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            image.snapshots().delete("one");
            image.snapshots().create("three");
        }
        Qemu.check(img).assertOk();

        // two compressed clusters packed in one host cluster: refcount 2 already, a snapshot needs 4
        Path packed = tmp.resolve("rc2-packed.qcow2");
        Qemu.create(packed, "4M", "refcount_bits=2", "cluster_size=4096");
        Qemu.io(packed, "write -c -P 0x11 0 4k", "write -c -P 0x12 4k 4k").assertOk();
        before = Files.readAllBytes(packed);
        try (Qcow2Image image = Qcow2Image.open(packed, OpenOptions.readWrite())) {
            SnapshotException e = assertThrows(SnapshotException.class, () -> image.snapshots().create("one"));
            assertEquals(SnapshotException.Reason.REFCOUNT_OVERFLOW, e.reason());
        }
        assertArrayEquals(before, Files.readAllBytes(packed), "the refused snapshot changed the file");
    }

    /** On an overlay, a snapshot holds only the overlay's clusters; applying it shows the backing data again. */
    @Test
    void overlaySnapshots(@TempDir Path tmp) throws IOException {
        Path base = tmp.resolve("base.qcow2");
        Qemu.create(base, "4M");
        Qemu.io(base, "write -P 0x21 0 4M").assertOk();
        Path top = tmp.resolve("top.qcow2");
        Qemu.besideImage(top, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2").assertOk();
        Qemu.io(top, "write -P 0x22 1M 64k", "write -z 2M 64k").assertOk();
        Path raw = tmp.resolve("before.raw");
        Qemu.convertToRaw(top, raw);
        try (Qcow2Image image = Qcow2Image.open(top, OpenOptions.readWrite())) {
            image.snapshots().create("s");
            image.write(0, ByteBuffer.wrap(new byte[100_000]));
            image.discard(1 << 20, 65536);
            image.write(3 << 20, ByteBuffer.wrap(new byte[] {5}));
            image.snapshots().apply("s");
        }
        Qemu.check(top).assertOk();
        Qemu.Result cmp = Qemu.besideImage(top, "qemu-img", "compare", "-F", "raw", "top.qcow2", raw.toString());
        assertEquals(0, cmp.exitCode(), cmp.describe());
        try (Qcow2Image image = Qcow2Image.open(top, OpenOptions.readWrite())) {
            image.snapshots().delete("s");
        }
        Qemu.check(top).assertOk();
    }

    /** 64 KiB clusters over 1.5 GiB: three L2 tables; qcow4j and qemu-img on twins, compared by qemu-img. */
    @Test
    void manyL2TablesLikeQemuImg(@TempDir Path tmp) throws IOException {
        Path ours = tmp.resolve("ours.qcow2");
        Path theirs = tmp.resolve("theirs.qcow2");
        Qemu.create(ours, "1536M");
        Qemu.io(ours, "write -P 0x31 0 1M", "write -c -P 0x32 600M 64k", "write -P 0x33 1200M 200k").assertOk();
        Qemu.qemuImg("snapshot", "-c", "q", ours.toString()).assertOk();
        Qemu.io(ours, "write -P 0x34 100k 64k").assertOk();
        Files.copy(ours, theirs);
        String[][] steps = {{"-c", "a"}, {"IO", "write -P 0x35 600M 4k"}, {"-c", "b"}, {"IO", "discard 1200M 128k"},
                {"-a", "a"}, {"IO", "write -P 0x36 1300M 64k"}, {"-d", "b"}, {"-a", "q"}, {"-d", "a"}, {"-d", "q"}};
        for (String[] step : steps) {
            if (step[0].equals("IO")) {
                Qemu.io(ours, step[1]).assertOk();
                Qemu.io(theirs, step[1]).assertOk();
                continue;
            }
            try (Qcow2Image image = Qcow2Image.open(ours, OpenOptions.readWrite())) {
                switch (step[0]) {
                    case "-c" -> image.snapshots().create(step[1]);
                    case "-a" -> image.snapshots().apply(step[1]);
                    default -> image.snapshots().delete(step[1]);
                }
            }
            Qemu.qemuImg("snapshot", step[0], step[1], theirs.toString()).assertOk();
            String what = String.join(" ", step);
            for (Path p : List.of(ours, theirs)) {
                Qemu.Result check = Qemu.check(p);
                assertEquals(0, check.exitCode(), what + ": " + check.describe());
            }
            assertTrue(Qemu.compare(ours, theirs), what);
            assertEquals(idsAndNames(theirs), idsAndNames(ours), what);
            for (JsonNode s : Qemu.infoJson(theirs).path("snapshots")) {
                String id = s.path("id").asText();
                Path a = tmp.resolve("a.raw");
                Path b = tmp.resolve("b.raw");
                Qemu.qemuImg("convert", "-O", "raw", "-l", "snapshot.id=" + id, ours.toString(), a.toString()).assertOk();
                Qemu.qemuImg("convert", "-O", "raw", "-l", "snapshot.id=" + id, theirs.toString(), b.toString()).assertOk();
                assertEquals(0, Qemu.qemuImg("compare", "-f", "raw", "-F", "raw", a.toString(), b.toString()).exitCode(),
                        what + ": snapshot " + id);
            }
        }
    }

    @Test
    void refusalsChangeNothing(@TempDir Path tmp) throws IOException {
        Path df = tmp.resolve("df.qcow2");
        try (Qcow2Image image = Qcow2Image.create(df, CreateOptions.size(1 << 20).dataFile("df.data"))) {
            image.write(0, ByteBuffer.wrap(new byte[4096]));
        }
        byte[] before = Files.readAllBytes(df);
        try (Qcow2Image image = Qcow2Image.open(df, OpenOptions.readWrite())) {
            SnapshotException e = assertThrows(SnapshotException.class, () -> image.snapshots().create("x"));
            assertEquals(SnapshotException.Reason.NOT_SUPPORTED, e.reason());
        }
        assertArrayEquals(before, Files.readAllBytes(df));

        Path img = tmp.resolve("plain.qcow2");
        Qemu.create(img, "4M");
        Qemu.io(img, "write -P 0x33 0 64k").assertOk();
        Qemu.qemuImg("snapshot", "-c", "s", img.toString()).assertOk();
        before = Files.readAllBytes(img);
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            assertThrows(IllegalArgumentException.class, () -> image.snapshots().apply("nosuch"));
            assertThrows(IllegalArgumentException.class, () -> image.snapshots().delete("nosuch"));
            assertThrows(IllegalArgumentException.class, () -> image.snapshots().create(null));
        }
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            assertThrows(IOException.class, () -> image.snapshots().create("x"));
        }
        assertArrayEquals(before, Files.readAllBytes(img));
    }

    @Test
    void bitmapsAllowCreateAndDeleteButNotApply(@TempDir Path tmp) throws IOException {
        Path img = tmp.resolve("bm.qcow2");
        Qemu.create(img, "8M");
        Qemu.qemuImg("bitmap", "--add", img.toString(), "b").assertOk();
        Qemu.io(img, "write -P 0x44 1M 64k").assertOk();
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            image.snapshots().create("s");
            image.write(2 << 20, ByteBuffer.wrap(new byte[] {9}));
            SnapshotException e = assertThrows(SnapshotException.class, () -> image.snapshots().apply("s"));
            assertEquals(SnapshotException.Reason.BITMAPS, e.reason());
            assertEquals("Device has active dirty bitmaps", e.getMessage());
        }
        Qemu.check(img).assertOk();
        assertEquals("b", Qemu.infoJson(img).path("format-specific").path("data").path("bitmaps").path(0).path("name").asText());
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite())) {
            image.snapshots().delete("s");
        }
        Qemu.check(img).assertOk();
        // the bitmap saw the write after the snapshot (and the one before)
        String map = Qemu.nbdMap(img, "b");
        assertTrue(map.contains("dirty"), map);
    }

    /**
     * An image whose snapshots qemu-img made (sizes differ: one was taken after a resize),
     * and its twin: the same applies, deletes and creates, by qcow4j on one and by
     * qemu-img snapshot on the other, with the same qemu-io writes between them. Both end
     * up clean, with the same disk, the same size and the same snapshots.
     */
    @ParameterizedTest(name = "cluster {0} extended_l2 {1}")
    @CsvSource({"4096, false", "65536, true"})
    void sameAsQemuImgOnTwins(int cs, boolean extendedL2, @TempDir Path tmp) throws IOException {
        long seed = cs * 31L + (extendedL2 ? 1 : 0) + Long.getLong("qcow4j.seed", 0);
        Random r = new Random(seed);
        Path ours = tmp.resolve("ours.qcow2");
        Path theirs = tmp.resolve("theirs.qcow2");
        qemuImage(ours, cs, 16, extendedL2, "1.1", r);
        String[] names = {"a", "b", "a"};
        for (String name : names) {
            QemuTwinTest.runQemuIo(ours, randomIo(r, SIZE, cs));
            Qemu.qemuImg("snapshot", "-c", name, ours.toString()).assertOk();
        }
        Qemu.qemuImg("resize", "-q", ours.toString(), "+8M").assertOk();
        QemuTwinTest.runQemuIo(ours, randomIo(r, SIZE + (8 << 20), cs));
        Qemu.qemuImg("snapshot", "-c", "big", ours.toString()).assertOk();
        QemuTwinTest.runQemuIo(ours, randomIo(r, SIZE + (8 << 20), cs));
        Files.copy(ours, theirs);
        String[][] steps = {
                {"-a", "a"}, {"-d", "b"}, {"-a", "big"}, {"-c", "new"}, {"-d", "a"}, {"-a", "3"},
                {"-c", "a"}, {"-d", "new"}, {"-a", "a"}, {"-d", "big"}, {"-d", "a"}, {"-d", "a"}, {"-c", "last"},
        };
        for (String[] step : steps) {
            String what = "seed " + seed + " step " + String.join(" ", step);
            try (Qcow2Image image = Qcow2Image.open(ours, OpenOptions.readWrite())) {
                switch (step[0]) {
                    case "-a" -> image.snapshots().apply(step[1]);
                    case "-c" -> image.snapshots().create(step[1]);
                    default -> {
                        // qemu-img snapshot -d looks up by name only, the first so named
                        String id = image.snapshots().list().stream().filter(s -> s.name().equals(step[1])).findFirst().orElseThrow().id();
                        image.snapshots().delete(id);
                    }
                }
            }
            Qemu.qemuImg("snapshot", step[0], step[1], theirs.toString()).assertOk();
            assertTwins(ours, theirs, tmp, what);
            long size = Qemu.infoJson(ours).path("virtual-size").asLong();
            List<String> io = randomIo(r, size, cs);
            QemuTwinTest.runQemuIo(ours, io);
            QemuTwinTest.runQemuIo(theirs, io);
        }
        assertTwins(ours, theirs, tmp, "seed " + seed + " after the last writes");
    }

    private static void assertTwins(Path ours, Path theirs, Path tmp, String what) throws IOException {
        for (Path p : List.of(ours, theirs)) {
            Qemu.Result check = Qemu.check(p);
            assertEquals(0, check.exitCode(), what + ": qemu-img check " + p.getFileName() + "\n" + check.stdout() + check.stderr());
        }
        JsonNode a = Qemu.infoJson(ours);
        JsonNode b = Qemu.infoJson(theirs);
        assertEquals(b.path("virtual-size"), a.path("virtual-size"), what);
        assertEquals(withoutNewDates(b.path("snapshots")), withoutNewDates(a.path("snapshots")), what);
        assertTrue(Qemu.compare(ours, theirs), what + ": qemu-img compare");
        for (JsonNode s : b.path("snapshots")) {
            String id = s.path("id").asText();
            assertArrayEquals(snapshotBytes(theirs, id, tmp), snapshotBytes(ours, id, tmp), what + ": snapshot " + id);
        }
    }

    private static List<String> idsAndNames(Path img) {
        List<String> out = new ArrayList<>();
        for (JsonNode s : Qemu.infoJson(img).path("snapshots")) {
            out.add(s.path("id").asText() + " " + s.path("name").asText());
        }
        return out;
    }

    /** Snapshot list entries; the dates of snapshots created during the test differ by a few milliseconds. */
    private static JsonNode withoutNewDates(JsonNode list) {
        JsonNode copy = list.deepCopy();
        for (JsonNode s : copy) {
            String name = s.path("name").asText();
            if (s instanceof com.fasterxml.jackson.databind.node.ObjectNode o && (name.equals("new") || name.equals("last")
                    || (name.equals("a") && Integer.parseInt(s.path("id").asText()) > 4))) {
                o.remove("date-sec");
                o.remove("date-nsec");
            }
        }
        return copy;
    }

    /** qemu-io writes (data, zeros, discards) at seeded places inside a disk of {@code size} bytes. */
    private static List<String> randomIo(Random r, long size, int cs) {
        List<String> cmds = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            long off = RandomOpsOracleTest.randomOffset(r, size, cs);
            int len = (int) Math.min(size - off, RandomOpsOracleTest.randomLength(r, cs));
            cmds.add(switch (r.nextInt(4)) {
                case 0 -> "write -z " + off + " " + len;
                case 1 -> "discard " + off + " " + len;
                default -> "write -P 0x" + Integer.toHexString(1 + r.nextInt(255)) + " " + off + " " + len;
            });
        }
        return cmds;
    }

    // ------------------------------------------------------------ images and operations

    /** An image written by qemu-io: patterns, zeros, compressed clusters; returns its content. */
    static byte[] qemuImage(Path img, int cs, int refcountBits, boolean extendedL2, String compat, Random r) {
        List<String> opts = new ArrayList<>(List.of("cluster_size=" + cs, "refcount_bits=" + refcountBits, "compat=" + compat));
        if (extendedL2) {
            opts.add("extended_l2=on");
        }
        Qemu.create(img, String.valueOf(SIZE), opts.toArray(new String[0]));
        byte[] oracle = new byte[(int) SIZE];
        List<String> cmds = new ArrayList<>();
        // compressed first: qemu-io writes compressed only to unallocated clusters
        java.util.Set<Long> compressed = new java.util.HashSet<>();
        while (compressed.size() < 8) {
            long off = (long) r.nextInt((int) (SIZE / cs)) * cs;
            if (!compressed.add(off)) {
                continue;
            }
            int p = 1 + r.nextInt(255);
            cmds.add("write -c -P 0x" + Integer.toHexString(p) + " " + off + " " + cs);
            Arrays.fill(oracle, (int) off, (int) off + cs, (byte) p);
        }
        for (int i = 0; i < 30; i++) {
            long off = RandomOpsOracleTest.randomOffset(r, SIZE, cs);
            int len = (int) Math.min(SIZE - off, RandomOpsOracleTest.randomLength(r, cs));
            int p = 1 + r.nextInt(255);
            cmds.add("write -P 0x" + Integer.toHexString(p) + " " + off + " " + len);
            Arrays.fill(oracle, (int) off, (int) off + len, (byte) p);
        }
        long z = (long) r.nextInt((int) (SIZE / cs) - 4) * cs;
        cmds.add("write -z " + z + " " + 3 * cs);
        Arrays.fill(oracle, (int) z, (int) z + 3 * cs, (byte) 0);
        QemuTwinTest.runQemuIo(img, cmds);
        return oracle;
    }

    /** The same kind of image written by qcow4j. */
    static byte[] qcow4jImage(Path img, int cs, int refcountBits, boolean extendedL2, String compat, Random r) throws IOException {
        byte[] oracle = new byte[(int) SIZE];
        CreateOptions o = CreateOptions.size(SIZE).clusterSize(cs).refcountBits(refcountBits).compat(compat).extendedL2(extendedL2);
        try (Qcow2Image image = Qcow2Image.create(img, o)) {
            randomOps(image, oracle, r, 60);
        }
        return oracle;
    }

    /** Seeded writes, zero writes, discards and compressed writes, mirrored in {@code oracle}. */
    static void randomOps(Qcow2Image image, byte[] oracle, Random r, int n) throws IOException {
        int cs = image.info().clusterSize();
        long size = image.size();
        for (int i = 0; i < n; i++) {
            long off = RandomOpsOracleTest.randomOffset(r, size, cs);
            int len = (int) Math.min(size - off, RandomOpsOracleTest.randomLength(r, cs));
            switch (r.nextInt(8)) {
                case 0, 1, 2, 3 -> {
                    byte[] d = new byte[len];
                    r.nextBytes(d);
                    image.write(off, ByteBuffer.wrap(d));
                    System.arraycopy(d, 0, oracle, (int) off, len);
                }
                case 4 -> {
                    image.writeZeroes(off, len);
                    Arrays.fill(oracle, (int) off, (int) off + len, (byte) 0);
                }
                case 5 -> {
                    image.discard(off, len);
                    for (long c = (off + cs - 1) / cs * cs; c + cs <= off + len; c += cs) {
                        Arrays.fill(oracle, (int) c, (int) (c + cs), (byte) 0);
                    }
                }
                default -> {
                    long c = off / cs * cs;
                    if (c + cs <= size) {
                        byte[] d = new byte[cs];
                        for (int k = 0; k < cs; k += 256) {
                            Arrays.fill(d, k, Math.min(cs, k + 256), (byte) r.nextInt(4));
                        }
                        image.writeCompressed(c, ByteBuffer.wrap(d));
                        System.arraycopy(d, 0, oracle, (int) c, cs);
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------ judged by qemu-img

    /**
     * qemu-img check is clean; info lists exactly {@code names} (id to name, in order); each
     * snapshot reads (qemu-img convert -l, and qcow4j's view) as {@code byId}; the disk as {@code active}.
     */
    static void verify(Path img, Map<String, byte[]> byId, Map<String, String> names, byte[] active, Path tmp, String what)
            throws IOException {
        Qemu.Result check = Qemu.check(img);
        assertEquals(0, check.exitCode(), what + ": qemu-img check\n" + check.stdout() + check.stderr());
        JsonNode list = Qemu.infoJson(img).path("snapshots");
        Map<String, String> listed = new LinkedHashMap<>();
        for (JsonNode s : list) {
            listed.put(s.path("id").asText(), s.path("name").asText());
        }
        assertEquals(names, listed, what + ": qemu-img info snapshots");
        for (Map.Entry<String, byte[]> e : byId.entrySet()) {
            ReferenceImagesTest.assertSame(e.getValue(), snapshotBytes(img, e.getKey(), tmp), what + ": snapshot " + e.getKey());
        }
        Path raw = tmp.resolve("active.raw");
        Qemu.convertToRaw(img, raw);
        ReferenceImagesTest.assertSame(active, Files.readAllBytes(raw), what + ": active disk");
        Files.delete(raw);
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            for (Map.Entry<String, byte[]> e : byId.entrySet()) {
                ReferenceImagesTest.assertSame(e.getValue(), ReferenceImagesTest.readAll(image.snapshots().view(e.getKey())),
                        what + ": qcow4j view of snapshot " + e.getKey());
            }
        }
    }

    /** A snapshot's disk as qemu-img reads it. */
    static byte[] snapshotBytes(Path img, String id, Path tmp) throws IOException {
        Path raw = tmp.resolve("snap-" + id + ".raw");
        Qemu.qemuImg("convert", "-U", "-O", "raw", "-l", "snapshot.id=" + id, img.toString(), raw.toString()).assertOk();
        byte[] b = Files.readAllBytes(raw);
        Files.delete(raw);
        return b;
    }
}
