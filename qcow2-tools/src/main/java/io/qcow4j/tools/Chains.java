package io.qcow4j.tools;

import io.qcow4j.bitmaps.Chain;
import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.OpenOptions;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Opening a qcow2 image with its backing chain for the chain commands, with qemu-img's error texts. */
final class Chains {
    private Chains() {
    }

    /**
     * Opens {@code name} (qcow2 only) with its whole backing chain, warnings going to
     * {@code err} as {@code qcow4j: warning: ...}. A raw file gets {@code ifRaw} as the error
     * (null: qemu's "not in qcow2 format").
     */
    static Chain open(String name, String format, boolean writable, PrintWriter err, String ifRaw) {
        return open(name, format, writable, false, err, ifRaw);
    }

    /** As above; {@code forceShare} (-U, read-only only) takes none of QEMU's image locks. */
    static Chain open(String name, String format, boolean writable, boolean forceShare, PrintWriter err, String ifRaw) {
        requireQcow2(name, format, ifRaw);
        String prefix = "Could not open '" + name + "': ";
        try {
            return Chain.open(Cwd.path(name),
                    (writable ? OpenOptions.readWrite() : OpenOptions.readOnly()).forceShare(forceShare), CliWarnings.to(err));
        } catch (CliException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            throw new CliException(prefix + Images.reason(e), 1, e);
        }
    }

    /**
     * Refuses what is not a qcow2 image: an existing raw file (or -f raw) with {@code ifRaw}
     * (null: qemu's "not in qcow2 format"), an unknown format or a directory with qemu's texts.
     * A missing file passes: opening it reports that.
     */
    static void requireQcow2(String name, String format, String ifRaw) {
        String prefix = "Could not open '" + name + "': ";
        Images.checkFormat(format, prefix);
        if (NbdImages.isNbd(name)) {
            // an export is a raw disk here, never a qcow2 chain
            throw new CliException(ifRaw != null ? ifRaw : prefix + "Image is not in qcow2 format");
        }
        Path path = Cwd.path(name);
        try {
            if (Files.isDirectory(path)) {
                throw new CliException(prefix + "'file' driver requires '" + name + "' to be a regular file");
            }
            if (!Files.exists(path)) {
                return;
            }
            String probed = Images.probe(path);
            String fmt = format != null ? format : probed;
            if (fmt.equals(Images.RAW) && ifRaw != null) {
                throw new CliException(ifRaw);
            }
            if (!fmt.equals(Images.QCOW2) || !probed.equals(Images.QCOW2)) {
                throw new CliException(prefix + "Image is not in qcow2 format");
            }
        } catch (IOException e) {
            throw new CliException(prefix + Images.reason(e), 1, e);
        }
    }

    /** The names of the chain's files as qemu-img info --backing-chain shows them: each backing name combined with its image's. */
    static List<String> names(String top, Chain chain) {
        List<String> names = new ArrayList<>();
        String name = top;
        for (int d = 0; d < chain.depth(); d++) {
            names.add(name);
            if (chain.layers().get(d) instanceof Qcow2Image q && q.chain().backingFile() != null) {
                name = Images.combine(name, q.chain().backingFile());
            } else {
                break;
            }
        }
        while (names.size() < chain.depth()) {
            names.add(String.valueOf(chain.layers().get(names.size()).path()));
        }
        return names;
    }

    /**
     * The depth of the layer {@code name} designates, qemu's way: at each image of the chain
     * the name is taken relative to that image's directory and compared, as a real path,
     * with its backing file. -1 when no backing file matches.
     */
    static int findBacking(Chain chain, String name) {
        Path given = Path.of(name);
        for (int d = 0; d + 1 < chain.depth(); d++) {
            Path image = chain.layers().get(d).path();
            Path below = chain.layers().get(d + 1).path();
            if (image == null || below == null) {
                continue;
            }
            Path dir = image.toAbsolutePath().getParent();
            Path candidate = given.isAbsolute() || dir == null ? given : dir.resolve(given);
            try {
                if (candidate.toRealPath().equals(below.toRealPath())) {
                    return d + 1;
                }
            } catch (IOException e) {
                // no such file from here: try the next image's directory
            }
        }
        return -1;
    }

    static void closeQuietly(Chain chain) {
        if (chain == null) {
            return;
        }
        try {
            chain.close();
        } catch (IOException | RuntimeException e) {
            // the command already failed; a close error adds nothing
        }
    }
}
