package io.qcow4j.backup;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;

/** Where a backup's ranges go: one file of the set, written as NAME.partial. */
interface TargetWriter extends Closeable {
    /** Stores data at guest {@code offset}; fills in the record's place in the file, if it has one. */
    void data(long offset, ByteBuffer buf, ExtentRecord record) throws IOException;

    /** Stores a range that reads as zeros. */
    void zero(long offset, long length) throws IOException;

    /** Completes the file and flushes it to the disk (it is renamed only after). */
    void finish(long dataBytes) throws IOException;
}
