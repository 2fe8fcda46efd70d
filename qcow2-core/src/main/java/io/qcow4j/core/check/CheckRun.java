package io.qcow4j.core.check;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.engine.EngineParts;
import io.qcow4j.core.engine.MetadataRanges;
import io.qcow4j.core.format.BitmapsExtension;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.HeaderExtension;
import io.qcow4j.core.format.HostOffsets;
import io.qcow4j.core.format.RefcountBlock;
import io.qcow4j.core.storage.Storage;

/**
 * One check or repair session on an open image: its geometry, the stderr lines written so
 * far, reads with qemu's rules (past the end of the file: zeros; past the largest offset a
 * request may have: an I/O error), the metadata overlap check before every write, and
 * qemu's "corruption signalled once" state.
 */
final class CheckRun {
    /** Requests past this offset fail in qemu (BDRV_MAX_LENGTH: INT64_MAX aligned down to 1 GiB). */
    static final long MAX_LENGTH = Long.MAX_VALUE & ~((1L << 30) - 1);

    final EngineParts p;
    final Storage storage;
    final int bits;
    final int cs;
    final int refcountOrder;
    final long refcountMax;
    final boolean writable;
    final boolean dataFile;
    /** Lines kept in the result when nobody streams them: a wrecked image may have millions. */
    static final int MAX_RETAINED_LINES = 100_000;
    final List<CheckResult.Line> out = new ArrayList<>();
    final java.util.function.Consumer<CheckResult.Line> sink;
    long dropped;
    private boolean signaled;
    /** Work done so far, in L2 entries visited, clusters counted and (64 each) lines written. */
    private long work;
    private final long workBudget;
    private boolean stopped;
    /** Receives how far the check is, 0 to 1; null when nobody watches. */
    private final java.util.function.DoubleConsumer progress;
    private double passStart;
    private double passSpan = 1;

    /** The parts of one pass, as fractions of it: counting references, comparing refcounts, COPIED flags. */
    static final double SCAN_START = 0;
    static final double SCAN_SPAN = 0.5;
    static final double COMPARE_START = 0.5;
    static final double COMPARE_SPAN = 0.25;
    static final double COPIED_START = 0.75;
    static final double COPIED_SPAN = 0.25;

    /** Thrown when the metadata asks for more work than a sound image could: corrupt beyond walking. */
    static final class TooMuchWork extends RuntimeException {
        private static final long serialVersionUID = 1L;

        TooMuchWork() {
            super("the metadata names more than the image can hold", null, false, false);
        }
    }

    /** @param repairing a repair (qemu opens the image read-write then: corruption events mark it corrupt) */
    CheckRun(EngineParts p, boolean repairing, java.util.function.Consumer<CheckResult.Line> sink,
             java.util.function.DoubleConsumer progress) {
        this.sink = sink;
        this.progress = progress;
        this.p = p;
        this.storage = p.storage();
        this.bits = p.geometry().clusterBits();
        this.cs = 1 << bits;
        this.refcountOrder = p.header().refcountOrder();
        this.refcountMax = RefcountBlock.maxRefcount(refcountOrder);
        this.writable = repairing && !storage.isReadOnly();
        this.dataFile = p.dataFile() != null;
        this.workBudget = workBudget();
    }

    /**
     * A sound image's tables name distinct clusters of its file, so walking it costs at most
     * a few times (file clusters x L2 entries) per L1 table and bitmap; a multiple of that,
     * and at least 2^28 units (a second or two), bounds what a hostile image can make us do
     * (qemu would read the same tables over and over, for hours).
     */
    private long workBudget() {
        BitmapsExtension be = bitmapsExtension();
        double walks = 1 + p.snapshots().size() + (be != null ? be.nbBitmaps() : 0) + 2;
        double units = walks * 8 * (fileClusters() + 1) * p.geometry().l2Entries();
        return (long) Math.min(Long.MAX_VALUE / 2, Math.max(1L << 28, units));
    }

    /** Charges {@code units} of work; past the budget the check stops ({@link TooMuchWork}), once. */
    void charge(long units) {
        work += units;
        if (work > workBudget && !stopped) {
            stopped = true;
            throw new TooMuchWork();
        }
    }

    /** The share of the whole check the next pass covers (a repair runs two). */
    void beginPass(double start, double span) {
        passStart = start;
        passSpan = span;
    }

    /** Progress within the current pass: {@code done} of {@code total} in the part starting at {@code start}. */
    void progress(double start, double span, long done, long total) {
        if (progress != null) {
            double f = total <= 0 ? 1 : Math.min(1, Math.max(0, (double) done / total));
            progress.accept(passStart + passSpan * (start + span * f));
        }
    }

    /** Each pass (and the open-time look at the bitmaps) gets the whole budget. */
    void resetWork() {
        work = 0;
        stopped = false;
    }

    /** A stderr diagnostic of the check ("ERROR ...", "Leaked cluster ..."). */
    void err(String text) {
        emit(new CheckResult.Line(text, false));
    }

    /** A stderr line qemu-img prints through its error reporter ("qemu-img: ..."). */
    void report(String text) {
        emit(new CheckResult.Line(text, true));
    }

    /** The line that says why the check stopped: kept even past the cap. */
    void finalErr(String text) {
        CheckResult.Line line = new CheckResult.Line(text, false);
        if (sink != null) {
            sink.accept(line);
        } else {
            out.add(line);
        }
    }

    private void emit(CheckResult.Line line) {
        charge(64);
        if (sink != null) {
            sink.accept(line);
        } else if (out.size() < MAX_RETAINED_LINES || line.errorReport()) {
            out.add(line);
        } else {
            dropped++;
        }
    }

    /** The disk size as qemu keeps it: whole 512-byte sectors. */
    long virtualSize() {
        return p.header().size() & ~511L;
    }

    long fileLength() {
        return storage.length();
    }

    /** Clusters the file holds, rounded up. */
    long fileClusters() {
        return (fileLength() + cs - 1) >>> bits;
    }

    boolean aligned(long offset) {
        return HostOffsets.aligned(offset, cs);
    }

    /** Reads like qemu's bdrv_pread on the image file: zeros past its end, EIO past the largest request. */
    void read(long offset, ByteBuffer dst) throws CheckFailure {
        if (!HostOffsets.fits(offset, dst.remaining(), MAX_LENGTH)) {
            throw new CheckFailure(CheckFailure.EIO);
        }
        try {
            storage.read(offset, dst);
        } catch (IOException e) {
            throw new CheckFailure(CheckFailure.EIO);
        }
    }

    private ByteBuffer refblockBuffer;

    /**
     * The most of a refcount block or L2 table read at once into a direct buffer: a 2 MiB
     * cluster is not made resident whole beside the table's long[] (issue 11, check's memory).
     */
    static final int READ_WINDOW = 256 << 10;

    /** One direct buffer for the window of the refcount block being read ({@link DiskRefcounts}). */
    ByteBuffer refblockBuffer() {
        if (refblockBuffer == null) {
            refblockBuffer = ByteBuffer.allocateDirect(Math.min(cs, READ_WINDOW));
        }
        return refblockBuffer;
    }

    /**
     * True when {@code [offset, offset+size)} lies wholly past the end of the file (and within
     * the largest request): {@link #read} gives zeros there, so a table there names nothing.
     */
    boolean readsAsZeros(long offset, long size) {
        return offset >= fileLength() && size <= MAX_LENGTH - offset;
    }

    /** {@code count} big-endian longs at {@code offset} (which need not be aligned). */
    long[] readLongs(long offset, int count) throws CheckFailure {
        long[] out = new long[count];
        readLongs(offset, out, ByteBuffer.allocate(count * 8));
        return out;
    }

    /**
     * Fills {@code dst} from {@code offset} through {@code scratch}, both reused by the caller,
     * a scratch buffer full at a time (a window of a 2 MiB L2 table: the table's bytes are
     * not all made resident twice).
     */
    void readLongs(long offset, long[] dst, ByteBuffer scratch) throws CheckFailure {
        if (!HostOffsets.fits(offset, 8L * dst.length, MAX_LENGTH)) {
            throw new CheckFailure(CheckFailure.EIO);
        }
        int step = scratch.capacity() / 8;
        for (int i = 0; i < dst.length; i += step) {
            int n = Math.min(step, dst.length - i);
            scratch.clear().limit(8 * n);
            read(offset + 8L * i, scratch);
            scratch.flip();
            scratch.asLongBuffer().get(dst, i, n);
        }
    }

    void write(long offset, ByteBuffer src) throws CheckFailure {
        try {
            storage.write(offset, src);
        } catch (IOException e) {
            throw new CheckFailure(CheckFailure.EIO);
        }
    }

    void flush() throws CheckFailure {
        try {
            storage.flush();
        } catch (IOException e) {
            throw new CheckFailure(CheckFailure.EIO);
        }
    }

    /**
     * qemu's corruption event: printed once per open image; when the image is writable it is
     * also marked corrupt on disk.
     */
    void signalCorruption(String message) {
        boolean fatal = writable;
        if (signaled && (!fatal || p.header().hasIncompatible(Header.INCOMPAT_CORRUPT))) {
            return;
        }
        if (fatal) {
            err("qcow2: Marking image as corrupt: " + message + "; further corruption events will be suppressed");
            markCorrupt();
        } else {
            err("qcow2: Image is corrupt: " + message + "; further non-fatal corruption events will be suppressed");
        }
        signaled = true;
    }

    private void markCorrupt() {
        Header h = p.header();
        if (h.version() < 3) {
            return;
        }
        h = p.engine().updateHeader(old -> old.withIncompatibleFeatures(old.incompatibleFeatures() | Header.INCOMPAT_CORRUPT));
        try {
            storage.writeLong(Header.INCOMPATIBLE_FEATURES, h.incompatibleFeatures());
            storage.flush();
        } catch (IOException ignored) {
            // the write that follows fails anyway
        }
    }

    /** qemu's check before a metadata write: false (and a corruption event) if it would hit other metadata. */
    boolean preWriteOverlapCheck(int ignore, long offset, long size) {
        MetadataRanges.Inactive inactive = new MetadataRanges.Inactive(p.header().snapshotsOffset(), snapshotTableSize(),
                p.snapshots(), bitmapsExtension());
        int hit = p.mapper().ranges().overlap(MetadataRanges.CACHED & ~ignore, offset, size, inactive);
        if (hit == 0) {
            return true;
        }
        signalCorruption("Preventing invalid write on metadata (overlaps with " + MetadataRanges.qemuName(hit) + ")");
        return false;
    }

    /** Bytes of the snapshot table as qemu measures it: each entry padded to 8, but not the last. */
    long snapshotTableSize() {
        return MetadataRanges.snapshotTableSize(p.snapshots());
    }

    /**
     * The bitmaps extension as qemu keeps it after open: only in a v3 image with autoclear
     * bit 0 set (otherwise qemu ignores it and nb_bitmaps is 0); null when absent or unparsable.
     */
    BitmapsExtension bitmapsExtension() {
        Header h = p.header();
        HeaderExtension ext = h.extension(HeaderExtension.BITMAPS);
        if (ext == null || h.version() < 3 || (h.autoclearFeatures() & Header.AUTOCLEAR_BITMAPS) == 0) {
            return null;
        }
        try {
            return BitmapsExtension.parse(ext.data(), cs);
        } catch (IOException e) {
            return null;
        }
    }

    /**
     * Why the bitmaps extension qemu would read ({@link #bitmapsExtension()}'s conditions)
     * does not parse, or null: qemu then refuses to open the image, and check with it.
     */
    String bitmapsExtensionError() {
        Header h = p.header();
        HeaderExtension ext = h.extension(HeaderExtension.BITMAPS);
        if (ext == null || h.version() < 3 || (h.autoclearFeatures() & Header.AUTOCLEAR_BITMAPS) == 0) {
            return null;
        }
        try {
            BitmapsExtension.parse(ext.data(), cs);
            return null;
        } catch (IOException e) {
            return e.getMessage();
        }
    }

    /** printf's {@code %#x}: "0x..." except for zero. */
    static String hexAlt(long v) {
        return v == 0 ? "0" : "0x" + Long.toHexString(v);
    }

    static String hex(long v) {
        return Long.toHexString(v);
    }
}
