package io.qcow4j.testing;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.check.CheckResult;
import io.qcow4j.core.check.ImageChecker;
import io.qcow4j.core.check.Repair;

/**
 * The scenarios of the engine's own operations: allocating writes (small clusters so that
 * L2 tables and the refcount table grow; refcount widths 1, 16 and 64; an external data
 * file), discards and zero writes (on an overlay too), bitmap stores in place and as
 * copies, internal snapshots created and deleted, resizes, {@code check -r all}, and amends
 * ({@link AmendScenario}).
 */
public final class CoreScenarios {
    private CoreScenarios() {
    }

    /** Every core scenario, for seed {@code seed}. */
    public static List<Scenario> all(long seed) {
        List<Scenario> all = new ArrayList<>();
        all.add(new AllocatingWrites(seed, 512, 64, 2L << 20, false, null));
        all.add(new AllocatingWrites(seed + 1, 4096, 1, 4L << 20, false, null));
        all.add(new AllocatingWrites(seed + 2, 65536, 16, 8L << 20, true, null));
        all.add(new AllocatingWrites(seed + 3, 65536, 16, 4L << 20, false, "disk.data"));
        all.add(new DiscardAndZeroes(seed + 4, 4096, false));
        all.add(new DiscardAndZeroes(seed + 5, 65536, true));
        all.add(new Snapshots(seed + 6));
        all.add(new Resizes(seed + 7));
        all.add(new CheckRepair(seed + 8));
        all.add(new OverlayResizes(seed + 9));
        all.add(new AmendScenario(seed + 10));
        return all;
    }

    // ================================================================== writes

    /**
     * Random writes (whole and partial clusters, so copy-on-write of zeros), compressed
     * clusters, flushes, bitmap stores (in place, while the image holds in_use), a bitmap
     * added mid-run (stored as a new copy), reopens.
     */
    public static final class AllocatingWrites extends DiskScenario {
        private final int refcountBits;
        private final long size;
        private final boolean withBitmaps;
        private final String dataFile;
        private int lateAdded = -1;
        private int lateStored = -1;

        public AllocatingWrites(long seed, int clusterSize, int refcountBits, long size, boolean withBitmaps, String dataFile) {
            super(seed, clusterSize);
            this.refcountBits = refcountBits;
            this.size = size;
            this.withBitmaps = withBitmaps;
            this.dataFile = dataFile;
            oracle = GuestOracle.zeros(size);
            if (withBitmaps) {
                bitmaps.put("on", true);
                bitmaps.put("off", false);
            }
            int ops = 36;
            for (int i = 0; i < ops; i++) {
                int kind = random.nextInt(16);
                if (kind == 0) {
                    flush();
                } else if (kind == 1 && withBitmaps) {
                    storeBitmaps();
                } else if (kind == 2 && i > ops / 2) {
                    reopen();
                } else if (kind == 3 && dataFile == null) {
                    long c = random.nextLong(size / clusterSize);
                    byte[] data = new byte[clusterSize];
                    // compressible: a pattern with a little noise
                    java.util.Arrays.fill(data, (byte) random.nextInt(256));
                    data[random.nextInt(clusterSize)] = (byte) random.nextInt(256);
                    int op = next();
                    oracle.expect(op, c * clusterSize, data);
                    plan("compressed write at cluster " + c, h -> h.image.writeCompressed(c * clusterSize, ByteBuffer.wrap(data)));
                } else {
                    int sectors = 1 + random.nextInt(3 * clusterSize / 512);
                    long sector = random.nextLong(size / 512 - sectors);
                    write(sector * 512, randomData(sectors));
                }
                if (withBitmaps && i == ops / 2) {
                    lateAdded = plan("add bitmap 'late'", h -> h.image.bitmaps().add("late", 65536, true, true));
                    lateStored = storeBitmaps();
                }
            }
            if (withBitmaps) {
                bitmaps.put("late", true);
            }
        }

        @Override
        public String name() {
            return "writes-" + clusterSize + "-refcount" + refcountBits + (withBitmaps ? "-bitmaps" : "")
                    + (dataFile != null ? "-datafile" : "");
        }

        @Override
        public void prepare(Path dir) throws IOException {
            CreateOptions o = CreateOptions.size(size).clusterSize(clusterSize).refcountBits(refcountBits);
            if (dataFile != null) {
                o = o.dataFile(dataFile);
            }
            try (Qcow2Image img = Qcow2Image.create(dir.resolve(IMAGE), o)) {
                if (withBitmaps) {
                    img.bitmaps().add("on", 65536, true, true);
                    img.bitmaps().add("off", 65536, true, false);
                }
            }
        }

        @Override
        protected int bitmapCreatedAt(String name) {
            return name.equals("late") ? lateAdded : 0;
        }

        @Override
        protected boolean mayBeGone(String name, int inflight) {
            // stored by a store that the next guest write's in_use switch makes durable
            return name.equals("late") && inflight <= lateStored + 1;
        }
    }

    // ================================================================== discard, zeroes

    /** Discards and zero writes (whole and partial clusters) over data, on a plain image or an overlay. */
    public static final class DiscardAndZeroes extends DiskScenario {
        private static final long SIZE = 4L << 20;
        private final boolean overlay;
        private final byte[] initial;

        public DiscardAndZeroes(long seed, int clusterSize, boolean overlay) {
            super(seed, clusterSize);
            this.overlay = overlay;
            initial = new byte[(int) SIZE];
            // data in runs, so that whole clusters, partial ones and holes all occur
            for (int r = 0; r < 12; r++) {
                int from = random.nextInt((int) SIZE / 512 - 64) * 512;
                int len = (1 + random.nextInt(64)) * 512;
                byte[] run = new byte[len];
                random.nextBytes(run);
                System.arraycopy(run, 0, initial, from, len);
            }
            oracle = new GuestOracle(initial);
            bitmaps.put("on", true);
            for (int i = 0; i < 30; i++) {
                int kind = random.nextInt(8);
                long c = random.nextLong(SIZE / clusterSize);
                int sectorsPerCluster = clusterSize / 512;
                switch (kind) {
                    case 0, 1 -> discard(c * clusterSize, Math.min(SIZE - c * clusterSize, (1 + random.nextInt(4)) * (long) clusterSize), SIZE);
                    case 2 -> {
                        long from = c * clusterSize + random.nextInt(sectorsPerCluster) * 512L;
                        long len = Math.min(SIZE - from, (1 + random.nextInt(3 * sectorsPerCluster)) * 512L);
                        discard(from, len, SIZE);
                    }
                    case 3, 4 -> writeZeroes(c * clusterSize, Math.min(SIZE - c * clusterSize, (1 + random.nextInt(3)) * (long) clusterSize));
                    case 5 -> {
                        long from = c * clusterSize + random.nextInt(sectorsPerCluster) * 512L;
                        long len = Math.min(SIZE - from, (1 + random.nextInt(2 * sectorsPerCluster)) * 512L);
                        writeZeroes(from, len);
                    }
                    case 6 -> flush();
                    default -> {
                        int sectors = 1 + random.nextInt(2 * sectorsPerCluster);
                        long sector = random.nextLong(SIZE / 512 - sectors);
                        write(sector * 512, randomData(sectors));
                    }
                }
            }
        }

        @Override
        public String name() {
            return "discard-zero-" + clusterSize + (overlay ? "-overlay" : "");
        }

        @Override
        public void prepare(Path dir) throws IOException {
            Path img = dir.resolve(IMAGE);
            if (overlay) {
                // the data in the backing file: every discard must hide it (v3 zero clusters)
                try (Qcow2Image base = Qcow2Image.create(dir.resolve("base.qcow2"), CreateOptions.size(SIZE).clusterSize(clusterSize))) {
                    base.write(0, ByteBuffer.wrap(initial));
                }
                Qcow2Image.create(img, CreateOptions.size(SIZE).clusterSize(clusterSize).backingFile("base.qcow2")
                        .backingFormat("qcow2")).close();
            } else {
                try (Qcow2Image i = Qcow2Image.create(img, CreateOptions.size(SIZE).clusterSize(clusterSize))) {
                    i.write(0, ByteBuffer.wrap(initial));
                }
            }
            try (Qcow2Image i = Qcow2Image.open(img, OpenOptions.readWrite())) {
                i.bitmaps().add("on", 65536, true, true);
            }
        }
    }

    // ================================================================== snapshots

    /**
     * Internal snapshots created and deleted between writes that copy shared clusters.
     * Each snapshot that a crash leaves must read as the disk did when it was taken.
     */
    public static final class Snapshots extends DiskScenario {
        private static final long SIZE = 4L << 20;
        private final List<String> names = new ArrayList<>();
        private final List<Integer> created = new ArrayList<>();
        private final List<Integer> deleted = new ArrayList<>();

        public Snapshots(long seed) {
            super(seed, 4096);
            byte[] initial = new byte[(int) SIZE];
            for (int i = 0; i < initial.length; i += 4096) {
                if (random.nextInt(3) > 0) {
                    java.util.Arrays.fill(initial, i, i + 4096, (byte) (1 + random.nextInt(255)));
                }
            }
            oracle = new GuestOracle(initial);
            for (int s = 0; s < 3; s++) {
                writes(6);
                String name = "snap" + s;
                names.add(name);
                created.add(plan("create snapshot " + name, h -> h.image.snapshots().create(name)));
                deleted.add(Integer.MAX_VALUE);
                writes(4);
                if (s >= 1) {
                    // delete the one before: its clusters, shared or not, go back
                    String old = names.get(s - 1);
                    int idx = s - 1;
                    deleted.set(idx, plan("delete snapshot " + old, h -> h.image.snapshots().delete(old)));
                }
            }
            writes(4);
        }

        private void writes(int n) {
            for (int i = 0; i < n; i++) {
                if (random.nextInt(5) == 0) {
                    flush();
                    continue;
                }
                int sectors = 1 + random.nextInt(24);
                long sector = random.nextLong(SIZE / 512 - sectors);
                write(sector * 512, randomData(sectors));
            }
        }

        @Override
        public String name() {
            return "snapshots";
        }

        @Override
        protected boolean copiedWindows() {
            return true;
        }

        @Override
        public void prepare(Path dir) throws IOException {
            try (Qcow2Image i = Qcow2Image.create(dir.resolve(IMAGE), CreateOptions.size(SIZE).clusterSize(4096))) {
                i.write(0, ByteBuffer.wrap(oracle.after(0)));
            }
        }

        @Override
        protected void verifyMore(Path dir, byte[] disk, int durable, int inflight) throws IOException {
            Path img = dir.resolve(IMAGE);
            String list = Qemu.qemuImg("snapshot", "-l", img.toString()).assertOk().stdout();
            for (int s = 0; s < names.size(); s++) {
                String name = names.get(s);
                boolean exists = java.util.regex.Pattern.compile("\\s" + name + "\\s").matcher(list).find();
                boolean mustExist = durable > created.get(s) && inflight < deleted.get(s);
                boolean mustNotExist = inflight < created.get(s) || durable > deleted.get(s);
                if (mustExist && !exists || mustNotExist && exists) {
                    throw new AssertionError("snapshot " + name + (exists ? " exists" : " is missing") + ":\n" + list);
                }
                if (exists) {
                    Path raw = dir.resolve(name + ".raw");
                    Qemu.run("qemu-img", "convert", "-l", "snapshot.name=" + name, "-O", "raw", img.toString(), raw.toString())
                            .assertOk();
                    byte[] content = Files.readAllBytes(raw);
                    Files.delete(raw);
                    if (!java.util.Arrays.equals(content, oracle.after(created.get(s)))) {
                        throw new AssertionError("snapshot " + name + " does not read as the disk did when it was taken");
                    }
                }
            }
        }
    }

    // ================================================================== resize

    /** Grows (the L1 table moves), writes past the old end, shrinks (clusters freed, the file cut), grows again. */
    public static final class Resizes extends DiskScenario {
        public Resizes(long seed) {
            super(seed, 4096);
            long size = 3L << 20;
            oracle = GuestOracle.zeros(size);
            bitmaps.put("on", true);
            long[] sizes = {12L << 20, (5L << 20) + 4096 * 3 + 512, 9L << 20, 2L << 20, 6L << 20};
            for (long next : sizes) {
                for (int i = 0; i < 4; i++) {
                    int sectors = 1 + random.nextInt(40);
                    long sector = random.nextLong(size / 512 - sectors);
                    write(sector * 512, randomData(sectors));
                }
                if (random.nextBoolean()) {
                    flush();
                }
                int op = next();
                if (next < size) {
                    // what a shrink cuts off reads as zeros after the next grow
                    oracle.expectZeros(op, next, size - next);
                }
                oracle.expectSize(op, next);
                long to = next;
                plan("resize to " + next, h -> h.image.resizeDiscarding(to));
                size = next;
            }
        }

        @Override
        public String name() {
            return "resize";
        }

        @Override
        public void prepare(Path dir) throws IOException {
            try (Qcow2Image i = Qcow2Image.create(dir.resolve(IMAGE), CreateOptions.size(oracle.size()).clusterSize(4096))) {
                i.bitmaps().add("on", 65536, true, true);
            }
        }
    }

    /**
     * Shrinks, grows and writes of an overlay with subclusters (extended L2, 32 KiB clusters)
     * over a longer backing file of 0x11: nothing may ever read 0x11, the backing file
     * showing through a range a shrink cut or a grow exposed (as ResizeCrashTest, at every
     * crash point).
     */
    public static final class OverlayResizes extends DiskScenario {
        private static final long BASE = 4L << 20;

        public OverlayResizes(long seed) {
            super(seed, 32768);
            long size = 2L << 20;
            byte[] initial = new byte[(int) size];
            java.util.Arrays.fill(initial, (byte) 0x22);
            oracle = new GuestOracle(initial);
            for (int i = 0; i < 24; i++) {
                if (random.nextInt(3) == 0) {
                    long off = 512L * random.nextInt((int) (size / 512));
                    int len = (int) Math.min(size - off, 512 * (1 + random.nextInt(200)));
                    byte[] data = new byte[len];
                    java.util.Arrays.fill(data, (byte) 0x22);
                    write(off, data);
                    continue;
                }
                long next = 512L * (128 + random.nextInt((int) ((BASE + (1 << 20)) / 512) - 128));
                int op = next();
                if (next < size) {
                    oracle.expectZeros(op, next, size - next);
                }
                oracle.expectSize(op, next);
                long to = next;
                boolean shrink = next < size;
                plan("resize to " + next, h -> {
                    if (shrink) {
                        h.image.resizeDiscarding(to);
                    } else {
                        h.image.resize(to);
                    }
                });
                size = next;
            }
        }

        @Override
        public String name() {
            return "overlay-resize-extended-l2";
        }

        @Override
        public void prepare(Path dir) throws IOException {
            try (Qcow2Image base = Qcow2Image.create(dir.resolve("base.qcow2"), CreateOptions.size(BASE))) {
                byte[] b = new byte[(int) BASE];
                java.util.Arrays.fill(b, (byte) 0x11);
                base.write(0, ByteBuffer.wrap(b));
            }
            try (Qcow2Image top = Qcow2Image.create(dir.resolve(IMAGE), CreateOptions.size(oracle.size()).clusterSize(32768)
                    .extendedL2(true).backingFile("base.qcow2").backingFormat("qcow2"))) {
                top.write(0, ByteBuffer.wrap(oracle.after(0)));
            }
        }
    }

    // ================================================================== check -r all

    /**
     * {@code check -r all} of an image with leaked clusters, a refcount too low and a COPIED
     * flag missing: a crash during the repair loses no data and leaves nothing that a second
     * repair does not fix; once the repair returned and was flushed, the image is clean.
     */
    public static final class CheckRepair extends DiskScenario {
        private static final long SIZE = 2L << 20;
        private int originalErrors = -1;

        public CheckRepair(long seed) {
            super(seed, 4096);
            byte[] initial = new byte[(int) SIZE];
            random.nextBytes(initial);
            oracle = new GuestOracle(initial);
            plan("check -r all", h -> {
                CheckResult r = ImageChecker.repair(h.image.engine(), Repair.ALL);
                if (r.exitCode() != 0) {
                    // as qemu-img check -r: what the repair could not do (or finish) is reported
                    throw new IOException("check -r all exits " + r.exitCode() + ": "
                            + (r.failure() != null ? r.failure() : r.messages()));
                }
            }, true);
        }

        @Override
        public String name() {
            return "check-repair";
        }

        @Override
        public void prepare(Path dir) throws IOException {
            Path img = dir.resolve(IMAGE);
            try (Qcow2Image i = Qcow2Image.create(img, CreateOptions.size(SIZE).clusterSize(4096).refcountBits(16))) {
                i.write(0, ByteBuffer.wrap(oracle.after(0)));
            }
            // the layout qcow4j gives this image: refcount table at cluster 1, its block at 2
            ImageBytes.corrupt(img, 4096, random);
            CheckVerdict before = CheckVerdict.of(img, 4096, false);
            originalErrors = before.corruptions().size();
            if (originalErrors == 0 || before.leaks() == 0) {
                throw new IllegalStateException("the damage did not take:\n" + before.output());
            }
        }

        @Override
        public void verify(Path dir, int durable, int inflight) throws Exception {
            Path img = dir.resolve(IMAGE);
            CheckVerdict v = CheckVerdict.of(img, 4096, false);
            if (durable > 0 && !v.clean()) {
                throw new AssertionError("the repair returned and was flushed, yet: " + v.corruptions());
            }
            byte[] disk = readDisk(img);
            String wrong = oracle.verify(disk, durable, inflight);
            if (wrong != null) {
                throw new AssertionError("data: " + wrong);
            }
            Qemu.check(img, "-r", "all");
            CheckVerdict after = CheckVerdict.of(img, 4096, false);
            if (!after.clean() || after.leaks() > 0) {
                throw new AssertionError("qemu-img check -r all does not clean what the crash left:\n" + after.output());
            }
            if (!java.util.Arrays.equals(readDisk(img), oracle.after(0))) {
                throw new AssertionError("the data changed after qemu-img check -r all");
            }
        }
    }

    /** Test helper: a few bytes of an image changed in place. */
    static final class ImageBytes {
        private ImageBytes() {
        }

        /**
         * Damages a freshly written 4 KiB-cluster image: two leaked clusters (refcount 1,
         * unused, inside the file), one data cluster's refcount lowered to 0 and one L2
         * entry's COPIED flag cleared.
         */
        static void corrupt(Path img, int cs, Random random) throws IOException {
            try (var ch = java.nio.channels.FileChannel.open(img, java.nio.file.StandardOpenOption.READ,
                    java.nio.file.StandardOpenOption.WRITE)) {
                ByteBuffer b = ByteBuffer.allocate(8);
                ch.read(b.clear(), 48); // refcount_table_offset
                long rt = b.getLong(0);
                ch.read(b.clear(), rt);
                long block = b.getLong(0);
                ch.read(b.clear(), 40); // l1_table_offset
                long l1 = b.getLong(0);
                ch.read(b.clear(), l1);
                long l2 = b.getLong(0) & 0x00fffffffffffe00L;
                long clusters = ch.size() / cs;
                // leaks: append two clusters with refcount 1
                ch.write(ByteBuffer.allocate(2 * cs), clusters * cs);
                for (long c = clusters; c < clusters + 2; c++) {
                    ch.write(ByteBuffer.allocate(2).putShort(0, (short) 1), block + 2 * c);
                }
                // a data cluster's refcount 0, and another one's COPIED flag cleared
                int k = 1 + random.nextInt(100);
                ch.read(b.clear(), l2 + 8L * k);
                long entry = b.getLong(0);
                long host = entry & 0x00fffffffffffe00L;
                ch.write(ByteBuffer.allocate(2), block + 2 * (host / cs));
                ch.read(b.clear(), l2 + 8L * (k + 1));
                ch.write(ByteBuffer.allocate(8).putLong(0, b.getLong(0) & ~(1L << 63)), l2 + 8L * (k + 1));
            }
        }
    }
}
