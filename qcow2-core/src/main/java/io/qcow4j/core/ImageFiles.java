package io.qcow4j.core;

import java.io.IOException;
import java.nio.file.Path;

import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.api.UnsupportedImageException;
import io.qcow4j.core.engine.ImageOpener;

/** Finding and opening the files an image names (backing files), as the engine does itself. */
public final class ImageFiles {
    private ImageFiles() {
    }

    /** "qcow2" when the file starts with the qcow2 magic, "raw" otherwise. */
    public static String probeFormat(Path file) throws IOException {
        return ImageOpener.probe(file);
    }

    /** A file name as an image records it: absolute, or relative to the image's directory. */
    public static Path resolve(Path image, String name) {
        return ImageOpener.resolve(image, name);
    }

    /** Opens a would-be backing file read-only, with its own chain: qcow2 or raw (probed when null). */
    public static BlockDevice openReadOnly(Path file, String format) throws IOException {
        return openReadOnly(file, format, false, OpenOptions.readOnly().warnings());
    }

    /**
     * As {@link #openReadOnly(Path, String)}; {@code forceShare} takes no image locks
     * (qemu-img's -U); warnings of the chain go to {@code warnings}.
     */
    public static BlockDevice openReadOnly(Path file, String format, boolean forceShare,
                                           java.util.function.Consumer<String> warnings) throws IOException {
        String fmt = format != null ? format : probeFormat(file);
        return switch (fmt) {
            case "qcow2" -> Qcow2Image.open(file, OpenOptions.readOnly().forceShare(forceShare).warnings(warnings));
            case "raw" -> RawImage.open(file, true, forceShare);
            default -> throw new UnsupportedImageException("Unknown driver '" + fmt + "'");
        };
    }
}
