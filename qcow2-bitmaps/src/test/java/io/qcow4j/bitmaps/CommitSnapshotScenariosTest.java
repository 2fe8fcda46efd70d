package io.qcow4j.bitmaps;

import static io.qcow4j.bitmaps.ChainScenariosTest.checkClean;
import static io.qcow4j.bitmaps.ChainScenariosTest.dirtyBytes;
import static io.qcow4j.bitmaps.ChainScenariosTest.nbd;
import static io.qcow4j.bitmaps.ChainScenariosTest.names;
import static io.qcow4j.bitmaps.ChainScenariosTest.write;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** External snapshots and commits with bitmaps: iotests 176, 254, 260, the FAQ's rolling recipe. */
class CommitSnapshotScenariosTest {
    static final long MIB = 1 << 20;

    private static Path overlayOf(Path base, String name) {
        Path top = base.resolveSibling(name);
        Qemu.besideImage(top, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base.getFileName().toString(),
                "-F", "qcow2", name).assertOk();
        return top;
    }

    @Test
    void iotest260CommitDirtiesTheBaseBitmap(@TempDir Path tmp) throws IOException {
        Path base = tmp.resolve("base.qcow2");
        Qemu.create(base, "1M");
        try (Chain chain = Chain.open(base, true)) {
            chain.bitmaps(0).add("bitmap0", Bitmaps.AddOptions.defaults().withGranularity(65536));
            write(chain.top(), 0, 65536, 1);
            // a temporary external snapshot: writes now land in the overlay
            chain.transaction().externalSnapshot(tmp.resolve("top.qcow2"), "base.qcow2").commit();
            write(chain.top(), 4 * 65536, 512, 2);
            assertEquals(65536, chain.bitmaps(1).get("bitmap0").count(), "the base sees no overlay writes");
            chain.jobs().commit(Jobs.CommitOptions.defaults());
            assertEquals(2 * 65536, chain.bitmaps(1).get("bitmap0").count(), "the commit dirtied the base");
            chain.reopen(1, false);
        }
        assertEquals(2 * 65536, dirtyBytes(nbd(base, "bitmap0")));
        checkClean(base, tmp.resolve("top.qcow2"));
        // a further guest write into the base (the overlay dropped) makes three
        Qemu.io(base, "write 524288 512").assertOk();
        assertEquals(3 * 65536, dirtyBytes(nbd(base, "bitmap0")));
    }

    @Test
    void commitMatchesQemuImgCommitAndDirtiesWholeClusters(@TempDir Path tmp) throws IOException {
        List<Path> bases = new ArrayList<>();
        List<Path> tops = new ArrayList<>();
        for (String who : List.of("ours", "theirs")) {
            Path dir = Files.createDirectories(tmp.resolve(who));
            Path base = dir.resolve("base.qcow2");
            Qemu.create(base, "16M");
            Qemu.io(base, "write -P 1 0 16M").assertOk();
            Qemu.qemuImg("bitmap", "--add", "-g", "512", base.toString(), "rec").assertOk();
            Qemu.qemuImg("bitmap", "--add", "--disable", base.toString(), "off").assertOk();
            Path top = overlayOf(base, "top.qcow2");
            Qemu.io(top, "write -P 2 512 512", "write -P 3 3M 100k", "write -z 8M 64k", "discard 12M 1M").assertOk();
            bases.add(base);
            tops.add(top);
        }
        try (Chain chain = Chain.open(tops.get(0), true)) {
            chain.jobs().commit(Jobs.CommitOptions.defaults());
        }
        Qemu.besideImage(tops.get(1), "qemu-img", "commit", "top.qcow2").assertOk();
        assertTrue(Qemu.compare(bases.get(0), bases.get(1)), "base data differs from qemu-img commit's");
        assertTrue(Qemu.compare(tops.get(0), tops.get(1)), "top view differs");
        assertEquals(nbd(bases.get(1), "rec"), nbd(bases.get(0), "rec"), "the enabled bitmap covers what qemu's covers");
        assertEquals(0, dirtyBytes(nbd(bases.get(0), "off")), "the disabled bitmap stays untouched");
        checkClean(bases.get(0), tops.get(0));
    }

    @Test
    void iotest176TopBitmapSurvivesCommit(@TempDir Path tmp) throws IOException {
        Path base = tmp.resolve("base.qcow2");
        Qemu.create(base, "3G");
        Path mid = overlayOf(base, "mid.qcow2");
        Path top = overlayOf(mid, "top.qcow2");
        Qemu.io(base, "write -P 1 0 1M", "write -P 1 2G 64k").assertOk();
        Qemu.io(mid, "write -P 2 512k 1M").assertOk();
        Qemu.qemuImg("bitmap", "--add", top.toString(), "bitmap0").assertOk();
        Qemu.io(top, "write -P 3 1M 64k", "write -P 3 3000M 512").assertOk();
        List<List<Long>> before = nbd(top, "bitmap0");
        Path raw = tmp.resolve("view.raw");
        Qemu.convertToRaw(top, raw);
        try (Chain chain = Chain.open(top, true)) {
            chain.jobs().commit(new Jobs.CommitOptions(2, true, false));
        }
        assertEquals(before, nbd(top, "bitmap0"), "the top's bitmap changed");
        assertTrue(Qemu.compare(top, raw), "the guest view changed");
        checkClean(base, mid, top);
    }

    @Test
    void iotest254ExternalSnapshotCopiesAndMovesBitmaps(@TempDir Path tmp) throws IOException {
        Path base = tmp.resolve("base.qcow2");
        Qemu.create(base, "1M");
        try (Chain chain = Chain.open(base, true)) {
            Bitmaps bm = chain.bitmaps(0);
            bm.add("bitmap0", Bitmaps.AddOptions.defaults().transientBitmap());
            bm.add("bitmap1");
            bm.add("bitmap2");
            write(chain.top(), 0, 512, 1);
            chain.transaction()
                    .externalSnapshot(tmp.resolve("top.qcow2"), "base.qcow2")
                    .addBitmap(0, "bitmap0", Bitmaps.AddOptions.defaults().transientBitmap())
                    .mergeBitmaps(0, "bitmap0", new Transaction.BitmapRef(1, "bitmap0"))
                    .addBitmap(0, "bitmap1", Bitmaps.AddOptions.defaults())
                    .mergeBitmaps(0, "bitmap1", new Transaction.BitmapRef(1, "bitmap1"))
                    .addBitmap(0, "bitmap2", Bitmaps.AddOptions.defaults())
                    .mergeBitmaps(0, "bitmap2", new Transaction.BitmapRef(1, "bitmap2"))
                    .removeBitmap(1, "bitmap2")
                    .commit();
            write(chain.top(), 65536, 512, 2);
            for (String b : List.of("bitmap0", "bitmap1", "bitmap2")) {
                assertEquals(2 * 65536, chain.bitmaps(0).get(b).count(), b);
            }
            assertEquals(65536, chain.bitmaps(1).get("bitmap1").count(), "copied: the original stays in the base");
            assertFalse(chain.bitmaps(1).contains("bitmap2"), "moved");
        }
        assertEquals(List.of("bitmap1"), names(base));
        assertEquals(List.of("bitmap1", "bitmap2"), names(tmp.resolve("top.qcow2")));
        checkClean(base, tmp.resolve("top.qcow2"));
    }

    @Test
    void transactionWithAFailingActionChangesNoByte(@TempDir Path tmp) throws IOException {
        Path base = tmp.resolve("base.qcow2");
        Qemu.create(base, "1M");
        Qemu.qemuImg("bitmap", "--add", base.toString(), "a").assertOk();
        Path top = overlayOf(base, "top.qcow2");
        Qemu.qemuImg("bitmap", "--add", top.toString(), "b").assertOk();
        byte[] b0 = Files.readAllBytes(base);
        byte[] t0 = Files.readAllBytes(top);
        try (Chain chain = Chain.open(top, true)) {
            Transaction tx = chain.transaction()
                    .disableBitmap(0, "b")
                    .externalSnapshot(tmp.resolve("new.qcow2"), "top.qcow2")
                    .addBitmap(0, "c", Bitmaps.AddOptions.defaults())
                    .mergeBitmaps(0, "c", new Transaction.BitmapRef(2, "a"))
                    .mergeBitmaps(0, "c", new Transaction.BitmapRef(1, "nosuch"));
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, tx::commit);
            assertTrue(e.getMessage().contains("nosuch"));
            assertEquals(2, chain.depth());
            assertTrue(chain.bitmaps(0).get("b").isEnabled());
        }
        assertFalse(Files.exists(tmp.resolve("new.qcow2")), "the new overlay was not deleted");
        org.junit.jupiter.api.Assertions.assertArrayEquals(b0, Files.readAllBytes(base));
        org.junit.jupiter.api.Assertions.assertArrayEquals(t0, Files.readAllBytes(top));
    }

    @Test
    void faqRollingIncrementalRecipe(@TempDir Path tmp) throws IOException {
        // bitmap A in the base; overlay plus bitmap B in one transaction; merge A from the base into B
        Path base = tmp.resolve("base.qcow2");
        Qemu.create(base, "4M");
        try (Chain chain = Chain.open(base, true)) {
            chain.checkpoints().create("A");
            write(chain.top(), 0, 4096, 1);
            chain.transaction()
                    .externalSnapshot(tmp.resolve("top.qcow2"), "base.qcow2")
                    .addBitmap(0, "B", Bitmaps.AddOptions.defaults())
                    .mergeBitmaps(0, "B", new Transaction.BitmapRef(1, "A"))
                    .commit();
            write(chain.top(), 1 * MIB, 4096, 2);
            DirtyBitmap b = chain.bitmaps(0).get("B");
            assertEquals(List.of(0L, MIB), b.dirtyExtents().stream().map(DirtyBitmap.Extent::start).toList());
        }
        checkClean(base, tmp.resolve("top.qcow2"));
    }

    @Test
    void checkpointTimelines(@TempDir Path tmp) throws IOException {
        // 1. no snapshot: writes between checkpoints land in the right bitmaps
        Path img = tmp.resolve("t1.qcow2");
        Qemu.create(img, "4M");
        try (Chain chain = Chain.open(img, true)) {
            Checkpoints cp = chain.checkpoints();
            cp.create("c1");
            write(chain.top(), 0, 512, 1);
            cp.create("c2");
            write(chain.top(), MIB, 512, 1);
            cp.create("c3");
            write(chain.top(), 2 * MIB, 512, 1);
            assertEquals(List.of(new Checkpoints.Checkpoint("c1", false, 0), new Checkpoints.Checkpoint("c2", false, 0),
                    new Checkpoints.Checkpoint("c3", true, 0)), cp.list());
            assertEquals(3 * 65536, cp.dirtySince("c1").count());
            assertEquals(2 * 65536, cp.dirtySince("c2").count());
            cp.delete("c2");
            assertEquals(3 * 65536, cp.dirtySince("c1").count(), "c2's bits went into c1");
            assertEquals(2 * 65536, chain.bitmaps(0).get("c1").count());
            assertEquals(65536, cp.dirtySince("c3").count());
        }
        checkClean(img);
        // 2. snapshot without a checkpoint, then commit: the base's recording bitmap gets the overlay's writes
        Path base = tmp.resolve("t2.qcow2");
        Qemu.create(base, "4M");
        try (Chain chain = Chain.open(base, true)) {
            chain.checkpoints().create("c1");
            write(chain.top(), 0, 512, 1);
            chain.transaction().externalSnapshot(tmp.resolve("t2-top.qcow2"), "t2.qcow2").commit();
            write(chain.top(), MIB, 512, 1);
            chain.jobs().commit(Jobs.CommitOptions.defaults());
            assertEquals(2 * 65536, chain.checkpoints().dirtySince("c1").count());
        }
        checkClean(base, tmp.resolve("t2-top.qcow2"));
        // 3. snapshot with a checkpoint: older checkpoints live in the backing layer
        Path b3 = tmp.resolve("t3.qcow2");
        Qemu.create(b3, "4M");
        try (Chain chain = Chain.open(b3, true)) {
            chain.checkpoints().create("c1");
            write(chain.top(), 0, 512, 1);
            chain.transaction().externalSnapshot(tmp.resolve("t3-top.qcow2"), "t3.qcow2").checkpoint("c2").commit();
            write(chain.top(), MIB, 512, 1);
            Checkpoints cp = chain.checkpoints();
            assertEquals(List.of("c1", "c2"), cp.list().stream().map(Checkpoints.Checkpoint::name).toList());
            assertEquals(1, cp.list().get(0).depth());
            assertEquals(2 * 65536, cp.dirtySince("c1").count(), "across layers");
            assertEquals(65536, cp.dirtySince("c2").count());
        }
        checkClean(b3, tmp.resolve("t3-top.qcow2"));
    }
}
