package io.qcow4j.testing;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicInteger;

import io.qcow4j.core.storage.Storage;
import io.qcow4j.core.storage.StorageHook;

/**
 * A {@link Storage} that passes everything to the real one except one event: the Nth
 * write, reservation, length change or flush (counted across every file opened read-write
 * while installed) fails with an {@link IOException}, as EIO or ENOSPC, or, for a write of
 * several sectors, is torn (a seeded subset of its 512-byte sectors reaches the file) and
 * then fails. Only that one event fails: what follows succeeds, as when a disk recovers or
 * space is freed.
 */
public final class FaultyStorage implements Storage {
    /** How the chosen event fails. */
    public enum Fault { EIO, ENOSPC, TORN }

    /** Shared by the storages of one run: which event fails, and whether it did. */
    public static final class Plan implements AutoCloseable {
        final int target;
        final Fault fault;
        final long seed;
        final AtomicInteger count = new AtomicInteger();
        volatile String fired;

        private Plan(int target, Fault fault, long seed) {
            this.target = target;
            this.fault = fault;
            this.seed = seed;
        }

        /** Event number {@code target} (0, 1, ...) fails from now on, until closed. */
        public static Plan install(int target, Fault fault, long seed) {
            Plan p = new Plan(target, fault, seed);
            StorageHook.install((file, storage) -> new FaultyStorage(storage, p));
            return p;
        }

        /** What failed (null: the run had fewer events). */
        public String fired() {
            return fired;
        }

        /** Events counted so far. */
        public int events() {
            return count.get();
        }

        @Override
        public void close() {
            StorageHook.install(null);
        }
    }

    private final Storage delegate;
    private final Plan plan;

    FaultyStorage(Storage delegate, Plan plan) {
        this.delegate = delegate;
        this.plan = plan;
    }

    /** Whether this event is the one that fails; a torn write gets its sectors written first. */
    private void event(String what, long offset, ByteBuffer data) throws IOException {
        if (plan.count.getAndIncrement() != plan.target) {
            return;
        }
        plan.fired = plan.fault + " on " + what + " at " + offset;
        if (plan.fault == Fault.TORN && data != null && data.remaining() > PowerLoss.SECTOR) {
            java.util.Random r = new java.util.Random(plan.seed);
            int len = data.remaining();
            int pos = 0;
            while (pos < len) {
                // a sector at a time: [pos, to) ends at the next 512-byte boundary of the file
                int to = (int) Math.min(len, ((offset + pos) / PowerLoss.SECTOR + 1) * PowerLoss.SECTOR - offset);
                if (r.nextBoolean()) {
                    ByteBuffer piece = data.duplicate();
                    piece.position(data.position() + pos).limit(data.position() + to);
                    delegate.write(offset + pos, piece);
                }
                pos = to;
            }
        }
        throw new IOException(plan.fault == Fault.ENOSPC ? "No space left on device" : "Input/output error");
    }

    @Override
    public boolean isReadOnly() {
        return delegate.isReadOnly();
    }

    @Override
    public long length() {
        return delegate.length();
    }

    @Override
    public void reserve(long offset, long len) throws IOException {
        event("reserve", offset, null);
        delegate.reserve(offset, len);
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        delegate.read(offset, dst);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws IOException {
        event("write", offset, src);
        delegate.write(offset, src);
    }

    @Override
    public long readLong(long offset) throws IOException {
        return delegate.readLong(offset);
    }

    @Override
    public int readInt(long offset) throws IOException {
        return delegate.readInt(offset);
    }

    @Override
    public void readLongs(long offset, long[] dst, int dstOff, int count) throws IOException {
        delegate.readLongs(offset, dst, dstOff, count);
    }

    @Override
    public void writeLong(long offset, long value) throws IOException {
        event("writeLong", offset, null);
        delegate.writeLong(offset, value);
    }

    @Override
    public void writeInt(long offset, int value) throws IOException {
        event("writeInt", offset, null);
        delegate.writeInt(offset, value);
    }

    @Override
    public void extend(long newLength) throws IOException {
        event("extend", newLength, null);
        delegate.extend(newLength);
    }

    @Override
    public void flush() throws IOException {
        event("flush", 0, null);
        delegate.flush();
    }

    @Override
    public void truncate(long newLength) throws IOException {
        event("truncate", newLength, null);
        delegate.truncate(newLength);
    }

    @Override
    public void close() throws IOException {
        delegate.close();
    }
}
