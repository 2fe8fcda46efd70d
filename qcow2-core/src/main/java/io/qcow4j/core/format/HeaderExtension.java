package io.qcow4j.core.format;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * One header extension ({@code === Header extensions ===}): u32 type, u32 length, data,
 * zero padding to a multiple of 8. Unknown types are kept verbatim through rewrites.
 * Immutable like the {@link Header} that holds it: the data is copied in and out.
 */
public record HeaderExtension(int type, byte[] data) {
    public static final int END = 0x00000000;
    public static final int BACKING_FORMAT = 0xe2792aca;
    public static final int FEATURE_NAME_TABLE = 0x6803f857;
    public static final int BITMAPS = 0x23852875;
    public static final int FULL_DISK_ENCRYPTION = 0x0537be77;
    public static final int EXTERNAL_DATA_FILE = 0x44415441;

    /** Bytes the extension takes in the header area, padding included. */
    public int paddedSize() {
        return 8 + ((data.length + 7) & ~7);
    }

    public HeaderExtension {
        data = data.clone();
    }

    /** A copy of the extension's data. */
    @Override
    public byte[] data() {
        return data.clone();
    }

    /** The data's length, without copying it. */
    public int length() {
        return data.length;
    }

    /**
     * Same type, same bytes. Written out (toString too): a record's generated methods are
     * linked on first use through method handles (~15 ms of class spinning at the start of
     * every command that writes a header).
     */
    @Override
    public boolean equals(Object o) {
        return o instanceof HeaderExtension e && e.type == type && Arrays.equals(e.data, data);
    }

    @Override
    public int hashCode() {
        return 31 * type + Arrays.hashCode(data);
    }

    @Override
    public String toString() {
        return "HeaderExtension[type=0x" + Integer.toHexString(type) + ", " + data.length + " bytes]";
    }

    public String asString() {
        return new String(data, StandardCharsets.UTF_8);
    }

    public static HeaderExtension ofString(int type, String value) {
        return new HeaderExtension(type, value.getBytes(StandardCharsets.UTF_8));
    }

    public String typeName() {
        return switch (type) {
            case BACKING_FORMAT -> "backing format";
            case FEATURE_NAME_TABLE -> "feature name table";
            case BITMAPS -> "bitmaps";
            case FULL_DISK_ENCRYPTION -> "full disk encryption header pointer";
            case EXTERNAL_DATA_FILE -> "external data file";
            default -> "unknown";
        };
    }
}
