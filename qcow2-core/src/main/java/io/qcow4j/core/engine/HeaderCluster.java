package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.function.UnaryOperator;

import io.qcow4j.core.bitmap.WriteTracking;
import io.qcow4j.core.format.Header;
import io.qcow4j.core.storage.Storage;

/**
 * The image's header in cluster 0: the parsed {@link Header} the engine keeps in memory and
 * the write that puts it back. It is made before the engine, so the parts built first (the
 * refcount manager reports a moved refcount table here) need no engine that does not exist yet.
 * The header is immutable: {@link #updateHeader} is the one place the image's header changes.
 *
 * <p>It is also the header the bitmaps read and change (their extension, autoclear bit 0):
 * their header writes happen inside a write or close the engine already prepared, so they
 * write here, not through the engine's {@code rewriteHeader} (which prepares a first write).
 */
final class HeaderCluster implements WriteTracking.HeaderWriter {
    private final Storage storage;
    /** The header as it stands: replaced, never changed in place, and only by {@link #updateHeader}. */
    private volatile Header header;
    /** The monitor a write holds: the engine's, once an engine stands on this header. */
    private volatile Object lock = this;

    HeaderCluster(Storage storage, Header header) {
        this.storage = storage;
        this.header = header;
    }

    @Override
    public Header header() {
        return header;
    }

    /**
     * Replaces the in-memory header by {@code change} applied to it (nothing is written: the
     * caller writes when its ordering allows). Returns the new header.
     */
    @Override
    public Header updateHeader(UnaryOperator<Header> change) {
        synchronized (lock) {
            header = change.apply(header);
            return header;
        }
    }

    /** Writes are made under {@code lock} from now on (the engine's, which becomes its face's). */
    void guardBy(Object lock) {
        this.lock = lock;
    }

    /** Serialises the in-memory header into cluster 0 (not flushed). */
    @Override
    public void writeHeader() throws IOException {
        synchronized (lock) {
            byte[] bytes = header.serialize();
            storage.write(0, ByteBuffer.wrap(bytes));
        }
    }

    /** The L1 table moved (a grow): the header names the new one, durably, before the old one is freed. */
    void l1Moved(long offset, int entries) throws IOException {
        updateHeader(h -> h.withL1Table(offset, entries));
        writeHeader();
        storage.flush();
    }

    /** The refcount table moved (it grew): the header names the new one, durably. */
    void refcountTableMoved(long offset, int clusters) throws IOException {
        updateHeader(h -> h.withRefcountTable(offset, clusters));
        writeHeader();
        storage.flush();
    }
}
