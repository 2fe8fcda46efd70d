package io.qcow4j.core.api;

/** Header field {@code compression_type} (byte 104). */
public enum CompressionType {
    ZLIB(0, "zlib"),
    ZSTD(1, "zstd");

    private final int code;
    private final String qemuName;

    CompressionType(int code, String qemuName) {
        this.code = code;
        this.qemuName = qemuName;
    }

    public int code() {
        return code;
    }

    /** The name qemu-img uses in {@code -o compression_type=} and in info. */
    public String qemuName() {
        return qemuName;
    }

    public static CompressionType fromCode(int code) {
        for (CompressionType t : values()) {
            if (t.code == code) {
                return t;
            }
        }
        return null;
    }

    public static CompressionType fromName(String name) {
        for (CompressionType t : values()) {
            if (t.qemuName.equals(name)) {
                return t;
            }
        }
        throw new IllegalArgumentException("Invalid parameter '" + name + "'");
    }
}
