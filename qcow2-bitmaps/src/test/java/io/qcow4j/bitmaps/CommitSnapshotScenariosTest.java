package io.qcow4j.bitmaps;

import static io.qcow4j.bitmaps.Oracle.G;
import static io.qcow4j.bitmaps.Oracle.K;
import static io.qcow4j.bitmaps.Oracle.M;
import static io.qcow4j.bitmaps.Oracle.assertDirty;
import static io.qcow4j.bitmaps.Oracle.checkClean;
import static io.qcow4j.bitmaps.Oracle.reads;
import static io.qcow4j.bitmaps.Oracle.runs;
import static io.qcow4j.bitmaps.Oracle.write;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * External snapshots and commits with bitmaps (iotests 176, 254, 260), commit against
 * qemu-img commit on a twin, and failing transactions; qcow4j does the work, qemu-img
 * check, qemu-io, qemu-img compare and nbdinfo check every step.
 */
class CommitSnapshotScenariosTest {
    @TempDir
    Path tmp;

    private static List<List<Long>> ours(DirtyBitmap b) {
        List<List<Long>> out = new ArrayList<>();
        for (DirtyBitmap.Extent e : b.dirtyExtents()) {
            out.add(List.of(e.start(), e.length()));
        }
        return out;
    }

    // --- iotest 260

    @ParameterizedTest
    @ValueSource(strings = {"transient", "persistent", "persistent-restart"})
    void iotest260CommitDirtiesTheBaseBitmap(String variant) throws IOException {
        boolean persistent = variant.startsWith("persistent");
        Path base = Oracle.create(tmp.resolve("base.qcow2"), M);
        Path top = tmp.resolve("top.qcow2");
        Chain chain = Chain.open(base, true, w -> { });
        try {
            Bitmaps.AddOptions o = Bitmaps.AddOptions.defaults().withGranularity(64 * K);
            chain.bitmaps(0).add("bitmap0", persistent ? o : o.transientBitmap());
            write(chain.top(), 0, 64 * K, 1);
            assertEquals(64 * K, chain.bitmaps(0).get("bitmap0").count());
            // a temporary external snapshot: writes land in the overlay, the base bitmap sees none
            chain.transaction().externalSnapshot(top, "base.qcow2").commit();
            write(chain.top(), 64 * K, 512, 2);
            assertEquals(64 * K, chain.bitmaps(1).get("bitmap0").count(), "the base sees no overlay writes");
            if (variant.equals("persistent-restart")) {
                chain.close();
                checkClean(base, top);
                assertDirty(base, "bitmap0", runs(0, 64 * K));
                chain = Chain.open(top, true, w -> { });
            }
            chain.jobs().commit(Jobs.CommitOptions.defaults());
            assertEquals(128 * K, chain.bitmaps(1).get("bitmap0").count(), "the commit dirtied the base");
            assertEquals(runs(0, 128 * K), ours(chain.bitmaps(1).get("bitmap0")));
            // as after QEMU's active commit, the base takes the next write
            write(chain.qcow2(1), 128 * K, 64 * K, 3);
            assertEquals(192 * K, chain.bitmaps(1).get("bitmap0").count());
            chain.reopen(1, false);
        } finally {
            chain.close();
        }
        checkClean(base, top);
        reads(base, "read -P 1 0 64k", "read -P 2 64k 512", "read -P 0 66048 65024", "read -P 3 128k 64k");
        assertTrue(Qemu.compare(base, top));
        if (persistent) {
            assertDirty(base, "bitmap0", runs(0, 192 * K));
        } else {
            assertEquals(List.of(), Oracle.names(base), "a transient bitmap is never stored");
        }
    }

    // --- commit against qemu-img commit

    @Test
    void commitMatchesQemuImgCommitAndTheBaseBitmapCoversTheCommittedRanges() throws IOException {
        List<Path> bases = new ArrayList<>();
        List<Path> tops = new ArrayList<>();
        for (String who : List.of("ours", "theirs")) {
            Path dir = Files.createDirectories(tmp.resolve(who));
            Path base = dir.resolve("base.qcow2");
            Qemu.create(base, "16M");
            Qemu.io(base, "write -P 1 0 16M").assertOk();
            Qemu.qemuImg("bitmap", "--add", "-g", "512", base.toString(), "rec").assertOk();
            Qemu.qemuImg("bitmap", "--add", "--disable", base.toString(), "off").assertOk();
            Path top = dir.resolve("top.qcow2");
            Qemu.besideImage(top, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2")
                    .assertOk();
            Qemu.io(top, "write -P 2 512 512", "write -P 3 3M 100k", "write -z 8M 64k", "discard 12M 1M").assertOk();
            bases.add(base);
            tops.add(top);
        }
        // what the top holds: every range of it must end up dirty in the base's enabled bitmap
        List<long[]> held = new ArrayList<>();
        String map = Qemu.besideImage(tops.get(0), "qemu-img", "map", "--output=json", "top.qcow2").assertOk().stdout();
        for (JsonNode e : new ObjectMapper().readTree(map)) {
            if (e.path("depth").asInt() == 0) {
                held.add(new long[] {e.path("start").asLong(), e.path("length").asLong()});
            }
        }
        assertEquals(4, held.size(), "the top holds four runs");
        checkClean(bases.get(0), tops.get(0));
        try (Chain chain = Chain.open(tops.get(0), true)) {
            chain.jobs().commit(Jobs.CommitOptions.defaults());
        }
        Qemu.besideImage(tops.get(1), "qemu-img", "commit", "top.qcow2").assertOk();
        checkClean(bases.get(0), tops.get(0));
        assertTrue(Qemu.compare(bases.get(0), bases.get(1)), "base data differs from qemu-img commit's");
        assertTrue(Qemu.compare(tops.get(0), tops.get(1)), "top view differs");
        reads(bases.get(0), "read -P 2 512 512", "read -P 3 3M 100k", "read -P 0 8M 64k", "read -P 0 12M 1M", "read -P 1 13M 3M");
        List<List<Long>> rec = Oracle.dirty(bases.get(0), "rec");
        assertEquals(Oracle.dirty(bases.get(1), "rec"), rec, "the enabled bitmap covers what qemu's covers");
        for (long[] h : held) {
            assertTrue(rec.stream().anyMatch(r -> r.get(0) <= h[0] && h[0] + h[1] <= r.get(0) + r.get(1)),
                    "committed run [" + h[0] + ", +" + h[1] + ") not dirty in " + rec);
        }
        assertEquals(runs(0, 64 * K, 3 * M, 128 * K, 8 * M, 64 * K, 12 * M, M), rec, "whole clusters, as QEMU's commit copies them");
        assertDirty(bases.get(0), "off", List.of());
    }

    @Test
    void commitWhateverStateTheBaseBitmapsAreIn() throws IOException {
        Path base = Oracle.create(tmp.resolve("base.qcow2"), 4 * M);
        try (Qcow2Image b = Qcow2Image.open(base, OpenOptions.readWrite())) {
            Bitmaps.of(b).add("broken");
        }
        CheckpointsTest.crashWhileWriting(base); // "broken" stays in_use: inconsistent
        try (Qcow2Image b = Qcow2Image.open(base, OpenOptions.readWrite())) {
            Bitmaps.of(b).add("off", Bitmaps.AddOptions.defaults().disabledBitmap());
            Bitmaps.of(b).add("rec");
        }
        Path top = Oracle.overlay(base, "top.qcow2");
        try (Qcow2Image t = Qcow2Image.open(top, OpenOptions.readWrite())) {
            write(t, 2 * M, 4096, 7);
        }
        checkClean(base, top);
        assertEquals(List.of("broken [in-use, auto]", "off []", "rec [auto]"), Oracle.flags(base));
        try (Chain chain = Chain.open(top, true)) {
            assertTrue(chain.bitmaps(1).get("rec").isReadOnly(), "a read-only layer's bitmaps are read-only");
            chain.jobs().commit(Jobs.CommitOptions.defaults());
            assertTrue(chain.bitmaps(1).get("broken").isInconsistent());
        }
        checkClean(base, top);
        assertEquals(List.of("broken [in-use, auto]", "off []", "rec [auto]"), Oracle.flags(base), "flags as they were");
        assertDirty(base, "rec", runs(2 * M, 64 * K));
        assertDirty(base, "off", List.of());
        reads(base, "read -P 7 2M 4k");
        assertTrue(Qemu.compare(base, top));
    }

    // --- iotest 176

    /** 176: base, intermediate and top over a disk of 2 GiB + 512 bytes (not cluster-aligned), data near 2 GiB. */
    private Path[] chain176(String name) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve(name));
        long size = 2 * G + 512;
        Path base = Oracle.create(dir.resolve("base.qcow2"), size);
        Path mid = Oracle.overlay(base, "itmd.qcow2");
        Path top = Oracle.overlay(mid, "top.qcow2");
        try (Qcow2Image b = Qcow2Image.open(base, OpenOptions.readWrite())) {
            write(b, 0x7ffd0000L, 192 * K, 1);
        }
        try (Qcow2Image m = Qcow2Image.open(mid, OpenOptions.readWrite().openBacking(false))) {
            write(m, 0x7ffe0000L, 128 * K, 2);
        }
        try (Qcow2Image t = Qcow2Image.open(top, OpenOptions.readWrite().openBacking(false))) {
            Bitmaps.of(t).add("bitmap0");
            write(t, 0x7fff0000L, 64 * K, 3);
            write(t, size - 512, 512, 4);
        }
        return new Path[] {base, mid, top};
    }

    private static final String[] VIEW_176 = {"read -P 1 0x7ffd0000 64k", "read -P 2 0x7ffe0000 64k", "read -P 3 0x7fff0000 64k",
        "read -P 4 2147483648 512"};

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 2, 3})
    void iotest176TopBitmapSurvivesCommit(int pass) throws IOException {
        Path[] c = chain176("pass" + pass);
        Path base = c[0];
        Path mid = c[1];
        Path top = c[2];
        checkClean(base, mid, top);
        List<List<Long>> bitmap = Oracle.dirty(top, "bitmap0");
        assertEquals(runs(0x7fff0000L, 64 * K, 2 * G, 512), bitmap);
        reads(top, VIEW_176);
        byte[] topBytes = Files.readAllBytes(top);
        switch (pass) {
            case 0 -> { // qemu-img commit top: into the intermediate image, the top emptied
                try (Chain chain = Chain.open(top, true)) {
                    chain.jobs().commit(Jobs.CommitOptions.defaults());
                }
                reads(mid, "read -P 2 0x7ffe0000 64k", "read -P 3 0x7fff0000 64k", "read -P 4 2147483648 512");
            }
            case 1 -> { // qemu-img commit -b base top: through the intermediate image, the top keeps its data
                try (Chain chain = Chain.open(top, true)) {
                    chain.jobs().commit(new Jobs.CommitOptions(2, false, false));
                }
                reads(base, VIEW_176);
            }
            case 2 -> { // qemu-img commit itmd: the top is not even opened
                try (Chain chain = Chain.open(mid, true)) {
                    chain.jobs().commit(Jobs.CommitOptions.defaults());
                }
                reads(base, "read -P 1 0x7ffd0000 64k", "read -P 2 0x7ffe0000 128k");
                assertArrayEquals(topBytes, Files.readAllBytes(top));
            }
            default -> { // active commit into the base: the top emptied
                try (Chain chain = Chain.open(top, true)) {
                    chain.jobs().commit(new Jobs.CommitOptions(2, true, false));
                }
                reads(base, VIEW_176);
                assertTrue(Qemu.compare(base, top));
            }
        }
        checkClean(base, mid, top);
        reads(top, VIEW_176);
        assertEquals(bitmap, Oracle.dirty(top, "bitmap0"), "the top's bitmap changed");
        assertEquals(List.of("bitmap0 [auto]"), Oracle.flags(top));
    }

    // --- iotest 254

    @Test
    void iotest254ExternalSnapshotCopiesAndMovesBitmaps() throws IOException {
        Path base = Oracle.create(tmp.resolve("base.qcow2"), 10 * M);
        Path top = tmp.resolve("top.qcow2");
        try (Chain chain = Chain.open(base, true, w -> { })) {
            Bitmaps bm = chain.bitmaps(0);
            bm.add("bitmap0", Bitmaps.AddOptions.defaults().transientBitmap());
            bm.add("bitmap1");
            bm.add("bitmap2");
            write(chain.top(), 0, 512, 1);
            chain.transaction()
                    .externalSnapshot(top, "base.qcow2")
                    .addBitmap(0, "bitmap0", Bitmaps.AddOptions.defaults().transientBitmap())
                    .mergeBitmaps(0, "bitmap0", new Transaction.BitmapRef(1, "bitmap0"))
                    .addBitmap(0, "bitmap1", Bitmaps.AddOptions.defaults())
                    .mergeBitmaps(0, "bitmap1", new Transaction.BitmapRef(1, "bitmap1"))
                    .addBitmap(0, "bitmap2", Bitmaps.AddOptions.defaults())
                    .mergeBitmaps(0, "bitmap2", new Transaction.BitmapRef(1, "bitmap2"))
                    .removeBitmap(1, "bitmap2")
                    .commit();
            assertEquals(List.of("bitmap1"), Oracle.names(base), "stored when the base went read-only: bitmap2 moved");
            write(chain.top(), 100 * K, 64 * K, 2);
            for (String b : List.of("bitmap0", "bitmap1", "bitmap2")) {
                assertEquals(runs(0, 192 * K), ours(chain.bitmaps(0).get(b)), b);
            }
            assertEquals(runs(0, 64 * K), ours(chain.bitmaps(1).get("bitmap1")), "copied: the original stays in the base");
            assertTrue(chain.bitmaps(1).contains("bitmap0"), "the base keeps its transient bitmap in memory");
            assertFalse(chain.bitmaps(1).contains("bitmap2"), "moved");
        }
        checkClean(base, top);
        assertEquals(List.of("bitmap1 [auto]"), Oracle.flags(base));
        assertEquals(List.of("bitmap1 [auto]", "bitmap2 [auto]"), Oracle.flags(top));
        assertDirty(base, "bitmap1", runs(0, 64 * K));
        assertDirty(top, "bitmap1", runs(0, 192 * K));
        assertDirty(top, "bitmap2", runs(0, 192 * K));
        reads(top, "read -P 1 0 512", "read -P 2 100k 64k");
        reads(base, "read -P 1 0 512", "read -P 0 100k 64k");
    }

    // --- a failing transaction changes no byte of any image

    @ParameterizedTest
    @ValueSource(strings = {"none", "abort", "add-existing", "remove-missing", "clear-readonly", "enable-missing", "merge-missing",
        "populate-readonly", "checkpoint-existing", "snapshot-onto-existing", "bad-granularity"})
    void aTransactionWithAFailingActionChangesNoByte(String failure) throws IOException {
        Path base = Oracle.create(tmp.resolve("base.qcow2"), 4 * M);
        Path top = Oracle.overlay(base, "top.qcow2");
        try (Qcow2Image b = Qcow2Image.open(base, OpenOptions.readWrite())) {
            Bitmaps.of(b).add("a");
            write(b, 0, 64 * K, 1);
        }
        try (Qcow2Image t = Qcow2Image.open(top, OpenOptions.readWrite().openBacking(false))) {
            Bitmaps.of(t).add("b");
            write(t, M, 64 * K, 2);
        }
        byte[] b0 = Files.readAllBytes(base);
        byte[] t0 = Files.readAllBytes(top);
        Path next = tmp.resolve("next.qcow2");
        try (Chain chain = Chain.open(top, true, w -> { })) {
            // actions that succeed, on every layer, then the failing one
            Transaction tx = chain.transaction()
                    .disableBitmap(0, "b")
                    .addBitmap(0, "c", Bitmaps.AddOptions.defaults().withGranularity(512))
                    .mergeBitmaps(0, "c", new Transaction.BitmapRef(1, "a"))
                    .populateBitmap(0, "c")
                    .disableBitmap(1, "a")
                    .externalSnapshot(next, "top.qcow2")
                    .addBitmap(0, "d", Bitmaps.AddOptions.defaults())
                    .mergeBitmaps(0, "d", new Transaction.BitmapRef(1, "c"))
                    .clearBitmap(1, "c")
                    .removeBitmap(1, "b")
                    .checkpoint("cp");
            String expected = switch (failure) {
                case "none" -> null;
                case "abort" -> { tx.abort(); yield "aborted"; }
                case "add-existing" -> { tx.addBitmap(0, "d", Bitmaps.AddOptions.defaults()); yield "already exists"; }
                case "remove-missing" -> { tx.removeBitmap(1, "b"); yield "'b' not found"; }
                case "clear-readonly" -> { tx.clearBitmap(2, "a"); yield "readonly"; }
                case "enable-missing" -> { tx.enableBitmap(0, "nosuch"); yield "'nosuch' not found"; }
                case "merge-missing" -> { tx.mergeBitmaps(0, "cp", new Transaction.BitmapRef(2, "nosuch")); yield "'nosuch' not found"; }
                case "populate-readonly" -> { tx.populateBitmap(2, "a"); yield "readonly"; }
                case "checkpoint-existing" -> { tx.checkpoint("a"); yield "exists in the chain"; }
                case "snapshot-onto-existing" -> { tx.externalSnapshot(base, "next.qcow2"); yield "already exists"; }
                default -> { tx.addBitmap(0, "g", Bitmaps.AddOptions.defaults().withGranularity(1000)); yield "power of 2"; }
            };
            if (expected == null) {
                // the control: without the failing action all of it applies
                tx.commit();
                assertEquals(3, chain.depth());
                assertEquals(List.of("cp"), chain.bitmaps(0).list().stream().map(DirtyBitmap::name).toList().subList(1, 2));
                assertFalse(chain.bitmaps(1).contains("b"));
                return;
            }
            RuntimeException e = assertThrows(RuntimeException.class, tx::commit);
            assertTrue(e.getMessage().contains(expected), "failed elsewhere: " + e.getMessage());
            assertEquals(2, chain.depth(), "the new overlay left the chain");
            assertTrue(chain.bitmaps(0).get("b").isEnabled());
            assertFalse(chain.bitmaps(0).contains("c"));
            assertTrue(chain.bitmaps(1).get("a").isEnabled());
            assertEquals(runs(0, 64 * K), ours(chain.bitmaps(1).get("a")));
            assertEquals(runs(M, 64 * K), ours(chain.bitmaps(0).get("b")));
        }
        assertFalse(Files.exists(next), "the new overlay was not deleted");
        assertArrayEquals(b0, Files.readAllBytes(base), "the base changed");
        assertArrayEquals(t0, Files.readAllBytes(top), "the top changed");
        checkClean(base, top);
    }

    // --- the FAQ's rolling incremental recipe and its timelines

    @Test
    void faqRollingIncrementalRecipe() throws IOException {
        // bitmap A in the base; overlay plus bitmap B in one transaction; merge A from the base into B; and round again
        Path base = Oracle.create(tmp.resolve("base.qcow2"), 4 * M);
        Path top1 = tmp.resolve("top1.qcow2");
        Path top2 = tmp.resolve("top2.qcow2");
        List<String> warnings = new ArrayList<>();
        try (Chain chain = Chain.open(base, true, warnings::add)) {
            chain.bitmaps(0).add("A");
            write(chain.top(), 0, 4096, 1);
        }
        checkClean(base);
        assertDirty(base, "A", runs(0, 64 * K));
        try (Chain chain = Chain.open(base, true, warnings::add)) {
            chain.transaction().externalSnapshot(top1, "base.qcow2")
                    .addBitmap(0, "B", Bitmaps.AddOptions.defaults())
                    .mergeBitmaps(0, "B", new Transaction.BitmapRef(1, "A"))
                    .commit();
            write(chain.top(), M, 4096, 2);
        }
        checkClean(base, top1);
        assertDirty(base, "A", runs(0, 64 * K));
        assertDirty(top1, "B", runs(0, 64 * K, M, 64 * K));
        try (Chain chain = Chain.open(top1, true, warnings::add)) {
            chain.transaction().externalSnapshot(top2, "top1.qcow2")
                    .addBitmap(0, "C", Bitmaps.AddOptions.defaults())
                    .mergeBitmaps(0, "C", new Transaction.BitmapRef(1, "B"))
                    .commit();
            write(chain.top(), 2 * M, 4096, 3);
        }
        checkClean(base, top1, top2);
        assertDirty(top1, "B", runs(0, 64 * K, M, 64 * K));
        assertDirty(top2, "C", runs(0, 64 * K, M, 64 * K, 2 * M, 64 * K));
        assertEquals(List.of(), warnings, "every overlay had its bitmap");
        reads(top2, "read -P 1 0 4k", "read -P 2 1M 4k", "read -P 3 2M 4k");
    }

    @Test
    void timelineNoSnapshot() throws IOException {
        Path img = Oracle.create(tmp.resolve("t1.qcow2"), 4 * M);
        try (Chain chain = Chain.open(img, true)) {
            chain.checkpoints().create("A");
            write(chain.top(), 0, 512, 1);
        }
        checkClean(img);
        try (Chain chain = Chain.open(img, true)) {
            write(chain.top(), 3 * M, 512, 1);
            assertEquals(runs(0, 64 * K, 3 * M, 64 * K), ours(chain.checkpoints().dirtySince("A")));
        }
        checkClean(img);
        assertDirty(img, "A", runs(0, 64 * K, 3 * M, 64 * K));
    }

    @Test
    void timelineSnapshotWithoutCheckpointThenCommit() throws IOException {
        Path base = Oracle.create(tmp.resolve("t2.qcow2"), 4 * M);
        Path top = tmp.resolve("t2-top.qcow2");
        List<String> warnings = new ArrayList<>();
        try (Chain chain = Chain.open(base, true, warnings::add)) {
            chain.checkpoints().create("A");
            write(chain.top(), 0, 512, 1);
            chain.transaction().externalSnapshot(top, "t2.qcow2").commit();
            write(chain.top(), M, 512, 2);
        }
        assertEquals(1, warnings.size(), "an overlay without a bitmap over a recording one: " + warnings);
        checkClean(base, top);
        assertDirty(base, "A", runs(0, 64 * K)); // the overlay's write is recorded nowhere yet
        try (Chain chain = Chain.open(top, true)) {
            assertEquals(runs(0, 64 * K), ours(chain.checkpoints().dirtySince("A")));
            chain.jobs().commit(Jobs.CommitOptions.defaults());
            assertEquals(runs(0, 64 * K, M, 64 * K), ours(chain.checkpoints().dirtySince("A")));
        }
        checkClean(base, top);
        assertDirty(base, "A", runs(0, 64 * K, M, 64 * K)); // the commit recorded it
        assertTrue(Qemu.compare(base, top));
        reads(base, "read -P 1 0 512", "read -P 2 1M 512");
    }

    @Test
    void timelineSnapshotWithCheckpointSurvivesACommit() throws IOException {
        Path base = Oracle.create(tmp.resolve("t3.qcow2"), 4 * M);
        Path top = tmp.resolve("t3-top.qcow2");
        try (Chain chain = Chain.open(base, true)) {
            chain.checkpoints().create("A");
            write(chain.top(), 0, 512, 1);
            chain.transaction().externalSnapshot(top, "t3.qcow2").checkpoint("B").commit();
            write(chain.top(), M, 512, 2);
        }
        checkClean(base, top);
        assertEquals(List.of("A []"), Oracle.flags(base), "A ended where the overlay began");
        assertEquals(List.of("B [auto]"), Oracle.flags(top));
        assertDirty(base, "A", runs(0, 64 * K));
        assertDirty(top, "B", runs(M, 64 * K));
        try (Chain chain = Chain.open(top, true, w -> { })) {
            Checkpoints cp = chain.checkpoints();
            assertEquals(List.of(new Checkpoints.Checkpoint("A", false, 1), new Checkpoints.Checkpoint("B", true, 0)), cp.list());
            assertEquals(runs(0, 64 * K, M, 64 * K), ours(cp.dirtySince("A")), "across layers");
            assertEquals(runs(M, 64 * K), ours(cp.dirtySince("B")));
            chain.jobs().commit(Jobs.CommitOptions.defaults());
            write(chain.top(), 2 * M, 512, 3);
        }
        // the commit emptied the top, whose checkpoint goes on recording: both checkpoints answer as before
        checkClean(base, top);
        try (Chain chain = Chain.open(top, false)) {
            Checkpoints cp = chain.checkpoints();
            assertEquals(List.of(new Checkpoints.Checkpoint("A", false, 1), new Checkpoints.Checkpoint("B", true, 0)), cp.list());
            assertEquals(runs(0, 64 * K, M, 64 * K, 2 * M, 64 * K), ours(cp.dirtySince("A")));
            assertEquals(runs(M, 64 * K, 2 * M, 64 * K), ours(cp.dirtySince("B")));
        }
        assertDirty(base, "A", runs(0, 64 * K));
        assertDirty(top, "B", runs(M, 64 * K, 2 * M, 64 * K));
        reads(top, "read -P 1 0 512", "read -P 2 1M 512", "read -P 3 2M 512");
        reads(base, "read -P 1 0 512", "read -P 2 1M 512", "read -P 0 2M 512");
    }
}
