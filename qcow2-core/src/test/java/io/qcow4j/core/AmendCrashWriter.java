package io.qcow4j.core;

import java.nio.file.Path;
import java.util.Random;

import io.qcow4j.core.api.AmendOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.engine.ImageAmender;

/**
 * Child process of {@link AmendCrashTest}: amends an image over and over (version both
 * ways, every refcount width, lazy refcounts), turning ranges that read zeros into zero
 * clusters between amends so each downgrade has some to expand, until it is killed. The
 * disk's content never changes.
 */
public final class AmendCrashWriter {
    /** Ranges that read zeros in the test's image (see AmendCrashTest): [offset, length]. */
    static final long[][] ZERO_RANGES = {{1L << 20, 1L << 20}, {6L << 20, 2L << 20}, {12L << 20, 4L << 20}};

    private AmendCrashWriter() {
    }

    public static void main(String[] args) throws Exception {
        Path path = Path.of(args[0]);
        Random r = new Random(Long.parseLong(args[1]));
        System.out.println("ready");
        System.out.flush();
        while (true) {
            Qcow2Image img = Qcow2Image.open(path, OpenOptions.readWrite());
            if (img.info().version() >= 3 && r.nextBoolean()) {
                long[] z = ZERO_RANGES[r.nextInt(ZERO_RANGES.length)];
                img.writeZeroes(z[0], z[1]);
            }
            AmendOptions o = AmendOptions.none();
            switch (r.nextInt(4)) {
                case 0 -> o.compat(img.info().version() == 2 ? "1.1" : "0.10").refcountBits(16);
                case 1 -> o.compat("1.1").refcountBits(1 << r.nextInt(7));
                case 2 -> o.compat("1.1").lazyRefcounts(r.nextBoolean()).refcountBits(1 << (1 + r.nextInt(6)));
                default -> o.refcountBits(img.info().version() == 2 ? 16 : 1 << r.nextInt(7));
            }
            ImageAmender.amend(img.engine(), o, null); // closes the image
        }
    }
}
