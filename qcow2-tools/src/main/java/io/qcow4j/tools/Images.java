package io.qcow4j.tools;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.RawImage;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.OpenOptions;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

/** Opening images by name and format the way qemu-img does, with its error texts. */
final class Images {
    static final String QCOW2 = "qcow2";
    static final String RAW = "raw";
    /** The cache modes qemu-img's -t and -T take (accepted; qcow4j goes through the page cache). */
    static final List<String> CACHE_MODES = List.of("none", "off", "writeback", "writethrough", "directsync",
            "unsafe");
    private static final byte[] QCOW2_MAGIC = {'Q', 'F', 'I', (byte) 0xfb};
    private static final int SECTOR = 512;
    /** The LUKS passphrase of the image an option list names, while it is opened (see openByOptions). */
    private static final ThreadLocal<byte[]> SECRET = new ThreadLocal<>();
    /** Set while an image is opened for its metadata only (info): an encrypted one opens without its secret. */
    private static final ThreadLocal<Boolean> METADATA_ONLY = new ThreadLocal<>();

    private Images() {
    }

    /**
     * "qcow2" when the file starts with the qcow2 magic, else "raw" (qemu's probe, for our two
     * formats), or the name of another format qemu would find there ({@link Formats#foreign}).
     */
    static String probe(Path path) throws IOException {
        byte[] head = new byte[512];
        int n;
        try (InputStream in = Files.newInputStream(path)) {
            n = in.readNBytes(head, 0, head.length);
        }
        String foreign = Formats.foreign(head, n);
        if (foreign != null) {
            return foreign;
        }
        return n >= 4 && java.util.Arrays.equals(java.util.Arrays.copyOf(head, 4), QCOW2_MAGIC) ? QCOW2 : RAW;
    }

    /** Refuses a format this tool has no driver for. */
    static void checkFormat(String format, String what) {
        Formats.checkOpenable(format, what);
    }

    /**
     * Opens {@code name} as {@code format} (null: probe). A qcow2 image opens with its
     * backing chain when {@code backing} is set. Failures become "Could not open 'name': why".
     */
    static BlockDevice open(String name, String format, boolean writable, boolean backing) {
        return open(name, format, writable, backing, false);
    }

    /**
     * As {@link #open(String, String, boolean, boolean)}; {@code forceShare} (-U) takes none
     * of QEMU's image locks, so an image in use (a running VM's) can be inspected read-only.
     * An NBD URI ({@code nbd+unix:///EXPORT?socket=PATH}, {@code nbd://HOST:PORT/EXPORT})
     * opens the export as a raw disk (see {@link NbdImages}).
     */
    static BlockDevice open(String name, String format, boolean writable, boolean backing, boolean forceShare) {
        if (NbdImages.isNbd(name)) {
            return NbdImages.open(name, format, writable);
        }
        if (ImageOpts.applies(name)) {
            return openByOptions(name, format, writable, backing, forceShare);
        }
        String prefix = "Could not open '" + name + "': ";
        checkFormat(format, prefix);
        Path path = Cwd.path(name);
        try {
            if (Files.isDirectory(path)) {
                throw new CliException(prefix + "'file' driver requires '" + name + "' to be a regular file");
            }
            String fmt = format != null ? format : probe(path);
            if (!Formats.supported(fmt)) {
                throw new CliException(prefix + Formats.probedForeign(fmt));
            }
            if (fmt.equals(RAW)) {
                return RawImage.open(path, !writable, forceShare);
            }
            if (!probe(path).equals(QCOW2)) {
                throw new CliException(prefix + "Image is not in qcow2 format");
            }
            OpenOptions options = writable ? OpenOptions.readWrite() : OpenOptions.readOnly();
            options.encryptionSecret(SECRET.get()).withoutDecryption(Boolean.TRUE.equals(METADATA_ONLY.get()));
            return Qcow2Image.open(path, options.openBacking(backing).forceShare(forceShare).warnings(CliWarnings.sink()));
        } catch (CliException e) {
            throw e;
        } catch (Exception e) {
            throw new CliException(prefix + reason(e), 1, e);
        }
    }

    /**
     * A failure to open {@code file}, which {@code name} (json:{...} or an option list) named:
     * qemu-img names the option list first, then what its file driver said.
     */
    static CliException namedByOptions(CliException e, String name, String file) {
        String prefix = "Could not open '" + name + "': ";
        String inner = "Could not open '" + file + "': ";
        String m = e.getMessage();
        if (name.equals(file) || !m.startsWith(inner)) {
            return e;
        }
        String why = m.substring(inner.length());
        // the file driver's own failure keeps its line ("Could not open 'FILE': No such file ...")
        m = prefix + (why.equals("No such file or directory") || why.equals("Permission denied") ? m : why);
        return new CliException(m, e.exitCode(), e);
    }

    /** An image named by json:{...} or, under --image-opts, by an option list (see {@link ImageOpts}). */
    private static BlockDevice openByOptions(String name, String format, boolean writable, boolean backing,
            boolean forceShare) {
        String prefix = "Could not open '" + name + "': ";
        ImageOpts.Spec spec;
        try {
            spec = ImageOpts.parse(name);
        } catch (CliException e) {
            throw new CliException(prefix + e.getMessage(), e.exitCode(), e);
        }
        if (spec.forceShare() && writable) {
            throw new CliException(prefix + "force-share=on can only be used with read-only images");
        }
        byte[] secret;
        try {
            secret = spec.keySecret() == null ? null : ObjectOption.secret(spec.keySecret());
        } catch (CliException e) {
            throw new CliException(prefix + e.getMessage(), e.exitCode(), e);
        }
        boolean wasActive = ImageOpts.active();
        ImageOpts.active(false);
        SECRET.set(secret);
        try {
            return open(spec.filename(), format != null ? format : spec.format(), writable, backing,
                    forceShare || spec.forceShare());
        } catch (CliException e) {
            throw namedByOptions(e, name, spec.filename());
        } finally {
            ImageOpts.active(wasActive);
            SECRET.remove();
        }
    }

    /** Opens as {@link #open(String, String, boolean, boolean, boolean)}, for metadata only (qemu-img info's no-I/O open). */
    static BlockDevice openMetadata(String name, String format, boolean forceShare) {
        METADATA_ONLY.set(true);
        try {
            return open(name, format, false, false, forceShare);
        } finally {
            METADATA_ONLY.remove();
        }
    }

    /** qemu sees every disk in whole 512-byte sectors: a 1000-byte raw file is a 1024-byte disk. */
    static long virtualSize(BlockDevice dev) {
        long size = dev.size();
        long rem = size % SECTOR;
        return rem == 0 ? size : size + (SECTOR - rem);
    }

    /**
     * A backing file name relative to the image naming it: as qemu's path_combine, the
     * image's directory as written (not made absolute) is put in front of a relative name.
     */
    static String combine(String imageName, String backingName) {
        if (backingName.startsWith("/")) {
            return backingName;
        }
        int slash = imageName.lastIndexOf('/');
        return slash < 0 ? backingName : imageName.substring(0, slash + 1) + backingName;
    }

    /** The "why" part of an error line, in the words qemu uses for the common cases. */
    static String reason(Throwable e) {
        if (e instanceof NoSuchFileException nsf) {
            // the engine names a missing backing file qemu's way ("Could not open backing file: ...")
            String why = nsf.getReason();
            return why != null && why.startsWith("Could not open") ? why : "No such file or directory";
        }
        if (e instanceof AccessDeniedException) {
            return "Permission denied";
        }
        if (e instanceof FileSystemException fse && fse.getReason() != null) {
            return fse.getReason();
        }
        if (e instanceof UnsupportedOperationException) {
            return "Operation not supported" + (e.getMessage() != null ? " (" + e.getMessage() + ")" : "");
        }
        String message = e.getMessage();
        return message != null && !message.isBlank() ? message : e.getClass().getSimpleName();
    }

    static void closeQuietly(java.io.Closeable c) {
        if (c != null) {
            try {
                c.close();
            } catch (IOException | RuntimeException e) {
                // the command already failed or finished; a close error adds nothing
            }
        }
    }
}
