package io.qcow4j.backup;

import com.fasterxml.jackson.annotation.JsonInclude;

/**
 * A guest range a backup file holds: zeros, or data with its CRC-32C. In a stream file,
 * {@code pos} is where the frame's payload starts and {@code stored} its length there (the
 * LZ4 frame's length when compressed).
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public final class ExtentRecord {
    public long start;
    public long length;
    public Boolean zero;
    public Long crc32c;
    public Long pos;
    public Long stored;

    public ExtentRecord() {
    }

    static ExtentRecord zero(long start, long length) {
        ExtentRecord e = new ExtentRecord();
        e.start = start;
        e.length = length;
        e.zero = true;
        return e;
    }

    static ExtentRecord data(long start, long length, long crc) {
        ExtentRecord e = new ExtentRecord();
        e.start = start;
        e.length = length;
        e.crc32c = crc;
        return e;
    }

    boolean isZero() {
        return zero != null && zero;
    }

    long end() {
        return start + length;
    }
}
