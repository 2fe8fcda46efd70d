package io.qcow4j.core.check;

import static io.qcow4j.core.check.CheckOracle.assertCheckLikeQemu;
import static io.qcow4j.core.check.CheckOracle.assertQemuClean;
import static io.qcow4j.core.check.CheckOracle.assertRepairLikeQemu;
import static io.qcow4j.core.check.CheckOracle.l1Offset;
import static io.qcow4j.core.check.CheckOracle.l2EntryAddress;
import static io.qcow4j.core.check.CheckOracle.readLong;
import static io.qcow4j.core.check.CheckOracle.refcountTableOffset;
import static io.qcow4j.core.check.CheckOracle.setRefcount16;
import static io.qcow4j.core.check.CheckOracle.twin;
import static io.qcow4j.core.check.CheckOracle.writeLong;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.TestData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link ImageChecker} against {@code qemu-img check}: the committed reference images, and
 * copies whose metadata the test corrupts. Every report (exit code, stdout, stderr, JSON)
 * must be qemu's; after {@code repair(ALL)} qemu-img finds the image clean and the guest
 * sees the data it saw before the repair.
 */
class ImageCheckerTest {

    static List<String> images() {
        return TestData.qcow2Images();
    }

    @ParameterizedTest
    @MethodSource("images")
    void referenceImageChecksLikeQemu(String name, @TempDir Path tmp) throws IOException {
        Path img = TestData.copyToTemp(name, tmp);
        CheckResult r = assertCheckLikeQemu(img);
        assertEquals(name.equals("lazy-dirty.qcow2") ? 2 : 0, r.exitCode(), r.toString());
    }

    @Test
    void lazyDirtyImage(@TempDir Path tmp) throws IOException {
        Path img = TestData.copyToTemp("lazy-dirty.qcow2", tmp);
        CheckResult r = assertCheckLikeQemu(img);
        assertEquals(8, r.corruptions());
        assertEquals("ERROR cluster 21 refcount=0 reference=1", r.messages().get(0));
        Path before = twin(img, "before");
        // -r leaks cannot rebuild the refcounts: "Check failed" (and, unlike qemu, the dirty bit stays)
        Path leaksOnly = twin(img, "leaks");
        CheckResult leaks = assertRepairLikeQemu(leaksOnly, Repair.LEAKS);
        assertEquals(1, leaks.exitCode());
        assertEquals("Check failed: Input/output error", leaks.failure());
        CheckResult all = assertRepairLikeQemu(img, Repair.ALL);
        assertEquals(4, all.corruptionsFixed());
        assertEquals(0, all.exitCode());
        assertQemuClean(img);
        assertEquals(0, CheckOracle.readLong(img, 72) & 1, "dirty bit cleared");
        assertTrue(Qemu.compare(img, before));
    }

    @Test
    void clearedL2EntryIsALeak(@TempDir Path tmp) throws IOException {
        Path img = TestData.copyToTemp("chain-base.qcow2", tmp);
        writeLong(img, l2EntryAddress(img, 0, 16), 0);
        CheckResult r = assertCheckLikeQemu(img);
        assertEquals(3, r.exitCode());
        assertEquals(List.of("Leaked cluster 10 refcount=1 reference=0"), r.messages());
        Path before = twin(img, "before");
        Path leaks = twin(img, "leaks");
        assertEquals(1, assertRepairLikeQemu(leaks, Repair.LEAKS).leaksFixed());
        assertQemuClean(leaks);
        assertRepairLikeQemu(img, Repair.ALL);
        assertQemuClean(img);
        assertTrue(Qemu.compare(img, before));
    }

    @Test
    void refcountZeroOfAUsedClusterNeedsARebuild(@TempDir Path tmp) throws IOException {
        Path img = TestData.copyToTemp("chain-base.qcow2", tmp);
        setRefcount16(img, 10, 0);
        CheckResult r = assertCheckLikeQemu(img);
        assertEquals(2, r.exitCode());
        assertEquals(List.of("ERROR cluster 10 refcount=0 reference=1",
                "ERROR OFLAG_COPIED data cluster: l2_entry=80000000000a0000 refcount=0"), r.messages());
        Path before = twin(img, "before");
        assertEquals(1, assertRepairLikeQemu(twin(img, "leaks"), Repair.LEAKS).exitCode());
        CheckResult all = assertRepairLikeQemu(img, Repair.ALL);
        assertTrue(all.messages().contains("Rebuilding refcount structure"), all.messages().toString());
        assertQemuClean(img);
        assertTrue(Qemu.compare(img, before));
    }

    @Test
    void refcountTwoOfAnUnsharedCluster(@TempDir Path tmp) throws IOException {
        Path img = TestData.copyToTemp("chain-base.qcow2", tmp);
        setRefcount16(img, 10, 2);
        CheckResult r = assertCheckLikeQemu(img);
        assertEquals(List.of("Leaked cluster 10 refcount=2 reference=1",
                "ERROR OFLAG_COPIED data cluster: l2_entry=80000000000a0000 refcount=2"), r.messages());
        Path before = twin(img, "before");
        assertRepairLikeQemu(twin(img, "leaks"), Repair.LEAKS);
        assertRepairLikeQemu(img, Repair.ALL);
        assertQemuClean(img);
        assertTrue(Qemu.compare(img, before));
    }

    @Test
    void l2TablePointerIntoTheRefcountTable(@TempDir Path tmp) throws IOException {
        Path img = TestData.copyToTemp("chain-base.qcow2", tmp);
        writeLong(img, l1Offset(img), 0x8000000000000000L | refcountTableOffset(img));
        CheckResult r = assertCheckLikeQemu(img);
        assertEquals(4, r.corruptions());
        assertEquals(9, r.leaks());
        assertEquals("ERROR refcount block 0 refcount=2", r.messages().get(0));
        Path qemuTwin = twin(img, "qemu-repaired");
        Qemu.check(qemuTwin, "-r", "all").assertOk();
        assertRepairLikeQemu(twin(img, "leaks"), Repair.LEAKS);
        CheckResult all = assertRepairLikeQemu(img, Repair.ALL);
        assertEquals(4, all.corruptionsFixed());
        assertQemuClean(img);
        assertTrue(Qemu.compare(img, qemuTwin));
    }

    @Test
    void bitmapTableEntryPastTheEndOfTheFile(@TempDir Path tmp) throws IOException {
        Path img = TestData.copyToTemp("bitmaps.qcow2", tmp);
        long table = bitmapTableOffset(img, 1);
        writeLong(img, table, 0x10000000L);
        CheckResult r = assertCheckLikeQemu(img);
        assertEquals(List.of("ERROR: counting reference for region exceeding the end of the file by one cluster or more: "
                + "offset 0x10000000 size 0x10000", "Leaked cluster 19 refcount=1 reference=0"), r.messages());
        Path before = twin(img, "before");
        // qemu fixes the leak, still reports the entry, and stores the bitmap anew when it closes
        CheckResult all = assertRepairLikeQemu(img, Repair.ALL);
        assertEquals(2, all.exitCode());
        assertQemuClean(img);
        assertTrue(Qemu.compare(img, before));
        assertEquals(1L, readLong(img, table), "lost bitmap cluster marked all dirty");
    }

    @Test
    void bitmapTableWithAReservedBitFailsLikeQemu(@TempDir Path tmp) throws IOException {
        Path img = TestData.copyToTemp("bitmaps.qcow2", tmp);
        writeLong(img, bitmapTableOffset(img, 1), 2);
        CheckResult r = assertCheckLikeQemu(img);
        assertFalse(r.completed());
        assertTrue(r.failure().startsWith("Could not open '"), r.failure());
        assertNull(r.json("x"));
    }

    @Test
    void anL1TableRepeatingOneL2TableEndsTheCheck(@TempDir Path tmp) throws IOException {
        // 256 Ki L1 entries (128 TiB virtual), all naming one full L2 table in the file (its
        // 8 Ki entries naming one data cluster): qemu would walk it 262144 times; we stop once
        // the work exceeds what a sound image needs. (A table past the end reads as zeros and
        // costs nothing: LongL1CheckTest.)
        Path img = TestData.copyToTemp("empty.qcow2", tmp);
        long end = (java.nio.file.Files.size(img) + 0xffff) & ~0xffffL;
        int entries = 256 * 1024;
        long l2 = end + 8L * entries;
        java.nio.ByteBuffer l1 = java.nio.ByteBuffer.allocate(8 * entries + (1 << 17));
        for (int i = 0; i < entries; i++) {
            l1.putLong(COPIED | l2);
        }
        for (int i = 0; i < 8192; i++) {
            l1.putLong(COPIED | (l2 + 0x10000));
        }
        l1.position(l1.limit());
        try (var ch = java.nio.channels.FileChannel.open(img, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(l1.flip(), end);
        }
        writeLong(img, 24, (long) entries << 29);
        CheckOracle.writeInt(img, 36, entries);
        writeLong(img, 40, end);
        long t0 = System.nanoTime();
        CheckResult r = CheckOracle.check(img);
        assertEquals(1, r.exitCode(), r.toString());
        assertEquals("Check failed: File too large", r.failure());
        assertTrue(r.messages().get(r.messages().size() - 1).contains("the check cannot walk it"), r.messages().toString());
        assertTrue(System.nanoTime() - t0 < 30_000_000_000L, "bounded work");
    }

    private static final long COPIED = 1L << 63;

    /** Table offset of the {@code index}-th bitmap of bitmaps.qcow2 (directory right after the extension). */
    private static long bitmapTableOffset(Path img, int index) throws IOException {
        long entry = CheckOracle.bitmapDirectory(img);
        for (int i = 0; i < index; i++) {
            int nameSize = CheckOracle.readInt(img, entry + 16) & 0xffff;
            entry += (24 + nameSize + 7) & ~7;
        }
        return readLong(img, entry);
    }
}
