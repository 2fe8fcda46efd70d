package io.qcow4j.tools;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.Snapshot;
import io.qcow4j.core.api.BlockDevice;
import io.qcow4j.core.api.SnapshotException;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.List;

/**
 * {@code snapshot (-l | -c NAME | -a NAME | -d NAME) [-q] [-U] FILE}, as qemu-img snapshot:
 * its option parsing ({@link QemuGetopt}: options clustered or after the file), its lookups (-a by id,
 * else by name; -d by name only), its output and its error texts.
 */
final class SnapshotCommand {
    static final String NAME = "snapshot";
    /** qemu-img keeps names in a 256-byte C string. */
    private static final int MAX_NAME_BYTES = 255;
    private static final List<QemuGetopt.Long> LONG = List.of(
            new QemuGetopt.Long("help", false, "h"),
            new QemuGetopt.Long("object", true, "object"),
            new QemuGetopt.Long("image-opts", false, "image-opts"),
            new QemuGetopt.Long("force-share", false, "U"));

    private char action;
    private String name;
    private boolean forceShare;

    /** Runs {@code snapshot ARGS}; the exit code. */
    static int run(List<String> args, PrintWriter out) throws Exception {
        SnapshotCommand c = new SnapshotCommand();
        List<String> files = QemuGetopt.handle(NAME, args, ":la:c:d:hqU", LONG, out, o -> c.option(o, out));
        if (files.size() != 1) {
            throw new CliException(Program.usage("Expecting one image file name"));
        }
        return c.snapshot(files.get(0), out);
    }

    private void option(QemuGetopt.Opt o, PrintWriter out) {
        switch (o.key()) {
            case "l", "a", "c", "d" -> setAction(o.key().charAt(0), o.value());
            case "q" -> {
                // quiet: snapshot prints nothing but a list anyway
            }
            case "U" -> forceShare = true;
            case "object" -> ObjectOption.accept(o.value(), out);
            case "image-opts" -> ImageOpts.active(true);
            default -> throw new IllegalStateException(o.key());
        }
    }

    private int snapshot(String file, PrintWriter out) throws IOException {
        BlockDevice dev;
        if (forceShare && action != 'l') {
            throw new CliException("Could not open '" + file + "': force-share=on can only be used with read-only images");
        }
        dev = Images.open(file, null, action != 'l', true, forceShare);
        try {
            Qcow2Image image = dev instanceof Qcow2Image q ? q : null;
            switch (action) {
                case 'l' -> list(image, out);
                case 'c' -> create(image);
                case 'a' -> apply(image);
                case 'd' -> delete(image);
                default -> {
                    // qemu-img opens the image and does nothing
                }
            }
            dev.close();
        } finally {
            Images.closeQuietly(dev);
        }
        return 0;
    }

    private void setAction(char c, String value) {
        if (action != 0) {
            throw new CliException(Program.usage("Cannot mix '-l', '-a', '-c', '-d'"));
        }
        action = c;
        name = value;
    }

    /** qemu-img's dump_snapshots: nothing at all when there are none. */
    private static void list(Qcow2Image image, PrintWriter out) {
        if (image == null || image.snapshots().list().isEmpty()) {
            return;
        }
        out.println("Snapshot list:");
        out.println(ImageInfo.snapshotHeader());
        for (Snapshot s : image.snapshots().list()) {
            out.println(ImageInfo.snapshotLine(s));
        }
    }

    private void create(Qcow2Image image) {
        String prefix = "Could not create snapshot '" + name + "': ";
        if (image == null) {
            throw new CliException(prefix + "-95 (Operation not supported)");
        }
        try {
            image.snapshots().create(truncate(name));
        } catch (SnapshotException e) {
            throw new CliException(prefix + switch (e.reason()) {
                case NOT_SUPPORTED -> "-95 (Operation not supported)";
                case REFCOUNT_OVERFLOW -> "-22 (Invalid argument)";
                case TOO_MANY -> "-27 (File too large)";
                case ID_EXISTS -> "-17 (File exists)";
                case BITMAPS -> "-16 (Device or resource busy)";
            }, 1, e);
        } catch (IOException | RuntimeException e) {
            throw new CliException(prefix + "-5 (Input/output error): " + Images.reason(e), 1, e);
        }
    }

    private void apply(Qcow2Image image) {
        String prefix = "Could not apply snapshot '" + name + "': ";
        if (image == null) {
            throw new CliException(prefix + "Block driver does not support snapshots");
        }
        try {
            image.snapshots().apply(name);
        } catch (IllegalArgumentException e) {
            throw new CliException(prefix + "Failed to load snapshot: No such file or directory", 1, e);
        } catch (SnapshotException e) {
            throw new CliException(prefix + switch (e.reason()) {
                case BITMAPS -> e.getMessage();
                case NOT_SUPPORTED -> "Failed to load snapshot: Operation not supported";
                default -> "Failed to load snapshot: " + e.getMessage();
            }, 1, e);
        } catch (IOException | RuntimeException e) {
            throw new CliException(prefix + "Failed to load snapshot: " + Images.reason(e), 1, e);
        }
    }

    /** qemu-img snapshot -d finds the snapshot by name only, the first so named. */
    private void delete(Qcow2Image image) {
        String prefix = "Could not delete snapshot '" + name + "': ";
        Snapshot target = image == null ? null
                : image.snapshots().list().stream().filter(s -> s.name().equals(name)).findFirst().orElse(null);
        if (target == null) {
            throw new CliException(prefix + "snapshot not found");
        }
        try {
            image.snapshots().delete(target.id());
        } catch (IOException | RuntimeException e) {
            throw new CliException(prefix + Images.reason(e), 1, e);
        }
    }

    /** The name as qemu-img stores it: at most 255 bytes (cut here at a character boundary). */
    static String truncate(String s) {
        if (s.getBytes(StandardCharsets.UTF_8).length <= MAX_NAME_BYTES) {
            return s;
        }
        int end = s.length();
        while (s.substring(0, end).getBytes(StandardCharsets.UTF_8).length > MAX_NAME_BYTES) {
            end = Character.isLowSurrogate(s.charAt(end - 1)) && end >= 2 ? end - 2 : end - 1;
        }
        return s.substring(0, end);
    }
}
