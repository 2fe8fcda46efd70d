package io.qcow4j.testing;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * What a guest disk must read after a crash. The test declares, before each operation,
 * what it makes the disk read ({@link #expect}); after a crash with operations
 * {@code 0..durable-1} acknowledged before the last flush and operation {@code inflight}
 * running, every 512-byte sector must read as those operations left it, or as one of the
 * operations from {@code durable} to {@code inflight} made it read. Anything else (a
 * flushed write lost, garbage, a sector torn inside) is a failure.
 */
public final class GuestOracle {
    private static final int SECTOR = 512;

    private record Change(int op, long offset, byte[] content) {
    }

    private record Resize(int op, long size) {
    }

    private final byte[] initial;
    private final List<Change> changes = new ArrayList<>();
    private final List<Resize> resizes = new ArrayList<>();
    private int maxSize;

    public GuestOracle(byte[] initial) {
        this.initial = initial.clone();
        this.maxSize = initial.length;
    }

    /** A disk of {@code size} zeros. */
    public static GuestOracle zeros(long size) {
        return new GuestOracle(new byte[Math.toIntExact(size)]);
    }

    public int size() {
        return initial.length;
    }

    /** Operation {@code op} makes {@code [offset, offset + content.length)} read {@code content}. */
    public void expect(int op, long offset, byte[] content) {
        changes.add(new Change(op, offset, content.clone()));
        cachedOps = -1;
    }

    /**
     * Operation {@code op} changes the disk's size (what a shrink cuts off must be declared
     * zeros too, when a later grow reads zeros there).
     */
    public void expectSize(int op, long size) {
        resizes.add(new Resize(op, size));
        cachedOps = -1;
        maxSize = Math.max(maxSize, Math.toIntExact(size));
    }

    /** The disk's size after operations {@code 0..ops-1}. */
    public long sizeAfter(int ops) {
        long size = initial.length;
        for (Resize r : resizes) {
            if (r.op < ops) {
                size = r.size;
            }
        }
        return size;
    }

    /** Operation {@code op} makes {@code [offset, offset + length)} read zeros. */
    public void expectZeros(int op, long offset, long length) {
        expect(op, offset, new byte[Math.toIntExact(length)]);
    }

    private int cachedOps = -1;
    private byte[] cached;

    /** The disk after operations {@code 0..ops-1} (a copy). */
    public byte[] after(int ops) {
        return shared(ops).clone();
    }

    private byte[] shared(int ops) {
        if (ops != cachedOps) {
            cached = compute(ops);
            cachedOps = ops;
        }
        return cached;
    }

    private byte[] compute(int ops) {
        byte[] d = Arrays.copyOf(initial, maxSize);
        for (Change c : changes) {
            if (c.op < ops) {
                System.arraycopy(c.content, 0, d, (int) c.offset, c.content.length);
            }
        }
        return Arrays.copyOf(d, (int) sizeAfter(ops));
    }

    /** Null when {@code actual} is a disk the crash may leave, else the first sector that is not. */
    public String verify(byte[] actual, int durable, int inflight) {
        byte[] expected = shared(durable);
        boolean sizeOk = actual.length == expected.length;
        for (int op = durable; op <= inflight && !sizeOk; op++) {
            sizeOk = actual.length == sizeAfter(op + 1);
        }
        if (!sizeOk) {
            return "the disk is " + actual.length + " bytes, expected " + expected.length
                    + " or a size operations " + durable + " to " + inflight + " gave it";
        }
        expected = Arrays.copyOf(expected, actual.length);
        for (int s = 0; s < expected.length; s += SECTOR) {
            int len = Math.min(SECTOR, expected.length - s);
            if (Arrays.equals(actual, s, s + len, expected, s, s + len)) {
                continue;
            }
            if (!laterOperationWrote(actual, s, len, durable, inflight)) {
                int at = Arrays.mismatch(Arrays.copyOfRange(actual, s, s + len), Arrays.copyOfRange(expected, s, s + len));
                return String.format(Locale.ROOT, "sector at 0x%x reads 0x%02x at +%d, where the %d flushed operations"
                                + " left 0x%02x and no operation from %d to %d wrote it so", s, actual[s + at] & 0xff, at,
                        durable, expected[s + at] & 0xff, durable, inflight);
            }
        }
        return null;
    }

    /**
     * Whether {@code [from, to)} of a crashed disk reads as operations before {@code limit}
     * alone can have left it (with {@code durable} of them flushed): what a bitmap made at
     * operation {@code limit} may leave clean.
     */
    public boolean explainedBefore(byte[] actual, int from, int to, int durable, int limit) {
        byte[] base = shared(Math.min(durable, limit));
        for (int s = from; s < to; s += SECTOR) {
            int len = Math.min(SECTOR, to - s);
            boolean same = s + len <= base.length ? Arrays.equals(actual, s, s + len, base, s, s + len) : isZero(actual, s, s + len);
            if (!same && !laterOperationWrote(actual, s, len, durable, limit - 1)) {
                return false;
            }
        }
        return true;
    }

    private static boolean isZero(byte[] b, int from, int to) {
        for (int i = from; i < to; i++) {
            if (b[i] != 0) {
                return false;
            }
        }
        return true;
    }

    private boolean laterOperationWrote(byte[] actual, int s, int len, int durable, int inflight) {
        for (Change c : changes) {
            if (c.op < durable || c.op > inflight || c.offset > s || c.offset + c.content.length < s + len) {
                continue;
            }
            int from = (int) (s - c.offset);
            if (Arrays.equals(actual, s, s + len, c.content, from, from + len)) {
                return true;
            }
        }
        return false;
    }
}
