package io.qcow4j.testing;

import java.io.IOException;
import java.nio.ByteBuffer;

import io.qcow4j.core.storage.Storage;

/**
 * A {@link Storage} that passes everything to the real one and logs, in the order they
 * completed, every positional write (reserved zeros included), every change of the
 * file's length and every completed flush into a {@link PowerLoss} recording.
 */
final class RecordingStorage implements Storage {
    private final Storage delegate;
    private final PowerLoss log;
    private final int file;

    RecordingStorage(Storage delegate, PowerLoss log, int file) {
        this.delegate = delegate;
        this.log = log;
        this.file = file;
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
        delegate.reserve(offset, len);
        log.write(file, offset, new byte[Math.toIntExact(len)]);
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        delegate.read(offset, dst);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws IOException {
        byte[] copy = new byte[src.remaining()];
        src.duplicate().get(copy);
        delegate.write(offset, src);
        log.write(file, offset, copy);
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
        delegate.writeLong(offset, value);
        log.write(file, offset, ByteBuffer.allocate(8).putLong(0, value).array());
    }

    @Override
    public void writeInt(long offset, int value) throws IOException {
        delegate.writeInt(offset, value);
        log.write(file, offset, ByteBuffer.allocate(4).putInt(0, value).array());
    }

    @Override
    public void extend(long newLength) throws IOException {
        long before = delegate.length();
        delegate.extend(newLength);
        if (delegate.length() != before) {
            log.resize(file, delegate.length(), false);
        }
    }

    @Override
    public void flush() throws IOException {
        delegate.flush();
        log.flush(file);
    }

    @Override
    public void truncate(long newLength) throws IOException {
        delegate.truncate(newLength);
        log.resize(file, newLength, true);
    }

    @Override
    public void close() throws IOException {
        delegate.close();
    }
}
