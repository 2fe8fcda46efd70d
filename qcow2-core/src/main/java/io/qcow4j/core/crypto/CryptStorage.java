package io.qcow4j.core.crypto;

import java.io.IOException;
import java.nio.ByteBuffer;

import io.qcow4j.core.storage.Storage;

/**
 * Guest data clusters of a LUKS-encrypted image: reads decrypt, writes encrypt, by 512-byte
 * sectors whose XTS tweak is the sector's HOST offset / 512 (QEMU encrypts qcow2's LUKS
 * data by physical offset). A write that covers part of a sector rewrites the whole sector.
 * Only {@link #read} and {@link #write} are data; the rest passes to the file.
 */
public final class CryptStorage implements Storage {
    private static final int S = Xts.SECTOR;
    private final Storage file;
    private final Xts cipher;

    /** {@code cipher} null: the image was opened without its secret, data access fails. */
    public CryptStorage(Storage file, Xts cipher) {
        this.file = file;
        this.cipher = cipher;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        requireCipher();
        int n = dst.remaining();
        long start = offset / S * S;
        long end = (offset + n + S - 1) / S * S;
        byte[] buf = new byte[Math.toIntExact(end - start)];
        file.read(start, ByteBuffer.wrap(buf));
        cipher.decrypt(buf, 0, buf.length, start / S);
        dst.put(buf, (int) (offset - start), n);
    }

    @Override
    public void write(long offset, ByteBuffer src) throws IOException {
        requireCipher();
        int n = src.remaining();
        long start = offset / S * S;
        long end = (offset + n + S - 1) / S * S;
        byte[] buf = new byte[Math.toIntExact(end - start)];
        int head = (int) (offset - start);
        if (head != 0 || n != buf.length) {
            // partial sectors: the plaintext around the new bytes
            read(start, ByteBuffer.wrap(buf));
        }
        src.get(buf, head, n);
        cipher.encrypt(buf, 0, buf.length, start / S);
        file.write(start, ByteBuffer.wrap(buf));
    }

    /** Opened without the secret (metadata only): no guest data. */
    private void requireCipher() throws IOException {
        if (cipher == null) {
            throw new IOException("Parameter 'encrypt.key-secret' is required for cipher");
        }
    }

    @Override
    public boolean isReadOnly() {
        return file.isReadOnly();
    }

    @Override
    public long length() {
        return file.length();
    }

    @Override
    public void reserve(long offset, long len) throws IOException {
        file.reserve(offset, len);
    }

    @Override
    public long readLong(long offset) throws IOException {
        return file.readLong(offset);
    }

    @Override
    public int readInt(long offset) throws IOException {
        return file.readInt(offset);
    }

    @Override
    public void writeLong(long offset, long value) throws IOException {
        file.writeLong(offset, value);
    }

    @Override
    public void writeInt(long offset, int value) throws IOException {
        file.writeInt(offset, value);
    }

    @Override
    public void extend(long newLength) throws IOException {
        file.extend(newLength);
    }

    @Override
    public void flush() throws IOException {
        file.flush();
    }

    @Override
    public void truncate(long newLength) throws IOException {
        file.truncate(newLength);
    }

    /** The file stays open: its owner closes it. */
    @Override
    public void close() {
    }
}
