package io.qcow4j.core.api;

/**
 * What an amend ({@code Qcow2Image.amend}) changes in an existing image, as {@code qemu-img amend -o}:
 * every field left unset keeps the image's value.
 */
public final class AmendOptions {
    private Integer version;
    private Integer refcountBits;
    private Boolean lazyRefcounts;
    private String dataFile;
    private Boolean dataFileRaw;
    private boolean backingFileGiven;
    private String backingFile;
    private boolean backingFormatGiven;
    private String backingFormat;
    private long size;

    public static AmendOptions none() {
        return new AmendOptions();
    }

    /** "0.10" (version 2) or "1.1" (version 3). */
    public AmendOptions compat(String compat) {
        this.version = switch (compat) {
            case "0.10", "v2" -> 2;
            case "1.1", "v3" -> 3;
            default -> throw new IllegalArgumentException("Unknown compatibility level " + compat);
        };
        return this;
    }

    public AmendOptions refcountBits(int bits) {
        if (bits <= 0 || bits > 64 || Integer.bitCount(bits) != 1) {
            throw new IllegalArgumentException("Refcount width must be a power of two and may not exceed 64 bits");
        }
        this.refcountBits = bits;
        return this;
    }

    public AmendOptions lazyRefcounts(boolean on) {
        this.lazyRefcounts = on;
        return this;
    }

    /** A new name for the external data file (the image must have one); "" removes the name. */
    public AmendOptions dataFile(String name) {
        this.dataFile = java.util.Objects.requireNonNull(name);
        return this;
    }

    /** data-file-raw: may only be cleared (or kept), as in QEMU. */
    public AmendOptions dataFileRaw(boolean on) {
        this.dataFileRaw = on;
        return this;
    }

    /** The backing file, which amend cannot change: it must be the image's own (null: none). */
    public AmendOptions backingFile(String name) {
        this.backingFileGiven = true;
        this.backingFile = name;
        return this;
    }

    public AmendOptions backingFormat(String format) {
        this.backingFormatGiven = true;
        this.backingFormat = format;
        return this;
    }

    /** The new virtual size (0: unchanged); a smaller size drops the data past it. */
    public AmendOptions size(long bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("Image size cannot be negative");
        }
        this.size = bytes;
        return this;
    }

    // what the amend reads: null (or false, 0) for a field left unset

    public Integer version() {
        return version;
    }

    public Integer refcountBits() {
        return refcountBits;
    }

    public Boolean lazyRefcounts() {
        return lazyRefcounts;
    }

    public String dataFile() {
        return dataFile;
    }

    public Boolean dataFileRaw() {
        return dataFileRaw;
    }

    public boolean backingFileGiven() {
        return backingFileGiven;
    }

    public String backingFile() {
        return backingFile;
    }

    public boolean backingFormatGiven() {
        return backingFormatGiven;
    }

    public String backingFormat() {
        return backingFormat;
    }

    public long size() {
        return size;
    }
}
