package io.qcow4j.backup.s3;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CancellationException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;

import io.qcow4j.backup.SetStore;
import software.amazon.awssdk.core.exception.SdkException;

/**
 * An object read with ranged GETs of {@link #BLOCK} bytes. Read front to back (as restore and
 * verify read a stream), the next {@link #AHEAD} blocks are fetched in parallel ahead of the
 * reader; a few blocks are kept, so small reads near each other cost one request. Every GET
 * names the object's ETag, so an object replaced meanwhile is an error, not a mix.
 */
final class S3ReadFile implements SetStore.ReadFile {
    static final int BLOCK = 4 << 20;
    static final int AHEAD = 4;

    private final S3Store store;
    private final String file;
    private final long size;
    private final String etag;
    private final Map<Long, Future<byte[]>> blocks = new LinkedHashMap<>(16, 0.75f, true) {
        private static final long serialVersionUID = 1L;

        @Override
        protected boolean removeEldestEntry(Map.Entry<Long, Future<byte[]>> eldest) {
            if (size() > AHEAD + 2) {
                eldest.getValue().cancel(true);
                return true;
            }
            return false;
        }
    };
    private long last = -1;

    S3ReadFile(S3Store store, String file, long size, String etag) {
        this.store = store;
        this.file = file;
        this.size = size;
        this.etag = etag;
    }

    @Override
    public String name() {
        return file;
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public synchronized int read(long pos, ByteBuffer dst) throws IOException {
        int total = 0;
        while (dst.hasRemaining() && pos < size) {
            long b = pos / BLOCK;
            Future<byte[]> f = fetch(b);
            if (b == last || b == last + 1) {
                for (long a = b + 1; a <= b + AHEAD && a * BLOCK < size; a++) {
                    fetch(a);
                }
            }
            last = b;
            byte[] data = get(f);
            int off = (int) (pos - b * BLOCK);
            int n = Math.min(dst.remaining(), data.length - off);
            dst.put(data, off, n);
            pos += n;
            total += n;
        }
        return total;
    }

    private Future<byte[]> fetch(long b) {
        Future<byte[]> f = blocks.get(b);
        if (f == null) {
            long start = b * BLOCK;
            int len = (int) Math.min(BLOCK, size - start);
            f = S3Store.IO.submit(() -> range(start, len));
            blocks.put(b, f);
        }
        return f;
    }

    private byte[] range(long start, int len) throws IOException {
        String key = store.at.key(file);
        try (InputStream in = store.s3.getObject(r -> r.bucket(store.at.bucket()).key(key)
                .range("bytes=" + start + "-" + (start + len - 1)).ifMatch(etag))) {
            byte[] out = in.readNBytes(len);
            if (out.length != len) {
                throw new IOException(store.where(file) + ": " + len + " bytes at offset " + start + " came back as "
                        + out.length);
            }
            return out;
        } catch (SdkException e) {
            throw S3Errors.io(store.where(file), e);
        }
    }

    private byte[] get(Future<byte[]> f) throws IOException {
        try {
            return f.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted");
        } catch (CancellationException e) {
            throw new InterruptedIOException("cancelled");
        } catch (ExecutionException e) {
            blocks.values().remove(f); // not kept: a later read asks again
            if (e.getCause() instanceof IOException io) {
                if (io instanceof java.nio.file.NoSuchFileException) {
                    throw io;
                }
                throw new IOException(io.getMessage(), io);
            }
            throw new IOException(store.where(file) + ": " + e.getCause(), e.getCause());
        }
    }

    @Override
    public synchronized void close() {
        for (Future<byte[]> f : blocks.values()) {
            f.cancel(true);
        }
        blocks.clear();
    }
}
