package io.qcow4j.tools;

import java.io.PrintWriter;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The {@code -o} options qemu-img create knows for each format we write, in the order
 * qemu-img echoes them in its "Formatting ..." line, with their types and defaults.
 */
final class FormatOptions {
    enum Type { SIZE, NUMBER, BOOL, STRING }

    /** One option: the default is echoed even when the option is not given. */
    record Opt(String name, Type type, String defaultValue, String help) {
        String typeName() {
            return switch (type) {
                case SIZE -> "<size>";
                case NUMBER -> "<num>";
                case BOOL -> "<bool (on/off)>";
                case STRING -> "<str>";
            };
        }
    }

    private static final Opt SIZE = new Opt("size", Type.SIZE, null, "Virtual disk size");
    private static final Opt NOCOW = new Opt("nocow", Type.BOOL, null,
            "Turn off copy-on-write (valid only on btrfs)");
    private static final Opt EXTENT_SIZE_HINT = new Opt("extent_size_hint", Type.SIZE, null,
            "Extent size hint for the image file, 0 to disable");

    /** qcow2's encryption options: listed, echoed first; LUKS with QEMU's defaults is made (see CreateCommand.luks). */
    static final List<Opt> ENCRYPT = List.of(
            new Opt("encryption", Type.BOOL, null,
                    "Encrypt the image with format 'aes'. (Deprecated in favor of encrypt.format=aes)"),
            new Opt("encrypt.format", Type.STRING, null, "Encrypt the image, format choices: 'aes', 'luks'"),
            new Opt("encrypt.key-secret", Type.STRING, null, "ID of secret providing qcow AES key or LUKS passphrase"),
            new Opt("encrypt.cipher-alg", Type.STRING, null, "Name of encryption cipher algorithm"),
            new Opt("encrypt.cipher-mode", Type.STRING, null, "Name of encryption cipher mode"),
            new Opt("encrypt.ivgen-alg", Type.STRING, null, "Name of IV generator algorithm"),
            new Opt("encrypt.ivgen-hash-alg", Type.STRING, null, "Name of IV generator hash algorithm"),
            new Opt("encrypt.hash-alg", Type.STRING, null, "Name of encryption hash algorithm"),
            new Opt("encrypt.iter-time", Type.NUMBER, null, "Time to spend in PBKDF in milliseconds"));

    static final List<Opt> QCOW2 = java.util.stream.Stream.concat(ENCRYPT.stream(), Stream.of(
            new Opt("cluster_size", Type.SIZE, "65536", "qcow2 cluster size"),
            new Opt("extended_l2", Type.BOOL, "off", "Extended L2 tables"),
            new Opt("preallocation", Type.STRING, null, "Preallocation mode (allowed values: off, metadata, falloc, full)"),
            new Opt("compression_type", Type.STRING, "zlib",
                    "Compression method used for image cluster compression"),
            SIZE,
            new Opt("compat", Type.STRING, null, "Compatibility level (v2 [0.10] or v3 [1.1])"),
            new Opt("backing_file", Type.STRING, null, "File name of a base image"),
            new Opt("backing_fmt", Type.STRING, null, "Image format of the base image"),
            new Opt("data_file", Type.STRING, null, "File name of an external data file"),
            new Opt("data_file_raw", Type.BOOL, null, "The external data file must stay valid as a raw image"),
            new Opt("lazy_refcounts", Type.BOOL, "off", "Postpone refcount updates"),
            new Opt("refcount_bits", Type.NUMBER, "16", "Width of a reference count entry in bits"),
            NOCOW,
            EXTENT_SIZE_HINT)).toList();

    /** qcow2's own create options, without the file protocol's (nocow, extent_size_hint). */
    static final List<Opt> QCOW2_DRIVER = QCOW2.stream().filter(o -> o != NOCOW && o != EXTENT_SIZE_HINT).toList();

    static final List<Opt> RAW = List.of(
            SIZE,
            NOCOW,
            new Opt("preallocation", Type.STRING, null, "Preallocation mode (allowed values: off, falloc, full)"),
            EXTENT_SIZE_HINT);

    private FormatOptions() {
    }

    static List<Opt> forFormat(String format) {
        return format.equals(Images.RAW) ? RAW : QCOW2;
    }

    static Opt find(List<Opt> table, String name) {
        for (Opt o : table) {
            if (o.name().equals(name)) {
                return o;
            }
        }
        return null;
    }

    /**
     * Checks every given option is known and well-typed, with qemu's messages
     * (the caller prefixes the file name).
     */
    static void checkTypes(List<Opt> table, Map<String, String> values) {
        for (Map.Entry<String, String> e : values.entrySet()) {
            Opt o = find(table, e.getKey());
            if (o == null) {
                throw new CliException("Invalid parameter '" + e.getKey() + "'");
            }
            typed(o, e.getValue());
        }
    }

    /**
     * Checks every option as given, in order, repeats included (qemu parses each value as it
     * comes, so a bad value fails even when a later one overrides it).
     */
    static void checkItems(List<Opt> table, OptionList opts) {
        for (Map.Entry<String, String> e : opts.items()) {
            checkTypes(table, Map.of(e.getKey(), e.getValue()));
        }
    }

    /** The value of a typed option, or its parse failure (qemu's words). */
    static Object typed(Opt o, String value) {
        return switch (o.type()) {
            case SIZE -> OptionList.parseSize(o.name(), value);
            case NUMBER -> OptionList.parseNumber(o.name(), value);
            case BOOL -> OptionList.parseBool(o.name(), value);
            case STRING -> value;
        };
    }

    /**
     * What qemu-img prints before creating: {@code Formatting 'FILE', fmt=F k=v ...}. Sizes
     * and numbers as parsed, booleans and strings as written, defaults for unset options.
     */
    static String formattingLine(String file, String format, List<Opt> table, Map<String, String> values) {
        StringBuilder b = new StringBuilder("Formatting '").append(file).append("', fmt=").append(format);
        for (Opt o : table) {
            String given = values.get(o.name());
            String shown;
            if (given == null) {
                shown = o.defaultValue();
            } else if (o.type() == Type.SIZE || o.type() == Type.NUMBER) {
                shown = Long.toUnsignedString((Long) typed(o, given));
            } else {
                shown = OptionList.escape(given);
            }
            if (shown != null) {
                b.append(' ').append(o.name()).append('=').append(shown);
            }
        }
        return b.toString();
    }

    /**
     * {@code -o help}, as qemu-img lists it: with a file name, the format's and the file
     * protocol's options together; without one, the format's alone and a hint.
     */
    static void printHelp(PrintWriter out, String format, boolean withFile) {
        List<Opt> table = forFormat(format);
        if (withFile) {
            out.println("Supported options:");
            printSorted(out, table);
            return;
        }
        out.println("Supported " + format + " options:");
        printSorted(out, table.stream().filter(o -> o != NOCOW && o != EXTENT_SIZE_HINT
                && !(format.equals(Images.RAW) && o.name().equals("preallocation"))).toList());
        out.println();
        out.println("The protocol level may support further options.");
        out.println("Specify the target filename to include those options.");
    }

    static void printSorted(PrintWriter out, List<Opt> options) {
        options.stream().sorted(Comparator.comparing(Opt::name)).forEach(o ->
                out.println(String.format("  %-22s - %s", o.name() + "=" + o.typeName(), o.help())));
    }
}
