package io.qcow4j.core.engine;

import java.io.IOException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;

import io.qcow4j.core.api.AmendException;
import io.qcow4j.core.api.AmendOptions;
import io.qcow4j.core.api.CorruptImageException;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.api.UnsupportedImageException;
import io.qcow4j.core.format.FeatureNameTable;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.format.HeaderBuilder;
import io.qcow4j.core.format.HeaderExtension;
import io.qcow4j.core.format.SnapshotEntry;
import io.qcow4j.core.storage.ImageLock;

/**
 * Changes an image's options in place, as {@code qemu-img amend} does, in QEMU's order:
 * upgrade to version 3, refcount width, data file name and data-file-raw, lazy refcounts,
 * size, and last the downgrade to version 2 (zero clusters expanded first, bitmaps dropped:
 * version 2 can express neither).
 *
 * <p>Unlike QEMU, every refusal is found before the first write, so a refused amend leaves
 * the file byte-identical (QEMU may have done the earlier steps when a later one fails).
 * Each step is crash-safe on its own: new structures are written and flushed before the
 * one header write that switches to them, and what they replace is freed after it.
 */
public final class ImageAmender {
    /** QEMU's status callback: {@code done} of {@code total} work, over every step. */
    public interface Progress {
        void status(long done, long total);
    }

    private static final int UPGRADE = 0;
    private static final int REFCOUNT = 1;
    private static final int DOWNGRADE = 2;
    /** Refusal stages: before any step, in the refcount walk, after it, after the zero expansion. */
    private static final int STAGE_OPTIONS = 0;
    private static final int STAGE_REFCOUNT_WALK = 1;
    private static final int STAGE_AFTER_REFCOUNT = 2;
    private static final int STAGE_AFTER_EXPANSION = 3;

    private ImageAmender() {
    }

    /**
     * Amends {@code image} (open read-write, with its backing file) and closes it, whether
     * the amend succeeded or not. A refusal is an {@link AmendException} in QEMU's words;
     * nothing was written then.
     */
    public static void amend(Qcow2Engine image, AmendOptions options, Progress progress) throws IOException {
        Qcow2Engine img = image;
        // the image open now: a step may reopen it, and a later one fail
        Qcow2Engine[] open = {image};
        try {
            synchronized (img.lock()) {
                if (img.readOnly) {
                    throw new IOException("Image is read-only");
                }
                if (img.encryption != null) {
                    // zero-cluster expansion and the reopen would need the cipher and the secret
                    throw new UnsupportedImageException("qcow4j does not amend encrypted images");
                }
                try {
                    check(img, options);
                } catch (AmendException e) {
                    replay(img, options, e, progress);
                    throw e;
                }
            }
            apply(open, options, progress);
        } finally {
            open[0].close();
        }
    }

    // ------------------------------------------------------------ refusals

    /** Every refusal QEMU makes, in its order, against the state each step would leave. */
    static void check(Qcow2Engine img, AmendOptions o) throws IOException {
        Header h = img.header();
        int oldVersion = h.version();
        int newVersion = o.version() != null ? o.version() : oldVersion;
        if (o.dataFile() != null && img.dataFile == null) {
            throw new AmendException("data-file can only be set for images that use an external data file");
        }
        if (Boolean.TRUE.equals(o.dataFileRaw()) && !img.header().dataFileRaw()) {
            throw new AmendException("data-file-raw cannot be set on existing images");
        }
        int newBits = o.refcountBits() != null ? o.refcountBits() : h.refcountBits();
        if (newBits != h.refcountBits()) {
            if (newVersion < 3 && newBits != 16) {
                throw new AmendException("Refcount widths other than 16 bits require compatibility level 1.1 or above"
                        + " (use compat=1.1 or greater)");
            }
            try {
                RefcountWidthChange.check(img, newBits);
            } catch (AmendException e) {
                e.stage(STAGE_REFCOUNT_WALK);
                throw e;
            }
        }
        try {
            checkLater(img, o, newVersion, newBits);
        } catch (AmendException e) {
            if (e.stage() == STAGE_OPTIONS) {
                e.stage(STAGE_AFTER_REFCOUNT);
            }
            throw e;
        }
    }

    /** The refusals of the steps after the refcount change. */
    private static void checkLater(Qcow2Engine img, AmendOptions o, int newVersion, int newBits) throws IOException {
        Header h = img.header();
        int oldVersion = h.version();
        if ((o.backingFileGiven() || o.backingFormatGiven())
                && (!Objects.equals(o.backingFile(), h.backingFile()) || !Objects.equals(o.backingFormat(), img.backingLink().format()))) {
            throw new AmendException("Cannot amend the backing file\nYou can use 'qemu-img rebase' instead.");
        }
        if (Boolean.TRUE.equals(o.lazyRefcounts()) && !img.header().lazyRefcounts() && newVersion < 3) {
            throw new AmendException("Lazy refcounts only supported with compatibility level 1.1 and above"
                    + " (use compat=1.1 or greater)");
        }
        if (o.size() != 0) {
            try {
                checkResize(img, o.size(), Math.max(oldVersion, newVersion));
            } catch (AmendException e) {
                throw e;
            } catch (IOException e) {
                throw new AmendException(e.getMessage());
            }
        }
        if (newVersion < oldVersion) {
            checkDowngrade(img, newBits, o.size() != 0 ? o.size() : h.size());
        }
    }

    /** The resize happens after an upgrade and before a downgrade: at version {@code version}. */
    private static void checkResize(Qcow2Engine img, long size, int version) throws IOException {
        if (size % 512 != 0) {
            throw new AmendException("The new size must be a multiple of 512");
        }
        if (size == img.header().size()) {
            return;
        }
        if (version < 3 && !img.snapshotEntries.isEmpty()) {
            throw new AmendException("Can't resize a v2 image which has snapshots");
        }
        if (version >= 3 && img.header().version() >= 3 || size < img.header().size()) {
            ImageResizer.checkResizable(img, size);
        } else {
            img.bitmaps.checkResizable();
        }
    }

    private static void checkDowngrade(Qcow2Engine img, int refcountBits, long sizeThen) throws IOException {
        Header h = img.header();
        if (refcountBits != 16) {
            throw new AmendException("compat=0.10 requires refcount_bits=16");
        }
        if (h.hasIncompatible(Header.INCOMPAT_DATA_FILE)) {
            throw new AmendException("Cannot downgrade an image with a data file");
        }
        for (SnapshotEntry e : img.snapshotEntries) {
            long disk = e.diskSize >= 0 ? e.diskSize : h.size();
            if (Long.compareUnsigned(e.vmStateSize, 0xffffffffL) > 0 || disk != sizeThen) {
                throw new AmendException("Internal snapshots prevent downgrade of image");
            }
        }
        long features = h.incompatibleFeatures() & ~Header.INCOMPAT_COMPRESSION & ~Header.INCOMPAT_DIRTY;
        if (features != 0) {
            throw new AmendException("Cannot downgrade an image with incompatible features 0x" + Long.toHexString(features)
                    + " set");
        }
        List<long[]> l1s = l1Tables(img);
        if (h.hasIncompatible(Header.INCOMPAT_COMPRESSION) && hasCompressedClusters(img, l1s)) {
            // QEMU finds these only after it expanded the zero clusters
            AmendException e = new AmendException("Cannot downgrade an image with zstd compression type and existing"
                    + " compressed clusters");
            e.stage(STAGE_AFTER_EXPANSION);
            e.tableIndex(l1s.stream().mapToLong(t -> t.length).sum());
            throw e;
        }
    }

    /** The active L1 table and every snapshot's, each L2 offset checked (the expansion reads them all). */
    private static List<long[]> l1Tables(Qcow2Engine img) throws IOException {
        List<long[]> tables = new ArrayList<>();
        tables.add(img.mapper.l1().clone());
        for (SnapshotEntry e : img.snapshotEntries) {
            tables.add(ClusterMapper.readL1(img.storage, img.geo, e.l1TableOffset, e.l1Size, "snapshot L1 table"));
        }
        TreeWalk walk = TreeWalk.of(img.engineParts());
        for (long[] l1 : tables) {
            walk.walk(l1, 0, new TreeWalk.FileVisitor(img.storage) {
                @Override
                protected boolean l1Entry(TreeWalk w, int index, long entry) throws IOException {
                    if (w.l2() != 0 && !w.l2InFile()) {
                        throw new CorruptImageException("L1 table", w.l2(), "L2 table offset 0x" + Long.toHexString(w.l2()) + " invalid");
                    }
                    return false;
                }
            });
        }
        return tables;
    }

    /** QEMU looks at the active disk only; a snapshot's compressed clusters would be misread just the same. */
    private static boolean hasCompressedClusters(Qcow2Engine img, List<long[]> l1s) throws IOException {
        boolean[] found = {false};
        TreeWalk walk = TreeWalk.of(img.engineParts());
        for (long[] l1 : l1s) {
            walk.walk(l1, 0, new TreeWalk.FileVisitor(img.storage) {
                @Override
                protected boolean l1Entry(TreeWalk w, int index, long entry) {
                    return w.l2() != 0 && !found[0];
                }

                @Override
                protected void l2Entry(TreeWalk w) {
                    found[0] |= w.kind() == TreeWalk.Kind.COMPRESSED;
                }
            });
        }
        return found[0];
    }

    /**
     * The progress QEMU would have reported before this refusal: it refuses in the middle of
     * the work (an upgrade done, a refcount walk begun, zero clusters expanded), we before it.
     */
    private static void replay(Qcow2Engine img, AmendOptions o, AmendException e, Progress progress) {
        if (progress == null || e.stage() == STAGE_OPTIONS) {
            return;
        }
        int oldVersion = img.header().version();
        int newVersion = o.version() != null ? o.version() : oldVersion;
        boolean refcountChange = o.refcountBits() != null && o.refcountBits() != img.header().refcountBits();
        Operations ops = new Operations((newVersion != oldVersion ? 1 : 0) + (refcountChange ? 1 : 0), progress);
        if (newVersion > oldVersion) {
            RefcountWidthChange.Status s = ops.step(UPGRADE);
            s.status(0, 2);
            s.status(1, 2);
            s.status(2, 2);
        }
        if (refcountChange) {
            RefcountWidthChange.Status s = ops.step(REFCOUNT);
            long t = img.refcounts.tableEntries();
            if (e.stage() == STAGE_REFCOUNT_WALK) {
                for (long i = 0; i <= e.tableIndex(); i++) {
                    s.status(i, 3 * t);
                }
                return;
            }
            for (int walk = 0; walk < 3; walk++) {
                for (long i = 0; i < t; i++) {
                    s.status(walk * t + i, 3 * t);
                }
                s.status((walk + 1) * t, 3 * t);
            }
        }
        if (e.stage() == STAGE_AFTER_EXPANSION) {
            RefcountWidthChange.Status s = ops.step(DOWNGRADE);
            for (long i = 1; i <= e.tableIndex(); i++) {
                s.status(i, e.tableIndex());
            }
        }
    }

    // ------------------------------------------------------------ the steps

    /** The steps, on {@code open[0]}, which holds the image open now (a failed step after a reopen left it open). */
    private static void apply(Qcow2Engine[] open, AmendOptions o, Progress progress) throws IOException {
        Qcow2Engine img = open[0];
        int oldVersion = img.header().version();
        int newVersion = o.version() != null ? o.version() : oldVersion;
        int newBits = o.refcountBits() != null ? o.refcountBits() : img.header().refcountBits();
        boolean refcountChange = newBits != img.header().refcountBits();
        Operations ops = new Operations((newVersion != oldVersion ? 1 : 0) + (refcountChange ? 1 : 0), progress);
        synchronized (img.lock()) {
            img.prepareForWrite();
            settle(img);
            if (newVersion > oldVersion) {
                upgrade(img, ops.step(UPGRADE));
            }
        }
        if (newVersion > oldVersion) {
            img = open[0] = reopen(img);
        }
        if (refcountChange) {
            long[][] old;
            synchronized (img.lock()) {
                old = RefcountWidthChange.run(img, newBits, ops.step(REFCOUNT));
            }
            img = open[0] = reopen(img);
            synchronized (img.lock()) {
                img.prepareForWrite();
                for (long[] r : old) {
                    img.refcounts.free(r[0], r[1]);
                }
                img.storage.flush();
            }
        }
        synchronized (img.lock()) {
            img.prepareForWrite();
            headerOptions(img, o);
            lazyRefcounts(img, o);
            if (o.size() != 0 && o.size() != img.header().size()) {
                img.resizeDiscarding(o.size());
            }
            if (newVersion < oldVersion) {
                downgrade(img, ops.step(DOWNGRADE));
            }
        }
    }

    /**
     * Writes what the open image still holds in memory (bitmaps in use since a guest write,
     * frees waiting for a flush) before the first step: the steps replace the refcount
     * structures under the image, and the close of the reopen that follows stored the bitmaps
     * through the refcounts loaded before (new clusters at refcount 0 in the new structures,
     * the replaced directory leaked), as the amend power-loss scenario found.
     */
    private static void settle(Qcow2Engine img) throws IOException {
        if (img.bitmaps.needsStore()) {
            img.bitmaps.store();
        }
        img.syncMetadata();
        img.storage.flush();
        // the flush made the store's header switch durable: what it replaced may go now
        if (img.bitmaps.releaseDeferredFrees() | img.refcounts.applyPendingFrees()) {
            img.storage.flush();
        }
    }

    /** Version 3: the snapshot table in v3's form when an entry lacks fields, and the header. */
    private static void upgrade(Qcow2Engine img, RefcountWidthChange.Status status) throws IOException {
        status.status(0, 2);
        Header before = img.header();
        boolean rewrite = false;
        for (SnapshotEntry e : img.snapshotEntries) {
            rewrite |= e.extraData.length < 16;
        }
        HeaderBuilder v3 = before.toBuilder().version(3).refcountOrder(4);
        if (img.geo.clusterSize() > 4096 && before.extension(HeaderExtension.FEATURE_NAME_TABLE) == null) {
            v3.extension(HeaderExtension.FEATURE_NAME_TABLE, FeatureNameTable.serialize(FeatureNameTable.QEMU));
        }
        img.updateHeader(h -> v3.build());
        try {
            if (rewrite) {
                // one header write switches both the table and the version
                new InternalSnapshots(img).rewriteTable();
            } else {
                img.writeHeader();
                img.storage.flush();
            }
        } catch (IOException | RuntimeException e) {
            img.updateHeader(h -> before);
            throw e;
        }
        status.status(1, 2);
        status.status(2, 2);
    }

    /** data-file-raw cleared, the data file renamed ("" drops the name): one header write. */
    private static void headerOptions(Qcow2Engine img, AmendOptions o) throws IOException {
        Header h = img.header();
        long autoclear = h.autoclearFeatures();
        if (Boolean.FALSE.equals(o.dataFileRaw())) {
            autoclear &= ~Header.AUTOCLEAR_DATA_FILE_RAW;
        }
        boolean renamed = o.dataFile() != null && !o.dataFile().equals(img.header().dataFile());
        if (autoclear == h.autoclearFeatures() && !renamed) {
            return;
        }
        HeaderBuilder changed = h.toBuilder().autoclearFeatures(autoclear);
        if (renamed) {
            changed.extension(HeaderExtension.EXTERNAL_DATA_FILE, o.dataFile().isEmpty() ? null
                    : HeaderExtension.ofString(HeaderExtension.EXTERNAL_DATA_FILE, o.dataFile()).data());
        }
        img.updateHeader(old -> changed.build());
        // the open engine keeps writing real zeros into the data file until the image is
        // reopened: harmless for the rest of this amend
        img.writeHeader();
        img.storage.flush();
    }

    private static void lazyRefcounts(Qcow2Engine img, AmendOptions o) throws IOException {
        if (o.lazyRefcounts() == null || o.lazyRefcounts() == img.header().lazyRefcounts()) {
            return;
        }
        boolean lazy = o.lazyRefcounts();
        img.updateHeader(h -> h.withCompatibleFeatures(lazy ? h.compatibleFeatures() | Header.COMPAT_LAZY_REFCOUNTS
                : h.compatibleFeatures() & ~Header.COMPAT_LAZY_REFCOUNTS));
        img.writeHeader();
        img.storage.flush();
    }

    /**
     * Version 2: zero clusters expanded, bitmaps removed (freed, where QEMU leaks them), then
     * one header write without the v3 fields and features.
     */
    private static void downgrade(Qcow2Engine img, RefcountWidthChange.Status status) throws IOException {
        ZeroExpansion.run(img, status);
        List<String> bitmaps = img.bitmaps.removeAll();
        if (!bitmaps.isEmpty()) {
            img.bitmaps.store();
            img.storage.flush();
            if (img.bitmaps.releaseDeferredFrees()) {
                img.storage.flush();
            }
            img.warnings.accept("'" + img.path + "': version 2 keeps no bitmaps: "
                    + bitmaps.stream().map(b -> "'" + b + "'").reduce((a, b) -> a + ", " + b).orElse("") + " removed");
        }
        img.updateHeader(h -> h.toBuilder().version(2).compatibleFeatures(0).autoclearFeatures(0).incompatibleFeatures(0)
                .compressionType(0).unknownFields(new byte[0]).extension(HeaderExtension.FEATURE_NAME_TABLE, null)
                .extension(HeaderExtension.BITMAPS, null).build());
        img.writeHeader();
        img.storage.flush();
    }

    /**
     * Closes the image and opens it again (its engine follows the new header), handing
     * QEMU's locks over so no other process can take the image in between.
     */
    private static Qcow2Engine reopen(Qcow2Engine img) throws IOException {
        List<ImageLock> held;
        OpenOptions options = OpenOptions.readWrite().openBacking(img.io.backing() != null).warnings(img.warnings);
        synchronized (img.lock()) {
            held = img.handOverLocks();
        }
        try {
            img.close();
        } catch (IOException | RuntimeException e) {
            for (ImageLock l : held) {
                try {
                    l.close();
                } catch (IOException ignored) {
                    // failing already
                }
            }
            throw e;
        }
        return ImageOpener.open(img.path, options, new HashSet<>(), held, img.faces);
    }

    /** QEMU's amend helper: one progress over several steps, the steps not begun projected from those done. */
    private static final class Operations {
        private final int total;
        private final Progress sink;
        private int completed;
        private int last = -1;
        private long offsetCompleted;
        private long lastWork;

        Operations(int total, Progress sink) {
            this.total = total;
            this.sink = sink;
        }

        RefcountWidthChange.Status step(int id) {
            return (done, work) -> report(id, done, work);
        }

        private void report(int id, long done, long work) {
            if (sink == null) {
                return;
            }
            if (id != last) {
                if (last != -1) {
                    offsetCompleted += lastWork;
                    completed++;
                }
                last = id;
            }
            lastWork = work;
            long current = offsetCompleted + work;
            int ops = Math.max(total, completed + 1);
            long projected = current * (ops - completed - 1) / (completed + 1);
            sink.status(offsetCompleted + done, current + projected);
        }
    }
}
