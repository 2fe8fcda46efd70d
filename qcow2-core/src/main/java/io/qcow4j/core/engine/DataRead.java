package io.qcow4j.core.engine;

import java.io.IOException;
import java.nio.ByteBuffer;

import io.qcow4j.core.storage.Storage;

/**
 * A read of guest data clusters planned under the image's lock and done after it is
 * released ({@link GuestRanges#readPlanned}): one positional read of a contiguous host run.
 */
public record DataRead(Storage storage, long host, ByteBuffer part) {
    public void run() throws IOException {
        storage.read(host, part);
    }
}
