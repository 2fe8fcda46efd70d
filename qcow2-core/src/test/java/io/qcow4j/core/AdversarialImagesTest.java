package io.qcow4j.core;

import static io.qcow4j.core.ImageAttempts.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;

import io.qcow4j.core.api.BlockStatus;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.format.Header;
import io.qcow4j.testing.Patterns;
import io.qcow4j.testing.Qemu;
import io.qcow4j.testing.TestData;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Hostile and corrupt images: each is a reference image with a few bytes changed. The
 * engine must answer with one clear exception (a {@link CorruptImageException} or
 * {@link UnsupportedImageException} naming the structure and offset), or succeed where the
 * spec allows; it must never hang, throw a RuntimeException or Error, allocate by an
 * unchecked size, or change a file it failed on.
 *
 * <p>Every case is tried read-only and read-write ({@link ImageAttempts}): open, read the
 * whole disk, walk its block status, read every internal snapshot, and (read-write) write
 * where the damage is. {@link #fuzzCorpus} does the same for a seeded corpus of random damage.
 */
class AdversarialImagesTest {
    // layout of the reference images used below (64 KiB clusters unless noted), see testdata/README.md
    static final long RT = 0x10000;
    static final long FEATURE_TABLE = 112;
    static final long BASE_L1 = 0x30000;
    static final long BASE_L2 = 0x40000;
    static final long ZLIB_L2 = 0x40000;
    static final long SNAPSHOTS = 0xf0000;

    @TempDir
    Path tmp;

    // =================================================================== header

    @Test
    void badMagic() throws IOException {
        Path img = copy("empty.qcow2");
        edit(img).u32(0, 0x514649fa);
        assertOpenFails(img, corrupt(0, "magic"));
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 40, 71, 100})
    void truncatedHeader(int length) throws IOException {
        Path img = copy("empty.qcow2");
        edit(img).truncate(length);
        assertOpenFails(img, corrupt(0, "too short"));
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 4, 0x7fffffff, -1})
    void unsupportedVersion(int version) throws IOException {
        Path img = copy("empty.qcow2");
        edit(img).u32(Header.VERSION, version);
        assertOpenFails(img, anyOf(Header.VERSION, "version " + version));
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 8, 22, 31, 32, 63, -1})
    void badClusterBits(int bits) throws IOException {
        Path img = copy("empty.qcow2");
        edit(img).u32(Header.CLUSTER_BITS, bits);
        assertOpenFails(img, corrupt(Header.CLUSTER_BITS, "cluster size"));
    }

    @ParameterizedTest
    @ValueSource(ints = {108, 113, 96, 72, 0, 0x10008, 0x20000, -8})
    void badHeaderLength(int length) throws IOException {
        Path img = copy("empty.qcow2");
        edit(img).u32(Header.HEADER_LENGTH, length);
        assertOpenFails(img, corrupt(Header.HEADER_LENGTH, "header_length"));
    }

    @Test
    void headerLengthOfExactlyOneClusterIsAllowed() throws IOException {
        // 512-byte clusters: header_length 512 leaves no room for extensions but is legal
        Path img = copy("cluster-512.qcow2");
        edit(img).u32(Header.HEADER_LENGTH, 512);
        assertReads(img);
        // there is no room for an end marker either: a writer may refuse to rewrite such a header
        assertWritesOrRefuses(img);
    }

    @ParameterizedTest
    @ValueSource(longs = {0x10000, 0x10001, 0x20000, 0xfff0, 0x7fffffffffffffffL, -1, 0xffffffff00000210L})
    void backingFileOffsetOutsideClusterZero(long offset) throws IOException {
        Path img = copy("chain-mid.qcow2");
        edit(img).u64(Header.BACKING_FILE_OFFSET, offset);
        assertOpenFails(img, corrupt(Header.BACKING_FILE_OFFSET, "backing file"));
    }

    @ParameterizedTest
    @ValueSource(ints = {1024, 0xfe00, 0x10000, 0x7fffffff, -1})
    void backingFileSizeOutsideClusterZero(int size) throws IOException {
        Path img = copy("chain-mid.qcow2");
        edit(img).u32(Header.BACKING_FILE_SIZE, size);
        assertOpenFails(img, corrupt(Header.BACKING_FILE_OFFSET, "backing file"));
    }

    @Test
    void backingFileNameWithNulBytes() throws IOException {
        // bytes after the name are zeros: a longer size takes NULs into the name
        Path img = copy("chain-mid.qcow2");
        edit(img).u32(Header.BACKING_FILE_SIZE, 20);
        assertOpenFails(img, corrupt(Header.BACKING_FILE_OFFSET, "backing file"));
    }

    @Test
    void dataFileNameWithNulBytes() throws IOException {
        Path img = copy("data-file.qcow2");
        // extension "DATA" at 112: type, length 14, "data-file.data"
        edit(img).u32(116, 16);
        assertOpenFails(img, corrupt("data file"));
    }

    @ParameterizedTest
    @ValueSource(longs = {0xffffffffL, 0x80000000L, 0x10000, 0x10000 - 112 - 8 + 1})
    void extensionOverrunsHeaderArea(long length) throws IOException {
        Path img = copy("empty.qcow2");
        edit(img).u32(FEATURE_TABLE + 4, length);
        assertOpenFails(img, corrupt(FEATURE_TABLE, "overruns"));
    }

    @Test
    void extensionOverrunsBackingFileName() throws IOException {
        // chain-mid: backing format at 112 (5 bytes), feature table at 128 (384 bytes), name at 528
        Path img = copy("chain-mid.qcow2");
        edit(img).u32(128 + 4, 393);
        assertOpenFails(img, corrupt(128, "overruns"));
    }

    @ParameterizedTest
    @ValueSource(longs = {0, 1L << 5})
    void extensionsFillClusterZeroWithoutEndMarker(long autoclear) throws IOException {
        // legal to read (QEMU reads it); a writer that must rewrite the header has no room for an
        // end marker: it must refuse read-write cleanly, not fail half-way through a write
        Path img = copy("empty.qcow2");
        edit(img).u32(FEATURE_TABLE, 0x7e57ab1e).u32(FEATURE_TABLE + 4, 0x10000 - FEATURE_TABLE - 8);
        edit(img).u64(Header.AUTOCLEAR_FEATURES, autoclear);
        assertReads(img);
        String sha = ImageEditor.sha256(img);
        Attempt rw = attempt(img, Mode.RW, 0, ALLOCATION_BUDGET);
        expectFailure(rw, "open", unsupported("header"));
        assertEquals(sha, ImageEditor.sha256(img), () -> rw + " changed the file");
    }

    @Test
    void lazyDirtyImageWhoseHeaderCannotBeRewritten() throws IOException {
        // the dirty bit makes a read-write open repair the refcounts and rewrite the header
        Path img = copy("lazy-dirty.qcow2");
        edit(img).u32(112, 0x7e57ab1e).u32(116, 0x1000 - 112 - 8);
        assertReads(img);
        String sha = ImageEditor.sha256(img);
        Attempt rw = attempt(img, Mode.RW, 0, ALLOCATION_BUDGET);
        expectFailure(rw, "open", unsupported("header"));
        assertEquals(sha, ImageEditor.sha256(img), () -> rw + " changed the file");
    }

    // =================================================================== L1 table

    @ParameterizedTest
    @ValueSource(longs = {0x100000, 0xd0000, 0x7fff0000, 0x30200, 0x30008, 0, 0x200,
            0x7fffffffffff0000L, 0xffffffffffff0000L, 0x8000000000030000L})
    void l1TableOffsetInvalid(long offset) throws IOException {
        Path img = copy("chain-base.qcow2");
        edit(img).u64(Header.L1_TABLE_OFFSET, offset);
        assertOpenFails(img, corrupt("L1 table"));
    }

    @Test
    void l1TableOffsetNearLongMaxWithLargeL1() throws IOException {
        // offset + 8 * l1_size overflows a long
        Path img = copy("chain-base.qcow2");
        edit(img).u64(Header.L1_TABLE_OFFSET, 0x7fffffffffff0000L).u32(Header.L1_SIZE, 0x10000);
        assertOpenFails(img, corrupt("L1 table"));
    }

    @ParameterizedTest
    @ValueSource(ints = {0x7fffffff, 0xffffffff, 0x80000000, 0x400001})
    void l1SizeHuge(int l1Size) throws IOException {
        Path img = copy("chain-base.qcow2");
        edit(img).u32(Header.L1_SIZE, l1Size);
        assertOpenFails(img, corrupt("L1"));
    }

    @Test
    void l1SizeAtTheLimitButPastTheFileAllocatesNothingBig() throws IOException {
        // 4 Mi entries = 32 MiB, QEMU's limit, in a file of 832 KiB: refuse before allocating
        Path img = copy("chain-base.qcow2");
        edit(img).u32(Header.L1_SIZE, 0x400000);
        assertOpenFails(img, 4L << 20, corrupt(BASE_L1, "L1 table"));
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 127})
    void l1SizeSmallerThanTheDiskNeeds(int l1Size) throws IOException {
        // cluster-512: 4 MiB disk, an L2 table maps 32 KiB, so 128 entries are needed
        Path img = copy("cluster-512.qcow2");
        edit(img).u32(Header.L1_SIZE, l1Size);
        assertOpenFails(img, corrupt(Header.L1_SIZE, "L1 table is too small"));
    }

    @Test
    void l1SizeLargerThanNeededIsAllowed() throws IOException {
        Path img = copy("chain-base.qcow2");
        byte[] before = readAll(img);
        edit(img).u32(Header.L1_SIZE, 2);
        // the L1 table has a cluster to itself: entry 1 is zero, an unallocated L2 table
        assertEquals(0, edit(img).u64(BASE_L1 + 8));
        assertEquals(digest(before), assertWorks(img).digest);
    }

    // =================================================================== virtual size

    @ParameterizedTest
    @ValueSource(longs = {1L << 62, 1L << 56, Long.MAX_VALUE, Long.MAX_VALUE - 0xffff, (1L << 52) + 1})
    void virtualSizeHuge(long size) throws IOException {
        Path img = copy("chain-base.qcow2");
        edit(img).u64(Header.SIZE, size);
        assertOpenFails(img, corrupt(Header.SIZE, "too big"));
    }

    @Test
    void virtualSizeWithinLimitsButBeyondTheL1Table() throws IOException {
        // 2^50 bytes need 2^21 L1 entries: under QEMU's limit, but the table has one
        Path img = copy("chain-base.qcow2");
        edit(img).u64(Header.SIZE, 1L << 50);
        assertOpenFails(img, corrupt(Header.L1_SIZE, "L1 table is too small"));
    }

    @ParameterizedTest
    @ValueSource(longs = {-1, Long.MIN_VALUE, -512})
    void virtualSizeNegative(long size) throws IOException {
        Path img = copy("chain-base.qcow2");
        edit(img).u64(Header.SIZE, size);
        assertOpenFails(img, corrupt(Header.SIZE, "negative"));
    }

    @Test
    void virtualSizeZeroIsAllowed() throws IOException {
        Path img = copy("chain-base.qcow2");
        edit(img).u64(Header.SIZE, 0);
        Attempt a = assertWorks(img);
        assertEquals(0, a.size);
    }

    @Test
    void virtualSizeNotAMultipleOfTheClusterIsAllowed() throws IOException {
        Path img = copy("chain-base.qcow2");
        byte[] before = readAll(img);
        edit(img).u64(Header.SIZE, 1000001);
        Attempt a = assertWorks(img);
        assertEquals(digest(Arrays.copyOf(before, 1000001)), a.digest);
    }

    @Test
    void hugeSparseImageIsWalkedQuickly() throws IOException {
        // 1 PiB, 2 Mi L1 entries and no L2 table: block status must not step cluster by cluster
        Path img = tmp.resolve("huge.qcow2");
        Qemu.create(img, "1P");
        // (a 16 MiB L1 table, read twice, and 2 Mi block status steps: more garbage than usual)
        for (Mode mode : Mode.values()) {
            Attempt a = attempt(img, mode, 0, 512L << 20);
            assertClean(a);
            assertEquals(1L << 50, a.size);
        }
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            BlockStatus s = assertTimeoutPreemptively(TIMEOUT, () -> image.blockStatus(1L << 16, image.size()));
            assertEquals(new BlockStatus(1L << 16, (1L << 50) - (1L << 16), false, true, false, 0, -1, false), s);
        }
    }

    // =================================================================== refcount table

    @ParameterizedTest
    @ValueSource(longs = {0x100000, 0x7fff0000, 0xd0000, 0x10200, 0x10008, 0, 0x7fffffffffff0000L,
            0xffffffffffff0000L})
    void refcountTableOffsetInvalid(long offset) throws IOException {
        Path img = copy("chain-base.qcow2");
        edit(img).u64(Header.REFCOUNT_TABLE_OFFSET, offset);
        assertOpenFails(img, corrupt("refcount table"));
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 0xffffffff, 0x7fffffff, 0x80000000, 129, 13})
    void refcountTableClustersInvalid(int clusters) throws IOException {
        // 129 x 64 KiB is over QEMU's 8 MiB; 13 runs past the end of the 13-cluster file
        Path img = copy("chain-base.qcow2");
        edit(img).u32(Header.REFCOUNT_TABLE_CLUSTERS, clusters);
        assertOpenFails(img, corrupt("refcount table"));
    }

    @ParameterizedTest
    @ValueSource(ints = {7, 8, 63, -1, 0x40000000})
    void refcountOrderInvalid(int order) throws IOException {
        Path img = copy("chain-base.qcow2");
        edit(img).u32(Header.REFCOUNT_ORDER, order);
        assertOpenFails(img, corrupt(Header.REFCOUNT_ORDER, "refcount order"));
    }

    @ParameterizedTest
    @ValueSource(longs = {0x7fff0000, 0x100000, 0x20200, 0xd0000, 0x200, 0xca00000000020000L, 0x8000000000020000L})
    void refcountBlockOffsetInvalidIsRefusedReadWrite(long block) throws IOException {
        // reads never need refcounts; a writer checks every block offset at open, so that no
        // operation of several steps (resize with bitmaps, commit) finds it half-way
        Path img = copy("empty.qcow2");
        edit(img).u64(RT, block);
        String sha = ImageEditor.sha256(img);
        assertClean(attempt(img, Mode.RO, 0, ALLOCATION_BUDGET));
        Attempt rw = attempt(img, Mode.RW, 0, ALLOCATION_BUDGET);
        expectFailure(rw, "open", corrupt(RT, "refcount block"));
        assertEquals(sha, ImageEditor.sha256(img), () -> rw + " changed the file");
    }

    // A dirty image (lazy refcounts, crashed) gets its refcounts rebuilt by a read-write open:
    // the rebuild reads every reference, so it must bound them before it counts or loops.
    // lazy-dirty: 4 KiB clusters, refcount table 0x1000, L1 0x3000, L2 0x4000.

    @ParameterizedTest
    @ValueSource(longs = {0x8000100000000000L, 0x8000040000000000L, 0x8000000010000000L, 0x80fffffffffff000L,
            0x4000100000000000L, 0x7f00000000005000L})
    void dirtyImageWithL2EntryBeyondTheFile(long entry) throws IOException {
        Path img = copy("lazy-dirty.qcow2");
        edit(img).u64(0x4000, entry);
        assertRefusedOrRepaired(img, 0);
    }

    @ParameterizedTest
    @ValueSource(longs = {0x100000000000L, 0x7fff00000000L, 0xca00000000002000L, 0x2200, 0x200})
    void dirtyImageWithRefcountBlockOffsetInvalid(long block) throws IOException {
        Path img = copy("lazy-dirty.qcow2");
        // an unknown autoclear bit too: a writer clears it, but not before the image is accepted
        edit(img).u64(0x1000, block).u64(Header.AUTOCLEAR_FEATURES, 1L << 40);
        String sha = ImageEditor.sha256(img);
        Attempt rw = attempt(img, Mode.RW, 0, ALLOCATION_BUDGET);
        // the repair runs at open or before the first write: either refuses, changing nothing
        expectFailure(rw, rw.opened ? "write" : "open", corrupt(0x1000, "refcount block"));
        assertEquals(sha, ImageEditor.sha256(img), () -> rw + " changed the file");
    }

    // =================================================================== snapshots

    @ParameterizedTest
    @ValueSource(ints = {0xffffffff, 0x80000000, 0x10001, 0x7fffffff})
    void nbSnapshotsHuge(int nb) throws IOException {
        Path img = copy("snapshot.qcow2");
        edit(img).u32(Header.NB_SNAPSHOTS, nb);
        assertOpenFails(img, corrupt(Header.NB_SNAPSHOTS, "nb_snapshots"));
    }

    @ParameterizedTest
    @ValueSource(ints = {20000, 65536})
    void nbSnapshotsMoreThanTheTableHolds(int nb) throws IOException {
        Path img = copy("snapshot.qcow2");
        edit(img).u32(Header.NB_SNAPSHOTS, nb);
        assertOpenFails(img, corrupt("snapshot table"));
    }

    @ParameterizedTest
    @ValueSource(longs = {0x1000000, 0x110000, 0xf0008, 0, 0x7fffffffffff0000L, -0x10000L})
    void snapshotTableOffsetInvalid(long offset) throws IOException {
        Path img = copy("snapshot.qcow2");
        edit(img).u64(Header.SNAPSHOTS_OFFSET, offset);
        assertOpenFails(img, corrupt("snapshot table"));
    }

    @ParameterizedTest
    @ValueSource(longs = {0xffffffffL, 0x7fffffff, 1025, 0x10000})
    void snapshotExtraDataSizeHuge(long size) throws IOException {
        Path img = copy("snapshot.qcow2");
        edit(img).u32(SNAPSHOTS + 36, size);
        assertOpenFails(img, corrupt(SNAPSHOTS, "extra"));
    }

    @ParameterizedTest
    @ValueSource(longs = {0xffffffffL, 0x7fffffff, 0x80000000L, 0x400001})
    void snapshotL1SizeHuge(long size) throws IOException {
        Path img = copy("snapshot.qcow2");
        edit(img).u32(SNAPSHOTS + 8, size);
        assertOpenFails(img, corrupt(SNAPSHOTS, "L1 size"));
    }

    @Test
    void snapshotNameOverrunsTheFile() throws IOException {
        // the second entry (at 0xf0048) is the last thing in the file
        Path img = copy("snapshot.qcow2");
        assertEquals(0x110000, Files.size(img));
        edit(img).u16(0xf0048 + 14, 0xffff).u32(0xf0048 + 36, 1024);
        edit(img).truncate(0xf0048 + 40 + 1024);
        assertOpenFails(img, corrupt(0xf0048, "overruns"));
    }

    @ParameterizedTest
    @ValueSource(longs = {0x10000000, 0x80200, 0, 0x200, 0x7fffffffffff0000L})
    void snapshotL1TableOffsetInvalid(long offset) throws IOException {
        // found when the snapshot is read, not at open
        Path img = copy("snapshot.qcow2");
        edit(img).u64(SNAPSHOTS, offset);
        assertStageFails(img, "snapshots", -1, corrupt("snapshot L1 table"));
    }

    // =================================================================== L1 / L2 entries

    @ParameterizedTest
    @ValueSource(longs = {0x8000000000000200L, 0x200, 0x8000000010000000L, 0x80000000000d0000L,
            0x8000000000040200L, 0x00fffffffffe0000L})
    void l1EntryInvalid(long entry) throws IOException {
        // in the header, past the end of the file, unaligned
        Path img = copy("chain-base.qcow2");
        edit(img).u64(BASE_L1, entry);
        assertStageFails(img, "read", 0, corrupt(BASE_L1, "L2 table offset"));
    }

    @ParameterizedTest
    @ValueSource(longs = {0x8000000000000200L, 0x200, 0x8000000000050200L})
    void l2EntryInvalid(long entry) throws IOException {
        // in the header, unaligned
        Path img = copy("chain-base.qcow2");
        edit(img).u64(BASE_L2, entry);
        assertStageFails(img, "read", 0, corrupt(BASE_L2, "cluster offset"));
    }

    @ParameterizedTest
    @ValueSource(longs = {0x8000000010000000L, 0x10000000, 0x80000000000d0000L, 0x00fffffffffe0000L})
    void l2EntryPastTheEndOfTheFileReadsAsZeros(long entry) throws IOException {
        // as in qemu (an image cut short): reads and block status see zeros there; a write
        // there (in place, or dropping the reference) is refused before anything changes
        Path img = copy("chain-base.qcow2");
        edit(img).u64(BASE_L2, entry);
        assertWriteFails(img, 0, corrupt(BASE_L2, "cluster offset"));
        assertTrue(Patterns.matches(attempt(img, Mode.RO, -1, ALLOCATION_BUDGET).readBack(0, 1 << 16), 0));
    }

    @Test
    void l2EntryPastTheEndOfTheFileInAVersion2Image() throws IOException {
        Path img = copy("v2.qcow2");
        edit(img).u64(BASE_L2 + 16 * 8, 0x8000000010000000L);
        assertWriteFails(img, 16L << 16, corrupt(BASE_L2 + 16 * 8, "cluster offset"));
        assertTrue(Patterns.matches(attempt(img, Mode.RO, -1, ALLOCATION_BUDGET).readBack(16L << 16, 1 << 16), 0));
    }

    @Test
    void extendedL2SubclusterAllocatedWithoutHostOffset() throws IOException {
        // entry 0: subclusters 0 and 5 allocated at 0x50000; drop the offset, keep the bitmap
        Path img = copy("extended-l2.qcow2");
        edit(img).u64(BASE_L2, 0x8000000000000000L);
        assertStageFails(img, "read", 0, corrupt(BASE_L2, "subcluster"));
    }

    @Test
    void l2EntryWithOffsetZeroAndCopiedReadsAsUnallocated() throws IOException {
        // spec: offset 0 with COPIED is only meaningful with a data file; QEMU reads it as unallocated
        Path img = copy("chain-base.qcow2");
        byte[] before = readAll(img);
        edit(img).u64(BASE_L2, 0x8000000000000000L);
        Arrays.fill(before, 0, 0x10000, (byte) 0);
        assertEquals(digest(before), assertWorks(img).digest);
    }

    // An entry that aliases metadata reads as garbage (QEMU reads it too), but a write through
    // it would overwrite the metadata: it must fail and leave the file alone.

    @ParameterizedTest
    @ValueSource(longs = {0x8000000000030000L, 0x8000000000010000L, 0x8000000000040000L})
    void l2EntryAliasingMetadataRefusesWrites(long entry) throws IOException {
        // the L1 table, the refcount table, the L2 table itself
        Path img = copy("chain-base.qcow2");
        edit(img).u64(BASE_L2, entry);
        assertReads(img);
        assertWriteFails(img, 0, corrupt(BASE_L2, "overlaps"));
    }

    @ParameterizedTest
    @ValueSource(longs = {0x8000000000030000L, 0x8000000000010000L})
    void l1EntryAliasingMetadataRefusesWrites(long entry) throws IOException {
        // the L1 table or the refcount table used as an L2 table
        Path img = copy("chain-base.qcow2");
        edit(img).u64(BASE_L1, entry);
        assertReads(img);
        assertWriteFails(img, 0, corrupt("overlaps"));
    }

    /**
     * Refcounts that call live metadata free: the allocator must not hand those clusters out
     * (zero-filled as a new table, or written over as data), or the image loses everything.
     * chain-base: cluster 1 is the refcount table, 2 the refcount block, 3 the L1, 4 the L2 table.
     * (A data cluster with refcount 0 is overwritten, by QEMU too: only a check finds that.)
     */
    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3, 4})
    void refcountZeroOnLiveMetadataLosesNothing(int cluster) throws IOException {
        Path img = copy("chain-base.qcow2");
        byte[] before = readAll(img);
        long refcountBlock = 0x20000;
        assertEquals(1, edit(img).u16(refcountBlock + 2L * cluster));
        edit(img).u16(refcountBlock + 2L * cluster, 0);
        // 4 KiB at 2 MiB, unallocated: needs a new data cluster, and the first "free" one is ours
        assertWriteFails(img, 2L << 20, corrupt(refcountBlock + (cluster & ~3) * 2L, "has refcount 0 but holds"));
        assertEquals(digest(before), digest(readAll(img)), "guest data changed");
    }

    // =================================================================== compressed clusters

    /** zlib-compressed: L2 entry 2 (guest 0x20000) is a compressed cluster at host 0x5004f. */
    static final long COMPRESSED_ENTRY = ZLIB_L2 + 2 * 8;
    static final long COMPRESSED_GUEST = 2L << 16;

    @ParameterizedTest
    @ValueSource(longs = {0x10000000, 0xb0000, 0x100, 0, 0x3fffffffffffffL})
    void compressedClusterOffsetInvalid(long host) throws IOException {
        Path img = copy("zlib-compressed.qcow2");
        long entry = edit(img).u64(COMPRESSED_ENTRY);
        long sectors = entry & (0xffL << 54);
        edit(img).u64(COMPRESSED_ENTRY, (1L << 62) | sectors | host);
        assertStageFails(img, "read", COMPRESSED_GUEST, corrupt(COMPRESSED_ENTRY, "compressed"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"zlib-compressed.qcow2", "zstd-compressed.qcow2"})
    void compressedClusterWithMaximalSectorCountReadsTheSame(String name) throws IOException {
        // decompression stops after one cluster, so trailing bytes do not matter (QEMU reads it too)
        Path img = copy(name);
        byte[] before = readAll(img);
        long entry = edit(img).u64(COMPRESSED_ENTRY);
        assertTrue((entry & (1L << 62)) != 0, "entry 2 is compressed");
        edit(img).u64(COMPRESSED_ENTRY, entry | (0xffL << 54));
        // the write goes to cluster 1: overwriting cluster 2 would release every sector the entry
        // claims, guest cluster 1's host cluster included (QEMU does the same); a known gap
        assertEquals(digest(before), assertWorks(img, 1L << 16).digest);
    }

    @Test
    void compressedClusterWithMaximalSectorCountAtTheEndOfTheFile() throws IOException {
        // the span runs past the end of the file: those bytes read as zeros, the cluster still decodes
        Path img = copy("zlib-compressed.qcow2");
        byte[] before = readAll(img);
        long entry = edit(img).u64(COMPRESSED_ENTRY);
        long host = entry & ((1L << 54) - 1);
        long sectors = (entry >>> 54) & 0xff;
        // the compressed bytes, appended at the end of the file; the entry then claims 128 KiB
        byte[] data = edit(img).read(host, (int) ((sectors + 1) * 512 - (host & 511)));
        long end = Files.size(img);
        edit(img).bytes(end, data).u64(COMPRESSED_ENTRY, (1L << 62) | (0xffL << 54) | end);
        assertEquals(digest(before), assertReads(img).digest);
    }

    @Test
    void compressedClusterPointingAtMetadataFailsToDecompress() throws IOException {
        // the L1 table is no deflate stream
        Path img = copy("zlib-compressed.qcow2");
        edit(img).u64(COMPRESSED_ENTRY, (1L << 62) | (2L << 54) | 0x30000);
        assertStageFails(img, "read", COMPRESSED_GUEST, corrupt("compressed cluster"));
    }

    @Test
    void zstdFrameClaimingAHugeWindow() throws IOException {
        // entry 2's frame: single-segment header 0x60; make it claim a 2 GiB window (windowLog 31),
        // which a decoder would allocate (natively) before decoding a byte
        Path img = copy("zstd-compressed.qcow2");
        long host = edit(img).u64(COMPRESSED_ENTRY) & ((1L << 54) - 1);
        assertEquals("28b52ffd60", HexFormat.of().formatHex(edit(img).read(host, 5)));
        edit(img).u8(host + 4, 0x00).u8(host + 5, 21 << 3);
        assertStageFails(img, "read", COMPRESSED_GUEST, corrupt("compressed cluster", "zstd"));
    }

    // =================================================================== feature bits

    @Test
    void unknownIncompatibleBitNamedByTheFeatureTable() throws IOException {
        // rename table entry 4 (incompatible bit 4) into incompatible bit 5, "hostile feature"
        Path img = copy("empty.qcow2");
        long entry = FEATURE_TABLE + 8 + 4 * 48;
        assertEquals(0, edit(img).read(entry, 1)[0]);
        assertEquals(4, edit(img).read(entry + 1, 1)[0]);
        edit(img).u8(entry + 1, 5).bytes(entry + 2, new byte[46]).ascii(entry + 2, "hostile feature");
        edit(img).u64(Header.INCOMPATIBLE_FEATURES, 1L << 5);
        assertOpenFails(img, unsupported("hostile feature"));
    }

    @Test
    void unknownIncompatibleBitsNamedAndUnnamed() throws IOException {
        Path img = copy("empty.qcow2");
        long entry = FEATURE_TABLE + 8 + 4 * 48;
        edit(img).u8(entry + 1, 5).bytes(entry + 2, new byte[46]).ascii(entry + 2, "hostile feature");
        edit(img).u64(Header.INCOMPATIBLE_FEATURES, (1L << 5) | (1L << 40));
        // qemu's words: the named ones, then what is left as one mask
        assertOpenFails(img, unsupported("Unsupported qcow2 feature(s): hostile feature, Unknown incompatible feature: 10000000000"));
    }

    @ParameterizedTest
    @ValueSource(ints = {5, 40, 63})
    void unknownIncompatibleBitWithoutFeatureTable(int bit) throws IOException {
        Path img = copy("refcount-bits-1.qcow2");
        edit(img).u64(Header.INCOMPATIBLE_FEATURES, 1L << bit);
        assertOpenFails(img, unsupported("Unsupported qcow2 feature(s): Unknown incompatible feature: " + Long.toHexString(1L << bit)));
    }

    @Test
    void unknownIncompatibleBitWithAFeatureTableThatDoesNotNameIt() throws IOException {
        Path img = copy("empty.qcow2");
        edit(img).u64(Header.INCOMPATIBLE_FEATURES, 1L << 33);
        assertOpenFails(img, unsupported("Unsupported qcow2 feature(s): Unknown incompatible feature: 200000000"));
    }

    @Test
    void unknownCompatibleBitsAreIgnored() throws IOException {
        Path img = copy("chain-base.qcow2");
        byte[] before = readAll(img);
        edit(img).u64(Header.COMPATIBLE_FEATURES, 0xfffffffffffffffeL);
        assertEquals(digest(before), assertWorks(img).digest);
    }

    @Test
    void corruptBitRefusesReadWriteButReadsReadOnly() throws IOException {
        Path img = copy("chain-base.qcow2");
        byte[] before = readAll(img);
        edit(img).u64(Header.INCOMPATIBLE_FEATURES, Header.INCOMPAT_CORRUPT);
        String sha = ImageEditor.sha256(img);
        Attempt ro = attempt(img, Mode.RO, 0, ALLOCATION_BUDGET);
        assertClean(ro);
        assertEquals(digest(before), ro.digest);
        Attempt rw = attempt(img, Mode.RW, 0, ALLOCATION_BUDGET);
        expectFailure(rw, "open", corrupt(Header.INCOMPATIBLE_FEATURES, "corrupt"));
        assertEquals(sha, ImageEditor.sha256(img), "file changed by a refused open");
    }

    @Test
    void encryptedImagesAreUnsupported() throws IOException {
        // legacy AES and unknown methods: unsupported; LUKS (2) without its header pointer: corrupt
        for (int method : new int[] {1, 2, 3, -1}) {
            Path img = copy("chain-base.qcow2");
            edit(img).u32(Header.CRYPT_METHOD, method);
            assertOpenFails(img, method == 2 ? corrupt(Header.CRYPT_METHOD, "full disk encryption header") : unsupported("crypt"));
        }
    }

    @Test
    void unknownCompressionType() throws IOException {
        Path img = copy("zstd-compressed.qcow2");
        edit(img).u8(Header.COMPRESSION_TYPE, 2);
        assertOpenFails(img, unsupported("compression type 2"));
    }

    @Test
    void compressionBitWithoutCompressionType() throws IOException {
        Path img = copy("zstd-compressed.qcow2");
        edit(img).u8(Header.COMPRESSION_TYPE, 0);
        assertOpenFails(img, corrupt(Header.INCOMPATIBLE_FEATURES, "compression"));
    }

    @Test
    void extendedL2WithSmallClusters() throws IOException {
        Path img = copy("refcount-bits-1.qcow2");
        edit(img).u64(Header.INCOMPATIBLE_FEATURES, Header.INCOMPAT_EXTENDED_L2);
        assertOpenFails(img, corrupt(Header.CLUSTER_BITS, "Extended L2"));
    }

    @Test
    void dataFileBitWithoutExtension() throws IOException {
        Path img = copy("empty.qcow2");
        edit(img).u64(Header.INCOMPATIBLE_FEATURES, Header.INCOMPAT_DATA_FILE);
        assertOpenFails(img, unsupported("data file"));
    }

    @Test
    void dataFileMissing() throws IOException {
        Path img = copy("data-file.qcow2");
        Files.delete(tmp.resolve("data-file.data"));
        assertOpenFails(img, new Expect(NoSuchFileException.class, null, "data-file.data"));
    }

    @Test
    void dataFileIsTheImageItself() throws IOException {
        // guest writes land at host offset = guest offset: they would overwrite the image's own metadata
        Path img = copy("data-file.qcow2");
        edit(img).ascii(112 + 8, "data-file.qcow2").u32(116, "data-file.qcow2".length());
        assertOpenFails(img, corrupt("data file", "image itself"));
    }

    @Test
    void rawDataFileWithBackingFile() throws IOException {
        Path img = copy("chain-mid.qcow2");
        edit(img).u64(Header.AUTOCLEAR_FEATURES, Header.AUTOCLEAR_DATA_FILE_RAW);
        assertOpenFails(img, corrupt(Header.AUTOCLEAR_FEATURES, "data-file-raw"));
    }

    // =================================================================== bitmaps extension
    // bitmaps.qcow2: extension header at 504 (data at 512: nb_bitmaps, reserved, directory
    // size 80, directory offset 0x150000); entry 0 "b-enabled" (auto) at 0x150000 with its
    // one-entry table at 0x120000 -> 0xe0000; entry 1 "b-disabled" at 0x150028.

    static final long BITMAPS_EXT = 512;
    static final long BITMAP_DIR = 0x150000;
    static final long BITMAP_DIR_1 = 0x150028;
    static final long BITMAP_TABLE = 0x120000;

    @ParameterizedTest
    @ValueSource(longs = {0, 0xffffffffL, 0x10000, 3, 1})
    void bitmapCountInvalid(long nb) throws IOException {
        Path img = copy("bitmaps.qcow2");
        edit(img).u32(BITMAPS_EXT, nb);
        assertOpenFails(img, corrupt("bitmap"));
    }

    @Test
    void bitmapsExtensionReservedFieldSet() throws IOException {
        Path img = copy("bitmaps.qcow2");
        edit(img).u32(BITMAPS_EXT + 4, 1);
        assertOpenFails(img, corrupt("reserved"));
    }

    @ParameterizedTest
    @ValueSource(ints = {23, 16, 32})
    void bitmapsExtensionLengthNot24(int length) throws IOException {
        Path img = copy("bitmaps.qcow2");
        edit(img).u32(BITMAPS_EXT - 4, length);
        assertOpenFails(img, corrupt("extension length"));
    }

    @ParameterizedTest
    @ValueSource(longs = {1L << 40, -1, 0, 0x3fff000, 72, 88})
    void bitmapDirectorySizeInvalid(long size) throws IOException {
        // over QEMU's limit, none, past the end of the file, cutting or overrunning the entries
        Path img = copy("bitmaps.qcow2");
        edit(img).u64(BITMAPS_EXT + 8, size);
        assertOpenFails(img, corrupt("bitmap"));
    }

    @ParameterizedTest
    @ValueSource(longs = {0x10000000, 0x160008, 0x150008, 0, 0x7fffffffffff0000L, 0x8000000000150000L})
    void bitmapDirectoryOffsetInvalid(long offset) throws IOException {
        Path img = copy("bitmaps.qcow2");
        edit(img).u64(BITMAPS_EXT + 16, offset);
        assertOpenFails(img, corrupt("bitmap directory"));
    }

    @ParameterizedTest
    @ValueSource(longs = {0x10000000, 0x120200, 0, 0x8000000000120000L, 0x7fffffffffff0000L, 0x170000})
    void bitmapTableOffsetInvalid(long offset) throws IOException {
        Path img = copy("bitmaps.qcow2");
        edit(img).u64(BITMAP_DIR, offset);
        assertOpenFails(img, corrupt(BITMAP_DIR, "constraints"));
    }

    @ParameterizedTest
    @ValueSource(longs = {0, 0xffffffffL, 0x8000001, 2})
    void bitmapTableSizeInvalid(long size) throws IOException {
        Path img = copy("bitmaps.qcow2");
        edit(img).u32(BITMAP_DIR + 8, size);
        assertOpenFails(img, corrupt("b-enabled"));
    }

    @ParameterizedTest
    @ValueSource(ints = {8, 32, 0xff, 0})
    void bitmapGranularityInvalid(int bits) throws IOException {
        Path img = copy("bitmaps.qcow2");
        edit(img).u8(BITMAP_DIR + 17, bits);
        assertOpenFails(img, corrupt(BITMAP_DIR, "constraints"));
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 2, 0xff})
    void bitmapTypeInvalid(int type) throws IOException {
        Path img = copy("bitmaps.qcow2");
        edit(img).u8(BITMAP_DIR + 16, type);
        assertOpenFails(img, corrupt(BITMAP_DIR, "constraints"));
    }

    @ParameterizedTest
    @ValueSource(longs = {1 << 2, 1 << 3, 0x80000000L})
    void bitmapReservedFlags(long flags) throws IOException {
        Path img = copy("bitmaps.qcow2");
        edit(img).u32(BITMAP_DIR + 12, flags | 2);
        assertOpenFails(img, corrupt(BITMAP_DIR, "constraints"));
    }

    @ParameterizedTest
    @ValueSource(ints = {0xffff, 17, 0})
    void bitmapNameSizeInvalid(int size) throws IOException {
        // overrunning the directory, running into the next entry, empty
        Path img = copy("bitmaps.qcow2");
        edit(img).u16(BITMAP_DIR + 18, size);
        assertOpenFails(img, corrupt("bitmap directory"));
    }

    @ParameterizedTest
    @ValueSource(longs = {8, 0xffffffffL, 0x7ffffff0})
    void bitmapExtraData(long size) throws IOException {
        Path img = copy("bitmaps.qcow2");
        edit(img).u32(BITMAP_DIR + 20, size);
        assertOpenFails(img, corrupt("bitmap directory"));
    }

    @Test
    void bitmapNamesDuplicated() throws IOException {
        // "b-disabled" (10 bytes) renamed "b-enabled" (9): same padded entry size
        Path img = copy("bitmaps.qcow2");
        assertEquals("b-disabled", new String(edit(img).read(BITMAP_DIR_1 + 24, 10), java.nio.charset.StandardCharsets.US_ASCII));
        edit(img).u16(BITMAP_DIR_1 + 18, 9).ascii(BITMAP_DIR_1 + 24, "b-enabled\0");
        assertOpenFails(img, corrupt("b-enabled"));
    }

    @ParameterizedTest
    @ValueSource(longs = {0xe0002, 0x10000000, 0xe0200, 0xe0001, 0x200, 0x8000000000e0000L, 0x0100000000e0000L})
    void bitmapTableEntryInvalid(long entry) throws IOException {
        // reserved bits, past the end of the file, unaligned, all-ones with an offset, in the
        // header: found when the enabled bitmap is loaded for the first write, before it is marked in_use
        Path img = copy("bitmaps.qcow2");
        edit(img).u64(BITMAP_TABLE, entry);
        assertWriteFails(img, 0, corrupt(BITMAP_TABLE, "bitmap table"));
    }

    @Test
    void bitmapsExtensionWithoutAutoclearBitIsIgnored() throws IOException {
        // a program without bitmap support wrote the image: the bitmaps are inconsistent, not an error
        Path img = copy("bitmaps.qcow2");
        byte[] before = readAll(img);
        edit(img).u64(Header.AUTOCLEAR_FEATURES, 0);
        assertEquals(digest(before), assertWorks(img).digest);
    }

    @Test
    void bitmapsAutoclearBitWithoutExtensionIsIgnored() throws IOException {
        Path img = copy("chain-base.qcow2");
        byte[] before = readAll(img);
        edit(img).u64(Header.AUTOCLEAR_FEATURES, Header.AUTOCLEAR_BITMAPS);
        assertEquals(digest(before), assertWorks(img).digest);
    }

    // =================================================================== backing chains

    @Test
    void backingFileMissing() throws IOException {
        Path img = copy("chain-mid.qcow2");
        Files.delete(tmp.resolve("chain-base.qcow2"));
        assertOpenFails(img, new Expect(NoSuchFileException.class, null, "chain-base.qcow2"));
    }

    @Test
    void backingFileIsADirectory() throws IOException {
        Path img = copy("chain-mid.qcow2");
        edit(img).u32(Header.BACKING_FILE_SIZE, 1).ascii(528, ".");
        assertOpenFails(img, new Expect(FileSystemException.class, null, "backing file", "to be a regular file"));
    }

    @Test
    void backingFormatUnknown() throws IOException {
        Path img = copy("chain-mid.qcow2");
        edit(img).ascii(112 + 8, "vmdk!");
        assertOpenFails(img, unsupported("vmdk!"));
    }

    @Test
    void backingFileNotQcow2AsTheFormatClaims() throws IOException {
        Path img = copy("chain-mid.qcow2");
        Files.write(tmp.resolve("chain-base.qcow2"), new byte[4096]);
        assertOpenFails(img, corrupt(0, "magic"));
    }

    @Test
    void backingFileLoopOfTwo() throws IOException {
        Path a = tmp.resolve("a.qcow2");
        Path b = tmp.resolve("b.qcow2");
        Qemu.create(a, "1M");
        Qemu.create(b, "1M");
        Qemu.besideImage(a, "qemu-img", "rebase", "-u", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2", "a.qcow2").assertOk();
        Qemu.besideImage(b, "qemu-img", "rebase", "-u", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", "b.qcow2").assertOk();
        String shaB = ImageEditor.sha256(b);
        assertOpenFails(a, corrupt("loop"));
        assertOpenFails(b, corrupt("loop"));
        assertEquals(shaB, ImageEditor.sha256(b));
    }

    @Test
    void backingFileLoopOfOne() throws IOException {
        Path a = tmp.resolve("a.qcow2");
        Qemu.create(a, "1M");
        Qemu.besideImage(a, "qemu-img", "rebase", "-u", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", "a.qcow2").assertOk();
        assertOpenFails(a, corrupt("loop"));
    }

    @Test
    void backingFileLoopThroughAnotherName() throws IOException {
        // a -> sub/../a.qcow2, the same file under another name
        Path a = tmp.resolve("a.qcow2");
        Files.createDirectory(tmp.resolve("sub"));
        Qemu.create(a, "1M");
        Qemu.besideImage(a, "qemu-img", "rebase", "-u", "-f", "qcow2", "-b", "sub/../a.qcow2", "-F", "qcow2", "a.qcow2").assertOk();
        assertOpenFails(a, corrupt("loop"));
    }

    // =================================================================== fuzz corpus

    static final List<String> FUZZ_IMAGES = List.of("empty.qcow2", "chain-mid.qcow2", "zlib-compressed.qcow2",
            "snapshot.qcow2", "v2.qcow2", "cluster-512.qcow2", "refcount-bits-1.qcow2", "extended-l2.qcow2",
            "data-file.qcow2", "zstd-compressed.qcow2", "lazy-dirty.qcow2", "raw-backed.qcow2",
            "extended-l2-backed.qcow2", "bitmaps.qcow2", "bitmaps-inuse.qcow2");
    /** 14 by default (210 variants), 667 in the long mode (10,005); {@code -Dqcow4j.fuzz.variants=N} to choose. */
    static final int VARIANTS_PER_IMAGE = Integer.getInteger("qcow4j.fuzz.variants",
            Boolean.getBoolean("qcow4j.long") ? 667 : 14);
    /** Bytes are changed in the first 4 clusters ({@code -Dqcow4j.fuzz.clusters=N} to reach further). */
    static final int FUZZ_CLUSTERS = Integer.getInteger("qcow4j.fuzz.clusters", 4);

    /**
     * A generated corpus: random bytes changed in the first four clusters of reference images
     * (half of them in the first 512 bytes, where the header fields are). Every variant must
     * open and read, or fail with an IOException (never a RuntimeException, an Error, a hang or
     * an oversized allocation); a failed open leaves the file as it was; a write that
     * succeeded reads back after a reopen.
     * {@code -Dqcow4j.fuzz.seed=N} makes another corpus; failing variants are kept in
     * {@code target/fuzz-failures}.
     */
    @Test
    void fuzzCorpus() throws IOException {
        long seed = Long.getLong("qcow4j.fuzz.seed", 0x5eed_c0a7L);
        Random random = new Random(seed);
        List<String> failures = new ArrayList<>();
        Map<String, Integer> outcomes = new TreeMap<>();
        int variant = 0;
        for (String name : FUZZ_IMAGES) {
            // the variant lives beside copies of the files it references (backing, data file)
            Path dir = Files.createDirectory(tmp.resolve("fuzz-" + name));
            TestData.copyToTemp(name, dir);
            Path pristine = TestData.image(name);
            Path img = dir.resolve("variant-" + name);
            int clusterBits = (int) edit(pristine).u32(Header.CLUSTER_BITS);
            long region = Math.min(Files.size(pristine), (long) FUZZ_CLUSTERS << clusterBits);
            for (int v = 0; v < VARIANTS_PER_IMAGE; v++, variant++) {
                Files.copy(pristine, img, StandardCopyOption.REPLACE_EXISTING);
                int flips = 1 + random.nextInt(8);
                StringBuilder what = new StringBuilder();
                for (int f = 0; f < flips; f++) {
                    long off = random.nextBoolean() ? random.nextInt(512) : (long) (random.nextDouble() * region);
                    int value = random.nextInt(256);
                    if (random.nextInt(4) == 0) {
                        value = edit(img).read(off, 1)[0] ^ (1 << random.nextInt(8));
                    }
                    edit(img).u8(off, value);
                    what.append(String.format(Locale.ROOT, " [0x%x]=0x%02x", off, value & 0xff));
                }
                long writeOffset = random.nextInt(16 << 20);
                String id = "seed 0x" + Long.toHexString(seed) + " variant " + variant + " (" + name + ":" + what
                        + ", write at 0x" + Long.toHexString(writeOffset) + ")";
                try {
                    String outcome = fuzzOne(img, id, writeOffset);
                    outcomes.merge(outcome, 1, Integer::sum);
                } catch (AssertionError e) {
                    failures.add(id + ": " + e.getMessage());
                    Path keep = Path.of("target", "fuzz-failures");
                    Files.createDirectories(keep);
                    Files.copy(img, keep.resolve("variant-" + variant + "-" + name), StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
        System.out.println("fuzz corpus, seed 0x" + Long.toHexString(seed) + ": " + outcomes);
        if (!failures.isEmpty()) {
            fail(failures.size() + " of " + variant + " fuzzed images misbehaved (seed 0x" + Long.toHexString(seed)
                    + ", replay with -Dqcow4j.fuzz.seed=" + seed + "):\n" + String.join("\n", failures));
        }
        assertEquals(FUZZ_IMAGES.size() * VARIANTS_PER_IMAGE, variant);
        // the corpus must exercise both sides: some variants rejected, some opened
        assertTrue(outcomes.keySet().stream().anyMatch(k -> k.startsWith("ro open: ")), "no variant was rejected: " + outcomes);
        assertTrue(outcomes.keySet().stream().anyMatch(k -> k.startsWith("ro ok")), "no variant opened: " + outcomes);
    }

    /**
     * Every input that ever made the fuzzer fail, kept under {@code testdata/regressions/},
     * goes through the same attempts on a copy.
     */
    @Test
    void regressions() throws IOException {
        Path dir = TestData.dir().resolve("regressions");
        List<Path> inputs;
        try (java.util.stream.Stream<Path> s = Files.list(dir)) {
            inputs = s.filter(p -> p.getFileName().toString().endsWith(".qcow2")).sorted().toList();
        }
        assertTrue(!inputs.isEmpty(), "no regression inputs in " + dir);
        List<String> failures = new ArrayList<>();
        for (Path input : inputs) {
            Path img = tmp.resolve(input.getFileName());
            Files.copy(input, img, StandardCopyOption.REPLACE_EXISTING);
            try {
                fuzzOne(img, input.getFileName().toString(), 0x100000);
            } catch (AssertionError e) {
                failures.add(input.getFileName() + ": " + e.getMessage());
            }
        }
        if (!failures.isEmpty()) {
            fail(String.join("\n", failures));
        }
    }

    /** One fuzzed image, read-only then read-write; returns a short outcome for the statistics. */
    private String fuzzOne(Path img, String id, long writeOffset) {
        String sha = ImageEditor.sha256(img);
        Attempt ro = attempt(img, Mode.RO, 0, ALLOCATION_BUDGET);
        assertOnlyIoExceptions(ro, id);
        assertEquals(sha, ImageEditor.sha256(img), "read-only use changed the file");
        Attempt rw = attempt(img, Mode.RW, writeOffset, ALLOCATION_BUDGET);
        assertOnlyIoExceptions(rw, id);
        if (!rw.opened) {
            assertEquals(sha, ImageEditor.sha256(img), "failed read-write open changed the file");
        } else if (rw.failures.isEmpty() && rw.writtenAt >= 0) {
            // a write that succeeded is there after a reopen
            Attempt again = attempt(img, Mode.RO, 0, ALLOCATION_BUDGET);
            assertTrue(again.opened, () -> id + ": does not open after a successful write: " + again);
            assertTrue(Patterns.matches(again.readBack(rw.writtenAt, WRITE_LENGTH), 0xa5), () -> id + ": the write is lost");
        }
        return outcome("ro", ro) + ", " + outcome("rw", rw);
    }

    private static String outcome(String mode, Attempt a) {
        Map.Entry<String, Throwable> first = a.first();
        return first == null ? mode + " ok" : mode + " " + first.getKey() + ": " + first.getValue().getClass().getSimpleName();
    }

    // ------------------------------------------------------------------- files

    private Path copy(String name) {
        return TestData.copyToTemp(name, tmp);
    }

    private static ImageEditor edit(Path img) {
        return ImageEditor.of(img);
    }

    /** The disk of a (sound) image as qcow4j reads it, read-only. */
    private static byte[] readAll(Path img) throws IOException {
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            byte[] out = new byte[(int) image.size()];
            image.read(0, ByteBuffer.wrap(out));
            return out;
        }
    }

    @BeforeAll
    static void allocationMeterWorks() {
        // without the meter every budget would pass silently
        long before = allocatedBytes();
        byte[] probe = new byte[1 << 20];
        assertTrue(before >= 0 && allocatedBytes() - before >= probe.length, "thread allocation metering unavailable");
    }
}
