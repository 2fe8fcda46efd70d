package io.qcow4j.core.check;

import static io.qcow4j.core.check.CheckOracle.assertCheckLikeQemu;
import static io.qcow4j.core.check.CheckOracle.l1Offset;
import static io.qcow4j.core.check.CheckOracle.l2EntryAddress;
import static io.qcow4j.core.check.CheckOracle.readLong;
import static io.qcow4j.core.check.CheckOracle.refcountTableOffset;
import static io.qcow4j.core.check.CheckOracle.setRefcount16;
import static io.qcow4j.core.check.CheckOracle.twin;
import static io.qcow4j.core.check.CheckOracle.writeLong;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.stream.Stream;

import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.TestData;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A corpus of metadata corruptions: for each, check, {@code -r leaks} and {@code -r all}
 * report what qemu-img reports, and after our repair the image checks and reads like the
 * twin qemu-img repaired.
 */
class CorruptionCasesTest {
    private static final long COPIED = 1L << 63;

    interface Corruption {
        void apply(Path img) throws IOException;
    }

    static Arguments c(String name, String image, Corruption corruption) {
        return Arguments.of(name, image, corruption);
    }

    static Stream<Arguments> cases() {
        return Stream.of(
            c("L2 entry past the end of the file", "chain-base.qcow2", img -> writeLong(img, l2EntryAddress(img, 0, 1), COPIED | 0x10000000L)),
            c("L2 entry onto the L1 table", "chain-base.qcow2", img -> writeLong(img, l2EntryAddress(img, 0, 1), COPIED | l1Offset(img))),
            c("L2 entry unaligned", "chain-base.qcow2", img -> writeLong(img, l2EntryAddress(img, 0, 1), COPIED | 0x50200L)),
            c("preallocated zero cluster unaligned", "chain-base.qcow2", img -> writeLong(img, l2EntryAddress(img, 0, 1), COPIED | 0x50201L)),
            c("L2 entry with reserved bits", "chain-base.qcow2", img -> writeLong(img, l2EntryAddress(img, 0, 1), COPIED | 0x60002L)),
            c("L1 entry unaligned", "chain-base.qcow2", img -> writeLong(img, l1Offset(img), COPIED | 0x40200L)),
            c("L1 entry past the end of the file", "chain-base.qcow2", img -> writeLong(img, l1Offset(img), COPIED | 0x10000000L)),
            c("L1 entry onto the L1 table", "chain-base.qcow2", img -> writeLong(img, l1Offset(img), COPIED | l1Offset(img))),
            c("L2 table shared (COPIED wrong in L1)", "chain-base.qcow2", img -> setRefcount16(img, 4, 2)),
            c("refcount table entry with reserved bits", "chain-base.qcow2", img -> writeLong(img, refcountTableOffset(img), 0x20001L)),
            c("refcount block unaligned", "chain-base.qcow2", img -> writeLong(img, refcountTableOffset(img), 0x20200L)),
            c("refcount block past the end", "chain-base.qcow2", img -> writeLong(img, refcountTableOffset(img), 0x10000000L)),
            c("refcount block unreachable", "chain-base.qcow2", img -> writeLong(img, refcountTableOffset(img), 0x8000000000020000L)),
            c("refcount block onto the L1 table", "chain-base.qcow2", img -> writeLong(img, refcountTableOffset(img), l1Offset(img))),
            c("refcount overflow (1-bit refcounts)", "refcount-bits-1.qcow2", img -> writeLong(img, l2EntryAddress(img, 0, 1), readLong(img, l2EntryAddress(img, 0, 0)))),
            c("compressed cluster with COPIED", "zlib-compressed.qcow2", img -> writeLong(img, l2EntryAddress(img, 0, 2), COPIED | readLong(img, l2EntryAddress(img, 0, 2)))),
            c("compressed cluster entry cleared", "zlib-compressed.qcow2", img -> writeLong(img, l2EntryAddress(img, 0, 7), 0)),
            c("unaligned data and a leak", "zlib-compressed.qcow2", img -> {
                writeLong(img, l2EntryAddress(img, 0, 1), COPIED | 0x60200L);
                writeLong(img, l2EntryAddress(img, 0, 5), 0);
            }),
            c("shared snapshot cluster refcount 1", "snapshot.qcow2", img -> setRefcount16(img, (readLong(img, l2EntryAddress(img, 0, 1)) & 0x00fffffffffffe00L) >>> 16, 1)),
            c("L2 entry cleared among many refcount blocks", "cluster-512.qcow2", img -> writeLong(img, l2EntryAddress(img, 0, 3), 0)),
            c("subcluster bitmap allocated and zero", "extended-l2.qcow2", img -> writeLong(img, l2EntryAddress(img, 0, 0) + 8, 0x100000001L)),
            c("dirty and corrupt bits with a leak", "chain-base.qcow2", img -> {
                writeLong(img, 72, 3);
                writeLong(img, l2EntryAddress(img, 0, 16), 0);
            }),
            c("in-use bitmap table with a reserved bit", "bitmaps-inuse.qcow2", img -> writeLong(img, inUseBitmapTable(img), 2)),
            c("snapshot L1 table unaligned", "snapshot.qcow2", img -> writeLong(img, snapshotEntry(img, 0), 0x80200L)),
            c("snapshot L1 table too large", "snapshot.qcow2", img -> CheckOracle.writeInt(img, snapshotEntry(img, 0) + 8, 0x1000000)),
            c("snapshot L1 table onto the active L1", "snapshot.qcow2", img -> writeLong(img, snapshotEntry(img, 1), l1Offset(img))),
            c("shared cluster with COPIED", "snapshot.qcow2", img -> writeLong(img, l2EntryAddress(img, 0, 1), COPIED | readLong(img, l2EntryAddress(img, 0, 1)))),
            c("unallocated extended entry with allocated subclusters", "extended-l2.qcow2", img -> writeLong(img, l2EntryAddress(img, 0, 6) + 8, 3)),
            c("compressed cluster with an external data file", "data-file.qcow2", img -> writeLong(img, l2EntryAddress(img, 0, 20), 0x4000000000014000L)),
            c("v2 refcount 0", "v2.qcow2", img -> setRefcount16(img, 5, 0)),
            c("zero cluster with a host cluster and COPIED clear", "zero-clusters.qcow2", img -> writeLong(img, l2EntryAddress(img, 0, 1), ~COPIED & readLong(img, l2EntryAddress(img, 0, 1))))
        );
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void reportsAndRepairsLikeQemu(String name, String image, Corruption corruption, @TempDir Path tmp) throws IOException {
        Path img = TestData.copyToTemp(image, tmp);
        corruption.apply(img);
        assertCheckLikeQemu(img);
        // the JSON reports are compared in ImageCheckerTest; here the human ones, to save time
        CheckOracle.repairBoth(twin(img, "leaks"), Repair.LEAKS, false);
        CheckOracle.Repaired r = CheckOracle.repairBoth(img, Repair.ALL, false);
        Qemu.Result after = Qemu.check(img);
        CheckResult ourAfter = CheckOracle.check(img);
        assertEquals(after.exitCode(), ourAfter.exitCode(), after.describe());
        assertEquals(CheckOracle.lines(after.stdout()), ourAfter.humanLines(), after.describe());
        assertEquals(CheckOracle.lines(after.stderr()), ourAfter.stderrLines("qemu-img"), after.describe());
        if (!r.ours().completed()) {
            // qemu abandons the repair at a fatal corruption event and, its caches unflushed,
            // loses the refcount fixes it had made; ours are on disk: the images differ
            return;
        }
        // afterwards both images check alike and the guest sees the same data in both
        Qemu.Result theirs = Qemu.check(r.qemuTwin());
        assertEquals(theirs.exitCode(), after.exitCode(), "check after repair\n" + theirs.describe() + "\n" + after.describe());
        assertEquals(CheckOracle.lines(theirs.stderr()), CheckOracle.lines(after.stderr()), "check after repair\n" + after.describe());
        if (theirs.exitCode() == 0) {
            assertTrue(Qemu.compare(img, r.qemuTwin()), "guest data after repair");
        }
    }

    /** Address of snapshot {@code index}'s table entry (its l1_table_offset field). */
    private static long snapshotEntry(Path img, int index) throws IOException {
        long at = readLong(img, 64);
        for (int i = 0; i < index; i++) {
            int extra = CheckOracle.readInt(img, at + 36);
            int ids = CheckOracle.readInt(img, at + 12);
            at += (40 + extra + (ids >>> 16) + (ids & 0xffff) + 7) & ~7;
        }
        return at;
    }

    /** The table offset of the only bitmap of bitmaps-inuse.qcow2 (its first entry's address). */
    private static long inUseBitmapTable(Path img) throws IOException {
        return readLong(img, CheckOracle.bitmapDirectory(img));
    }
}
