package io.qcow4j.testing;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.bitmap.BitmapBits;
import io.qcow4j.core.bitmap.PersistentBitmap;

/**
 * A scenario on one image ({@value #IMAGE}, over a backing file or not): a planned list of
 * guest operations run through one {@link Qcow2Image}, with a {@link GuestOracle} of what
 * each makes the disk read. {@link #verify}: {@code qemu-img check} finds no corruption,
 * the disk as {@code qemu-img convert} reads it is one the crash may leave, and every
 * persistent bitmap made before the run still exists and is either in_use (inconsistent)
 * or covers every granule whose content changed since it was made (a disabled one: none
 * changed in it).
 */
public abstract class DiskScenario extends Scenario {
    public static final String IMAGE = "disk.qcow2";

    /** One operation on the open image. */
    @FunctionalInterface
    public interface Op {
        void apply(Handle h) throws IOException;
    }

    /** The open image, which an operation may close and reopen. */
    public static final class Handle {
        public Qcow2Image image;
        final Path path;

        Handle(Path path) {
            this.path = path;
        }

        public void reopen() throws IOException {
            image.close();
            image = Qcow2Image.open(path, OpenOptions.readWrite());
        }
    }

    private record Planned(String what, Op op, boolean barrier) {
    }

    private final List<Planned> plan = new ArrayList<>();
    /** Bitmaps made by prepare: name, and whether they record. */
    protected final Map<String, Boolean> bitmaps = new LinkedHashMap<>();
    protected final Random random;
    protected GuestOracle oracle;
    protected final int clusterSize;

    protected DiskScenario(long seed, int clusterSize) {
        super(seed);
        this.random = new Random(seed);
        this.clusterSize = clusterSize;
    }

    /** Adds an operation to the plan; returns its index. */
    protected int plan(String what, Op op) {
        return plan(what, op, false);
    }

    protected int plan(String what, Op op, boolean barrier) {
        plan.add(new Planned(what, op, barrier));
        return plan.size() - 1;
    }

    /** The index the next planned operation gets. */
    protected int next() {
        return plan.size();
    }

    // ------------------------------------------------------------ common operations

    protected int write(long offset, byte[] data) {
        int op = next();
        oracle.expect(op, offset, data);
        return plan("write " + offset + "+" + data.length, h -> h.image.write(offset, ByteBuffer.wrap(data)));
    }

    protected int writeZeroes(long offset, long length) {
        int op = next();
        oracle.expectZeros(op, offset, length);
        return plan("zero " + offset + "+" + length, h -> h.image.writeZeroes(offset, length));
    }

    /** A discard: whole clusters read as zeros after it, a partly covered one is left alone. */
    protected int discard(long offset, long length, long diskSize) {
        int op = next();
        long from = (offset + clusterSize - 1) / clusterSize * clusterSize;
        long to = Math.min(diskSize, (offset + length) / clusterSize * clusterSize);
        if (offset + length == diskSize) {
            to = diskSize;
        }
        if (to > from) {
            oracle.expectZeros(op, from, to - from);
        }
        return plan("discard " + offset + "+" + length, h -> h.image.discard(offset, length));
    }

    protected int flush() {
        return plan("flush", h -> h.image.flush(), true);
    }

    protected int storeBitmaps() {
        return plan("store bitmaps", h -> h.image.storeBitmaps());
    }

    protected int reopen() {
        return plan("close and reopen", Handle::reopen, true);
    }

    /** Random sector-aligned bytes, {@code sectors} sectors long. */
    protected byte[] randomData(int sectors) {
        byte[] b = new byte[sectors * 512];
        random.nextBytes(b);
        return b;
    }

    // ------------------------------------------------------------ the scenario

    @Override
    public int operations() {
        return plan.size() + 1;
    }

    @Override
    public boolean isBarrier(int op) {
        return op == plan.size() || plan.get(op).barrier;
    }

    /** What operation {@code op} does (for messages). */
    public String describe(int op) {
        return op >= plan.size() ? "close" : plan.get(op).what;
    }

    @Override
    public void run(Path dir, Steps steps) throws Exception {
        Handle h = new Handle(dir.resolve(IMAGE));
        h.image = Qcow2Image.open(h.path, OpenOptions.readWrite());
        try {
            for (int i = 0; i < plan.size(); i++) {
                steps.begin(i);
                plan.get(i).op.apply(h);
                steps.ack(i);
            }
        } catch (Exception | Error e) {
            try {
                h.image.close();
            } catch (IOException | RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
        steps.begin(plan.size());
        h.image.close();
        steps.ack(plan.size());
    }

    /** Whether qemu-img check may report the harmless COPIED windows of internal snapshots. */
    protected boolean copiedWindows() {
        return false;
    }

    @Override
    public void verify(Path dir, int durable, int inflight) throws Exception {
        Path img = dir.resolve(IMAGE);
        CheckVerdict v = CheckVerdict.of(img, clusterSize, copiedWindows());
        if (!v.clean()) {
            throw new AssertionError("qemu-img check finds corruption: " + v.corruptions() + "\n" + v.output());
        }
        byte[] disk = readDisk(img);
        String wrong = oracle.verify(disk, durable, inflight);
        if (wrong != null) {
            throw new AssertionError("data: " + wrong + " (operation " + inflight + ": " + describe(inflight) + ")");
        }
        verifyBitmaps(img, disk, durable, inflight);
        verifyMore(dir, disk, durable, inflight);
    }

    /** More checks of a scenario. */
    protected void verifyMore(Path dir, byte[] disk, int durable, int inflight) throws Exception {
    }

    /** The guest disk as qemu-img reads it. */
    public static byte[] readDisk(Path img) throws IOException {
        Path raw = img.resolveSibling(img.getFileName() + ".raw");
        try {
            Qemu.convertToRaw(img, raw);
            return Files.readAllBytes(raw);
        } finally {
            Files.deleteIfExists(raw);
        }
    }

    /** The operation at which a bitmap was made (0: by prepare): it records what came after. */
    protected int bitmapCreatedAt(String name) {
        return 0;
    }

    /** Whether a bitmap made by prepare may be gone after a crash at this point (the scenario removes it). */
    protected boolean mayBeGone(String name, int inflight) {
        return false;
    }

    private void verifyBitmaps(Path img, byte[] disk, int durable, int inflight) throws IOException {
        if (bitmaps.isEmpty()) {
            return;
        }
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly())) {
            for (Map.Entry<String, Boolean> e : bitmaps.entrySet()) {
                PersistentBitmap b = image.bitmaps().get(e.getKey());
                if (b == null) {
                    if (mayBeGone(e.getKey(), inflight)) {
                        continue;
                    }
                    throw new AssertionError("bitmap '" + e.getKey() + "' is lost");
                }
                if (b.isInconsistent()) {
                    continue;
                }
                BitmapBits bits = image.bitmaps().bits(b);
                if (!e.getValue()) {
                    if (bits.count() != 0) {
                        throw new AssertionError("disabled bitmap '" + e.getKey() + "' gained " + bits.count() + " bits");
                    }
                    continue;
                }
                int made = bitmapCreatedAt(e.getKey());
                long g = b.granularity();
                for (long off = 0; off < disk.length; off += g) {
                    int end = (int) Math.min(off + g, disk.length);
                    if (!bits.get(off / g) && !oracle.explainedBefore(disk, (int) off, end, durable, made)) {
                        throw new AssertionError("bitmap '" + e.getKey() + "' (not in_use) misses a change at 0x"
                                + Long.toHexString(off));
                    }
                }
            }
        }
    }
}
