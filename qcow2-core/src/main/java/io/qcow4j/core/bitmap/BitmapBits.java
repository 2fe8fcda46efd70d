package io.qcow4j.core.bitmap;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A sparse bit array in 4 KiB chunks: an all-zero chunk costs nothing, an all-one chunk
 * shares one array. Memory follows the dirty data, not the disk size. Bit {@code n} is
 * bit {@code n % 64} of word {@code n / 64}, so the words written little-endian give the
 * qcow2 bitmap data layout (least significant bit first).
 *
 * <p>Records which chunks changed since {@link #clearChanged()}, for incremental stores.
 * Not thread-safe.
 */
public final class BitmapBits {
    public static final int CHUNK_BITS = 1 << 15;
    public static final int CHUNK_BYTES = CHUNK_BITS / 8;
    private static final int WORDS = CHUNK_BITS / 64;
    private static final long[] FULL = new long[WORDS];

    static {
        Arrays.fill(FULL, -1L);
    }

    private long sizeBits;
    private long[][] chunks;
    /** Per chunk, 1 when it changed since {@link #clearChanged()}: a plain byte store keeps tracking cheap. */
    private byte[] changed;

    public BitmapBits(long sizeBits) {
        if (sizeBits < 0 || sizeBits > (1L << 40)) {
            throw new IllegalArgumentException("bitmap of " + sizeBits + " bits");
        }
        this.sizeBits = sizeBits;
        this.chunks = new long[(int) ((sizeBits + CHUNK_BITS - 1) / CHUNK_BITS)][];
        this.changed = new byte[Math.max(chunks.length, 1)];
    }

    /** First changed chunk at or after {@code from}, or -1. */
    private int nextChanged(int from) {
        return nextChanged(from, changed.length - 1);
    }

    /** First changed chunk in {@code [from, last]}, or -1. */
    private int nextChanged(int from, int last) {
        for (int i = Math.max(from, 0), end = Math.min(last, changed.length - 1); i <= end; i++) {
            if (changed[i] != 0) {
                return i;
            }
        }
        return -1;
    }

    public long sizeBits() {
        return sizeBits;
    }

    public int chunkCount() {
        return chunks.length;
    }

    public boolean get(long bit) {
        checkBit(bit);
        long[] c = chunks[(int) (bit / CHUNK_BITS)];
        if (c == null) {
            return false;
        }
        int i = (int) (bit % CHUNK_BITS);
        return (c[i >>> 6] & (1L << i)) != 0;
    }

    /** Sets bits {@code [from, to)}. */
    public void set(long from, long to) {
        // dirty tracking's common case, kept small so that the JIT inlines it: bits of one
        // word in a chunk that has words; a word already all set marks nothing changed
        if (from >= 0 && from < to && to <= sizeBits && (from >>> 6) == ((to - 1) >>> 6)) {
            int ci = (int) (from >>> 15);
            long[] c = chunks[ci];
            if (c != null && c != FULL) {
                int w = (int) (from & (CHUNK_BITS - 1)) >>> 6;
                long old = c[w];
                long now = old | ((-1L << from) & (-1L >>> (63 - ((to - 1) & 63))));
                if (now != old) {
                    c[w] = now;
                    changed[ci] = 1;
                    if (now == -1L) {
                        normalize(ci);
                    }
                }
                return;
            }
        }
        update(from, to, true);
    }

    /** Clears bits {@code [from, to)}. */
    public void reset(long from, long to) {
        update(from, to, false);
    }

    public void clear() {
        for (int i = 0; i < chunks.length; i++) {
            if (chunks[i] != null) {
                chunks[i] = null;
                changed[i] = 1;
            }
        }
    }

    private void update(long from, long to, boolean value) {
        to = Math.min(to, sizeBits);
        if (from < 0 || from > to) {
            throw new IndexOutOfBoundsException("bits [" + from + ", " + to + ") of " + sizeBits);
        }
        while (from < to) {
            int ci = (int) (from / CHUNK_BITS);
            long chunkStart = (long) ci * CHUNK_BITS;
            long chunkEnd = Math.min(chunkStart + CHUNK_BITS, sizeBits);
            long end = Math.min(to, chunkEnd);
            long[] c = chunks[ci];
            boolean whole = from == chunkStart && end == chunkStart + CHUNK_BITS;
            if (whole) {
                long[] next = value ? FULL : null;
                if (c != next) {
                    chunks[ci] = next;
                    changed[ci] = 1;
                }
            } else if (value ? c != FULL : c != null) {
                if (c == null || c == FULL) {
                    c = c == null ? new long[WORDS] : FULL.clone();
                    chunks[ci] = c;
                }
                int lo = (int) (from - chunkStart);
                int hi = (int) (end - chunkStart);
                setWords(c, lo, hi, value);
                changed[ci] = 1;
                // the chunk can only have become uniform if the words just written are
                long edge = value ? -1L : 0L;
                if (c[lo >>> 6] == edge && c[(hi - 1) >>> 6] == edge) {
                    normalize(ci);
                }
            }
            from = end;
        }
    }

    private static void setWords(long[] c, int from, int to, boolean value) {
        int w0 = from >>> 6;
        int w1 = (to - 1) >>> 6;
        long first = -1L << (from & 63);
        long last = -1L >>> (63 - ((to - 1) & 63));
        if (w0 == w1) {
            long m = first & last;
            c[w0] = value ? c[w0] | m : c[w0] & ~m;
            return;
        }
        c[w0] = value ? c[w0] | first : c[w0] & ~first;
        for (int w = w0 + 1; w < w1; w++) {
            c[w] = value ? -1L : 0;
        }
        c[w1] = value ? c[w1] | last : c[w1] & ~last;
    }

    /** Drops an array chunk that became all zero; shares one that became all one. */
    private void normalize(int ci) {
        long[] c = chunks[ci];
        if (c == null || c == FULL) {
            return;
        }
        boolean zero = true;
        boolean ones = (long) (ci + 1) * CHUNK_BITS <= sizeBits;
        for (long w : c) {
            zero &= w == 0;
            ones &= w == -1L;
            if (!zero && !ones) {
                return;
            }
        }
        chunks[ci] = zero ? null : FULL;
    }

    /** Number of set bits. */
    public long count() {
        long n = 0;
        for (long[] c : chunks) {
            if (c == FULL) {
                n += CHUNK_BITS;
            } else if (c != null) {
                for (long w : c) {
                    n += Long.bitCount(w);
                }
            }
        }
        return n;
    }

    /** First set bit at or after {@code from}, or -1. */
    public long nextSet(long from) {
        return next(from, true);
    }

    /** First clear bit at or after {@code from}, or -1 when every bit from there is set. */
    public long nextClear(long from) {
        return next(from, false);
    }

    private long next(long from, boolean set) {
        if (from < 0) {
            from = 0;
        }
        while (from < sizeBits) {
            int ci = (int) (from / CHUNK_BITS);
            long chunkStart = (long) ci * CHUNK_BITS;
            long[] c = chunks[ci];
            if (c == (set ? FULL : null)) {
                return from;
            }
            if (c != (set ? null : FULL)) {
                int i = (int) (from - chunkStart);
                for (int w = i >>> 6; w < WORDS; w++) {
                    long word = set ? c[w] : ~c[w];
                    if (w == i >>> 6) {
                        word &= -1L << (i & 63);
                    }
                    if (word != 0) {
                        long bit = chunkStart + ((long) w << 6) + Long.numberOfTrailingZeros(word);
                        return bit < sizeBits ? bit : -1;
                    }
                }
            }
            from = chunkStart + CHUNK_BITS;
        }
        return -1;
    }

    /** ORs {@code other} (same size) into this bitmap. */
    public void or(BitmapBits other) {
        if (other.sizeBits != sizeBits) {
            throw new IllegalArgumentException("bitmaps of different sizes");
        }
        for (int i = 0; i < chunks.length; i++) {
            long[] o = other.chunks[i];
            long[] c = chunks[i];
            if (o == null || c == FULL) {
                continue;
            }
            if (o == FULL) {
                chunks[i] = FULL;
            } else {
                if (c == null) {
                    chunks[i] = o.clone();
                } else {
                    for (int w = 0; w < WORDS; w++) {
                        c[w] |= o[w];
                    }
                    normalize(i);
                }
            }
            changed[i] = 1;
        }
    }

    /** Changes the size; bits past a smaller size are dropped. */
    public void resize(long newSizeBits) {
        if (newSizeBits < sizeBits) {
            reset(newSizeBits, sizeBits);
        }
        long[][] n = Arrays.copyOf(chunks, (int) ((newSizeBits + CHUNK_BITS - 1) / CHUNK_BITS));
        long oldSize = sizeBits;
        sizeBits = newSizeBits;
        changed = Arrays.copyOf(changed, Math.max(changed.length, n.length));
        // the old last chunk may have been partial: it is an array, or null
        if (oldSize % CHUNK_BITS != 0 && oldSize < newSizeBits) {
            changed[(int) (oldSize / CHUNK_BITS)] = 1;
        }
        for (int i = chunks.length; i < n.length; i++) {
            changed[i] = 1;
        }
        chunks = n;
    }

    // ---------------------------------------------------------------- serialized form

    /** Bytes of the serialized bitmap: ceil(bits / 8). */
    public long sizeBytes() {
        return (sizeBits + 7) / 8;
    }

    /** Copies serialized bytes {@code [byteOffset, byteOffset+len)} into {@code dst} (zeros past the end). */
    public void read(long byteOffset, ByteBuffer dst) {
        ByteBuffer d = dst.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        long end = byteOffset + d.remaining();
        while (byteOffset < end) {
            int ci = (int) (byteOffset / CHUNK_BYTES);
            int in = (int) (byteOffset % CHUNK_BYTES);
            int n = (int) Math.min(end - byteOffset, CHUNK_BYTES - in);
            long[] c = ci < chunks.length ? chunks[ci] : null;
            if (c == null) {
                putZeros(d, n);
            } else if ((in & 7) == 0 && (n & 7) == 0) {
                d.asLongBuffer().put(c, in >>> 3, n >>> 3);
                d.position(d.position() + n);
            } else {
                for (int k = 0; k < n; k++) {
                    d.put((byte) (c[(in + k) >>> 3] >>> (((in + k) & 7) * 8)));
                }
            }
            byteOffset += n;
        }
        dst.position(dst.limit());
    }

    private static final byte[] ZEROS = new byte[CHUNK_BYTES];

    private static void putZeros(ByteBuffer d, int n) {
        while (n > 0) {
            int k = Math.min(n, ZEROS.length);
            d.put(ZEROS, 0, k);
            n -= k;
        }
    }

    /** Loads serialized bytes at {@code byteOffset} from {@code src} (replacing those bits). */
    public void write(long byteOffset, ByteBuffer src) {
        ByteBuffer s = src.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        long end = Math.min(byteOffset + s.remaining(), sizeBytes());
        while (byteOffset < end) {
            int ci = (int) (byteOffset / CHUNK_BYTES);
            int in = (int) (byteOffset % CHUNK_BYTES);
            int n = (int) Math.min(end - byteOffset, CHUNK_BYTES - in);
            long[] c = chunks[ci];
            if (c == null || c == FULL) {
                c = c == null ? new long[WORDS] : FULL.clone();
                chunks[ci] = c;
            }
            if ((in & 7) == 0 && (n & 7) == 0) {
                s.asLongBuffer().get(c, in >>> 3, n >>> 3);
                s.position(s.position() + n);
            } else {
                for (int k = 0; k < n; k++) {
                    int b = in + k;
                    int shift = (b & 7) * 8;
                    c[b >>> 3] = (c[b >>> 3] & ~(0xffL << shift)) | ((s.get() & 0xffL) << shift);
                }
            }
            // bits past the size stay zero
            long chunkStart = (long) ci * CHUNK_BITS;
            if (chunkStart + CHUNK_BITS > sizeBits) {
                setWords(c, (int) (sizeBits - chunkStart), CHUNK_BITS, false);
            }
            changed[ci] = 1;
            normalize(ci);
            byteOffset += n;
        }
    }

    /** Sets every bit in serialized bytes {@code [byteOffset, byteOffset+len)}. */
    public void fillBytes(long byteOffset, long len, boolean ones) {
        long from = byteOffset * 8;
        long to = Math.min((byteOffset + len) * 8, sizeBits);
        update(from, to, ones);
    }

    /** True when serialized bytes {@code [byteOffset, byteOffset+len)} are all zero. */
    public boolean isZero(long byteOffset, long len) {
        long from = byteOffset * 8;
        long to = Math.min((byteOffset + len) * 8, sizeBits);
        if (from >= to) {
            return true;
        }
        long n = nextSet(from);
        return n < 0 || n >= to;
    }

    /**
     * True when every bit of serialized bytes {@code [byteOffset, byteOffset+len)} is set
     * and the range lies wholly within the bitmap (a qcow2 all-ones table entry may stand
     * for it).
     */
    public boolean isOnes(long byteOffset, long len) {
        long from = byteOffset * 8;
        long to = (byteOffset + len) * 8;
        if (from >= to || to > sizeBits) {
            return false;
        }
        long n = nextClear(from);
        return n < 0 || n >= to;
    }

    /**
     * Serialized byte ranges, {@link #CHUNK_BYTES} each, of the chunks changed within
     * {@code [byteOffset, byteOffset+len)}: their starting byte offsets, ascending.
     */
    public long[] changedChunkOffsets(long byteOffset, long len) {
        int first = (int) (byteOffset / CHUNK_BYTES);
        int last = (int) ((byteOffset + len - 1) / CHUNK_BYTES);
        int count = 0;
        for (int i = nextChanged(first, last); i >= 0; i = nextChanged(i + 1, last)) {
            count++;
        }
        long[] out = new long[count];
        int k = 0;
        for (int i = nextChanged(first, last); i >= 0; i = nextChanged(i + 1, last)) {
            out[k++] = (long) i * CHUNK_BYTES;
        }
        return out;
    }

    /** True when some chunk overlapping serialized bytes {@code [byteOffset, byteOffset+len)} changed. */
    public boolean changed(long byteOffset, long len) {
        int first = (int) (byteOffset / CHUNK_BYTES);
        int last = (int) ((byteOffset + len - 1) / CHUNK_BYTES);
        return nextChanged(first, last) >= 0;
    }

    public boolean anyChanged() {
        return nextChanged(0) >= 0;
    }

    public void markAllChanged() {
        Arrays.fill(changed, (byte) 1);
    }

    public void clearChanged() {
        Arrays.fill(changed, (byte) 0);
    }

    /** Approximate heap held by the bit data, in bytes. */
    public long heapBytes() {
        long n = 16 + 16L + 4L * chunks.length;
        for (long[] c : chunks) {
            if (c != null && c != FULL) {
                n += 16 + 8L * WORDS;
            }
        }
        return n + changed.length;
    }

    /** An independent copy, the record of changed chunks included. */
    public BitmapBits copy() {
        BitmapBits b = new BitmapBits(sizeBits);
        for (int i = 0; i < chunks.length; i++) {
            long[] c = chunks[i];
            b.chunks[i] = c == null || c == FULL ? c : c.clone();
        }
        b.changed = changed.clone();
        return b;
    }

    /** Same size and same bits. */
    public boolean contentEquals(BitmapBits o) {
        if (o.sizeBits != sizeBits) {
            return false;
        }
        for (int i = 0; i < chunks.length; i++) {
            long[] a = chunks[i];
            long[] b = o.chunks[i];
            if (a != b && !Arrays.equals(a == null ? new long[WORDS] : a, b == null ? new long[WORDS] : b)) {
                return false;
            }
        }
        return true;
    }

    public int contentHash() {
        int h = Long.hashCode(sizeBits);
        for (long[] c : chunks) {
            h = 31 * h + (c == null ? 0 : c == FULL ? 1 : Arrays.hashCode(c));
        }
        return h;
    }

    private void checkBit(long bit) {
        if (bit < 0 || bit >= sizeBits) {
            throw new IndexOutOfBoundsException("bit " + bit + " of " + sizeBits);
        }
    }
}
