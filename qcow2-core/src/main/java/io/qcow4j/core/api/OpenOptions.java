package io.qcow4j.core.api;

/** How to open an image. */
public final class OpenOptions {
    private boolean readOnly = true;
    private boolean openBacking = true;
    private boolean checkMode;
    private boolean forceShare;
    private boolean sizeMismatchBitmapsInconsistent;
    private java.util.function.Consumer<String> warnings = OpenOptions::logWarning;
    private byte[] encryptionSecret;
    private boolean withoutDecryption;

    public static OpenOptions readOnly() {
        return new OpenOptions();
    }

    public static OpenOptions readWrite() {
        return new OpenOptions().writable(true);
    }

    public OpenOptions writable(boolean on) {
        this.readOnly = !on;
        return this;
    }

    /** Open the backing chain too (default); off for header-only inspection. */
    public OpenOptions openBacking(boolean on) {
        this.openBacking = on;
        return this;
    }

    /** Check/repair mode: a corrupt image may be opened read-write, the dirty bit is left alone. */
    public OpenOptions checkMode(boolean on) {
        this.checkMode = on;
        return this;
    }

    /**
     * Like qemu-img's {@code -U}: take none of QEMU's image locks, so an image another
     * process holds (a running VM) can still be inspected. Read-only opens only.
     */
    public OpenOptions forceShare(boolean on) {
        this.forceShare = on;
        return this;
    }

    public boolean forceShare() {
        return forceShare;
    }

    /**
     * A persistent bitmap whose table does not cover the image's virtual size is loaded as
     * inconsistent instead of failing the open (QEMU refuses such an image): for a backup that
     * must say which checkpoint is broken and still read the disk.
     */
    public OpenOptions sizeMismatchBitmapsInconsistent(boolean on) {
        this.sizeMismatchBitmapsInconsistent = on;
        return this;
    }

    public boolean sizeMismatchBitmapsInconsistent() {
        return sizeMismatchBitmapsInconsistent;
    }

    /** Receives warnings (a bitmap extension ignored, ...); by default they go to System.Logger "io.qcow4j". */
    public OpenOptions warnings(java.util.function.Consumer<String> sink) {
        this.warnings = java.util.Objects.requireNonNull(sink);
        return this;
    }

    public java.util.function.Consumer<String> warnings() {
        return warnings;
    }

    private static void logWarning(String message) {
        System.getLogger("io.qcow4j").log(System.Logger.Level.WARNING, message);
    }

    /**
     * The passphrase of a LUKS-encrypted image ({@code encrypt.key-secret}'s data): the open
     * unlocks a keyslot with it, or fails with QEMU's "Invalid password, cannot unlock any keyslot".
     */
    public OpenOptions encryptionSecret(byte[] passphrase) {
        this.encryptionSecret = passphrase == null ? null : passphrase.clone();
        return this;
    }

    public byte[] encryptionSecret() {
        return encryptionSecret;
    }

    /**
     * Open an encrypted image without its secret, for its metadata only (as qemu-img info
     * does): guest data reads and writes fail.
     */
    public OpenOptions withoutDecryption(boolean on) {
        this.withoutDecryption = on;
        return this;
    }

    public boolean withoutDecryption() {
        return withoutDecryption;
    }

    public boolean isReadOnly() {
        return readOnly;
    }

    public boolean openBacking() {
        return openBacking;
    }

    public boolean checkMode() {
        return checkMode;
    }
}
