package io.qcow4j.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import io.qcow4j.core.api.AmendOptions;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.engine.ImageAmender;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.Qcow2Image;

/**
 * Amends between guest writes (qemu-img amend's steps through {@link ImageAmender}): the
 * refcount width changed to 64, 1 and back to 16 bits (every refcount structure rewritten),
 * lazy refcounts on, writes under them, off again, and a downgrade to compat 0.10 (zero
 * clusters expanded) and back to 1.1. An enabled bitmap records the writes until the
 * downgrade, which drops it (a v2 header has no autoclear bits; qemu-img drops it too).
 * A crash under lazy refcounts leaves the dirty bit set and refcounts that lag: QEMU
 * repairs them when it next opens the image read-write, so {@link #verify} does that
 * first ({@code qemu-img check -r all}, which must leave a clean image).
 */
public final class AmendScenario extends DiskScenario {
    private static final long SIZE = 4L << 20;
    private static final int CS = 4096;
    private static final int INCOMPAT_DIRTY = 1;
    private final int downgrade;

    public AmendScenario(long seed) {
        super(seed, CS);
        oracle = GuestOracle.zeros(SIZE);
        bitmaps.put("on", true);
        guestWrites(6);
        flush();
        amend("refcount_bits=64", AmendOptions.none().refcountBits(64));
        guestWrites(4);
        amend("refcount_bits=1", AmendOptions.none().refcountBits(1));
        guestWrites(3);
        amend("lazy_refcounts=on,refcount_bits=16", AmendOptions.none().lazyRefcounts(true).refcountBits(16));
        guestWrites(5);
        amend("lazy_refcounts=off", AmendOptions.none().lazyRefcounts(false));
        guestWrites(3);
        downgrade = amend("compat=0.10", AmendOptions.none().compat("0.10"));
        guestWrites(3);
        amend("compat=1.1", AmendOptions.none().compat("1.1"));
        guestWrites(2);
    }

    /** Writes of data and of zeros (zero clusters, expanded by a downgrade). */
    private void guestWrites(int n) {
        for (int i = 0; i < n; i++) {
            int sectors = 1 + random.nextInt(24);
            long at = random.nextLong(SIZE / 512 - sectors) * 512;
            if (random.nextInt(4) == 0) {
                writeZeroes(at / CS * CS, (long) (1 + random.nextInt(4)) * CS);
            } else {
                write(at, randomData(sectors));
            }
        }
    }

    /** An amend: it closes the image (a barrier once it returned), which is then reopened. */
    private int amend(String what, AmendOptions o) {
        return plan("amend " + what, h -> {
            ImageAmender.amend(h.image.engine(), o, null);
            h.image = Qcow2Image.open(h.path, OpenOptions.readWrite());
        }, true);
    }

    @Override
    public String name() {
        return "amend";
    }

    @Override
    public void prepare(Path dir) throws IOException {
        try (Qcow2Image img = Qcow2Image.create(dir.resolve(IMAGE), CreateOptions.size(SIZE).clusterSize(CS).refcountBits(16))) {
            img.bitmaps().add("on", 65536, true, true);
        }
    }

    @Override
    protected boolean mayBeGone(String name, int inflight) {
        return inflight >= downgrade;
    }

    @Override
    public void verify(Path dir, int durable, int inflight) throws Exception {
        Path img = dir.resolve(IMAGE);
        byte[] header = new byte[80];
        try (var in = Files.newInputStream(img)) {
            in.readNBytes(header, 0, header.length);
        }
        int version = header[7];
        long incompatible = java.nio.ByteBuffer.wrap(header, 72, 8).getLong();
        if (version >= 3 && (incompatible & INCOMPAT_DIRTY) != 0) {
            // what qemu does when it opens a dirty lazy-refcounts image read-write
            Qemu.Result r = Qemu.check(img, "-r", "all");
            if (r.exitCode() != 0) {
                throw new AssertionError("dirty image: qemu-img check -r all exits " + r.exitCode() + "\n" + r.describe());
            }
        }
        super.verify(dir, durable, inflight);
    }
}
