package io.qcow4j.core.api;

import java.util.Objects;

/**
 * Options of a new qcow2 image, named after qemu-img's {@code -o} options. Defaults are
 * qemu-img 7.2's: compat 1.1, 64 KiB clusters, 16-bit refcounts, zlib.
 */
public final class CreateOptions {
    /**
     * How much is allocated up front ({@code preallocation=}): METADATA maps every cluster
     * over holes; FALLOC and FULL also give the clusters real (zero) bytes in the file.
     */
    public enum Preallocation { OFF, METADATA, FALLOC, FULL }

    private long size = -1;
    private String compat = "1.1";
    private int clusterSize = 65536;
    private int refcountBits = 16;
    private boolean lazyRefcounts;
    private boolean extendedL2;
    private CompressionType compressionType = CompressionType.ZLIB;
    private Preallocation preallocation = Preallocation.OFF;
    private String dataFile;
    private boolean dataFileRaw;
    private String backingFile;
    private String backingFormat;
    private byte[] luksSecret;
    private int luksIterTimeMillis = 2000;

    public static CreateOptions size(long size) {
        return new CreateOptions().withSize(size);
    }

    public CreateOptions withSize(long newSize) {
        if (newSize < 0) {
            throw new IllegalArgumentException("Image size must be non-negative");
        }
        this.size = newSize;
        return this;
    }

    /** "0.10" (version 2) or "1.1" (version 3); "v2"/"v3" accepted as in qemu-img. */
    public CreateOptions compat(String value) {
        switch (Objects.requireNonNull(value)) {
            case "0.10", "v2" -> compat = "0.10";
            case "1.1", "v3" -> compat = "1.1";
            default -> throw new IllegalArgumentException("Invalid parameter '" + value + "'");
        }
        return this;
    }

    public CreateOptions clusterSize(int bytes) {
        if (bytes < 512 || bytes > 2 * 1024 * 1024 || Integer.bitCount(bytes) != 1) {
            throw new IllegalArgumentException("Cluster size must be a power of two between 512 and 2048k");
        }
        this.clusterSize = bytes;
        return this;
    }

    public CreateOptions refcountBits(int bits) {
        if (bits < 1 || bits > 64 || Integer.bitCount(bits) != 1) {
            throw new IllegalArgumentException("Refcount width must be a power of two and may not exceed 64 bits");
        }
        this.refcountBits = bits;
        return this;
    }

    public CreateOptions lazyRefcounts(boolean on) {
        this.lazyRefcounts = on;
        return this;
    }

    public CreateOptions extendedL2(boolean on) {
        this.extendedL2 = on;
        return this;
    }

    public CreateOptions compressionType(CompressionType type) {
        this.compressionType = Objects.requireNonNull(type);
        return this;
    }

    public CreateOptions preallocation(Preallocation mode) {
        this.preallocation = Objects.requireNonNull(mode);
        return this;
    }

    /** External data file name, as recorded in the image (relative to the image's directory). */
    public CreateOptions dataFile(String name) {
        this.dataFile = name;
        return this;
    }

    public CreateOptions dataFileRaw(boolean on) {
        this.dataFileRaw = on;
        return this;
    }

    /** Backing file name, as recorded in the image (relative to the image's directory). */
    public CreateOptions backingFile(String name) {
        this.backingFile = name;
        return this;
    }

    public CreateOptions backingFormat(String format) {
        this.backingFormat = format;
        return this;
    }

    public long size() {
        return size;
    }

    public String compat() {
        return compat;
    }

    public int version() {
        return compat.equals("0.10") ? 2 : 3;
    }

    public int clusterSize() {
        return clusterSize;
    }

    public int refcountBits() {
        return refcountBits;
    }

    public boolean lazyRefcounts() {
        return lazyRefcounts;
    }

    public boolean extendedL2() {
        return extendedL2;
    }

    public CompressionType compressionType() {
        return compressionType;
    }

    public Preallocation preallocation() {
        return preallocation;
    }

    public String dataFile() {
        return dataFile;
    }

    public boolean dataFileRaw() {
        return dataFileRaw;
    }

    public String backingFile() {
        return backingFile;
    }

    public String backingFormat() {
        return backingFormat;
    }

    /** Checks combinations qemu-img refuses, with its messages. */
    /**
     * Encrypts the image with LUKS (encrypt.format=luks) as QEMU does by default:
     * aes-256-xts-plain64, sha256, the passphrase in keyslot 0. {@code iterTimeMillis}
     * (encrypt.iter-time, default 2000) is the time qcow4j's own PBKDF2 spends on the keyslot.
     */
    public CreateOptions luks(byte[] passphrase, int iterTimeMillis) {
        if (iterTimeMillis <= 0) {
            throw new IllegalArgumentException("encrypt.iter-time must be positive");
        }
        this.luksSecret = Objects.requireNonNull(passphrase).clone();
        this.luksIterTimeMillis = iterTimeMillis;
        return this;
    }

    public byte[] luksSecret() {
        return luksSecret == null ? null : luksSecret.clone();
    }

    public int luksIterTimeMillis() {
        return luksIterTimeMillis;
    }

    /** Refuses a combination qemu-img refuses (IllegalArgumentException, qemu-img's words). */
    public void validate() {
        if (version() == 2) {
            if (lazyRefcounts) {
                throw new IllegalArgumentException("Lazy refcounts only supported with compatibility level 1.1 and above (use version=v3 or greater)");
            }
            if (refcountBits != 16) {
                throw new IllegalArgumentException("Different refcount widths than 16 bits require compatibility level 1.1 or above (use version=v3 or greater)");
            }
            if (extendedL2) {
                throw new IllegalArgumentException("Extended L2 entries are only supported with compatibility level 1.1 and above (use version=v3 or greater)");
            }
            if (dataFile != null) {
                throw new IllegalArgumentException("External data files are only supported with compatibility level 1.1 and above (use version=v3 or greater)");
            }
            if (compressionType != CompressionType.ZLIB) {
                throw new IllegalArgumentException("Non-zlib compression type is only supported with compatibility level 1.1 and above (use version=v3 or greater)");
            }
        }
        if (extendedL2 && clusterSize < 16384) {
            throw new IllegalArgumentException("Extended L2 entries are only supported with cluster sizes of at least 16384 bytes");
        }
        if (dataFileRaw && dataFile == null) {
            throw new IllegalArgumentException("data-file-raw requires data-file");
        }
        if (dataFileRaw && backingFile != null) {
            throw new IllegalArgumentException("Backing file and data-file-raw cannot be used at the same time");
        }
        if (backingFile == null && backingFormat != null) {
            throw new IllegalArgumentException("Backing format cannot be used without backing file");
        }
        if (luksSecret != null && preallocation != Preallocation.OFF) {
            // preallocated clusters would hold plain zeros or holes, which decrypt to noise
            throw new IllegalArgumentException("qcow4j does not preallocate encrypted images");
        }
    }
}
