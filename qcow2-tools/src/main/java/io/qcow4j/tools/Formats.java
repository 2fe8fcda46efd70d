package io.qcow4j.tools;

import java.util.Set;

/**
 * Format names: the two qcow4j has drivers for (qcow2, raw), and how the others are refused.
 * A name qemu-img 7.2 does not know gets its words ("Unknown file format 'x'" where an image
 * is created, "Unknown driver 'x'" where one is opened); a driver qemu itself cannot create
 * images with gets its "Format driver 'x' does not support image creation". A format qemu-img
 * has and qcow4j lacks (vmdk, vpc, vdi, qed, vhdx, qcow, parallels, luks, the protocols) is
 * refused as "Format 'x' is not supported by qcow4j (only qcow2 and raw)"; in drop-in mode
 * with qemu-img's words for a driver it lacks, as a qemu-img built without that driver says.
 */
final class Formats {
    /** Every format and protocol driver qemu-img 7.2 lists ("Supported formats:"). */
    static final Set<String> QEMU = Set.of("blkdebug", "blklogwrites", "blkverify", "bochs", "cloop", "compress",
            "copy-before-write", "copy-on-read", "dmg", "file", "ftp", "ftps", "gluster", "host_cdrom", "host_device",
            "http", "https", "iscsi", "iser", "luks", "nbd", "nfs", "null-aio", "null-co", "nvme", "parallels",
            "preallocate", "qcow", "qcow2", "qed", "quorum", "raw", "rbd", "replication", "snapshot-access", "ssh",
            "throttle", "vdi", "vhdx", "vmdk", "vpc", "vvfat");

    /** The drivers qemu-img has no image creation for. */
    static final Set<String> QEMU_CANNOT_CREATE = Set.of("blkdebug", "blklogwrites", "blkverify", "bochs", "cloop",
            "compress", "copy-before-write", "copy-on-read", "dmg", "ftp", "ftps", "http", "https", "null-aio",
            "null-co", "preallocate", "quorum", "replication", "snapshot-access", "throttle", "vvfat");

    /** The -o options qemu-img 7.2 knows for the formats it creates and qcow4j does not: name:type. */
    private static final java.util.Map<String, String> FOREIGN_OPTIONS = java.util.Map.of(
            "qcow", "backing_file:s backing_fmt:s encrypt.format:s encrypt.key-secret:s encryption:b",
            "qed", "backing_file:s backing_fmt:s cluster_size:z table_size:z",
            "vdi", "static:b",
            "vhdx", "block_size:z block_state_zero:b log_size:z subformat:s",
            "vmdk", "adapter_type:s backing_file:s backing_fmt:s compat6:b hwversion:s subformat:s toolsversion:s"
                    + " zeroed_grain:b",
            "vpc", "force_size:b subformat:s",
            "parallels", "cluster_size:z",
            "luks", "cipher-alg:s cipher-mode:s hash-alg:s iter-time:n ivgen-alg:s ivgen-hash-alg:s key-secret:s",
            "gluster", "debug:n logfile:s",
            "rbd", "cluster_size:z encrypt.cipher-alg:s encrypt.format:s encrypt.key-secret:s password-secret:s");
    /** What the file protocol adds to every format's options. */
    private static final String FILE_OPTIONS = "extent_size_hint:z nocow:b preallocation:s size:z";

    private Formats() {
    }

    /**
     * The -o options qemu-img accepts for {@code format} (a creatable one): ours for qcow2
     * and raw, the names and types qemu-img has for the others.
     */
    static java.util.List<FormatOptions.Opt> options(String format) {
        if (supported(format)) {
            return FormatOptions.forFormat(format);
        }
        java.util.List<FormatOptions.Opt> table = new java.util.ArrayList<>();
        for (String o : (FOREIGN_OPTIONS.getOrDefault(format, "") + " " + FILE_OPTIONS).trim().split(" ")) {
            String[] nt = o.split(":");
            FormatOptions.Type type = switch (nt[1]) {
                case "z" -> FormatOptions.Type.SIZE;
                case "n" -> FormatOptions.Type.NUMBER;
                case "b" -> FormatOptions.Type.BOOL;
                default -> FormatOptions.Type.STRING;
            };
            table.add(new FormatOptions.Opt(nt[0], type, null, ""));
        }
        return table;
    }

    /**
     * The format qemu-img's probe would find in a file that starts with {@code head}, when
     * it is one qcow4j has no driver for (vmdk, vpc, vdi, qed, vhdx, qcow, parallels, luks,
     * bochs, cloop), else null: such a file must not pass for a raw disk.
     */
    static String foreign(byte[] head, int n) {
        if (startsWith(head, n, "QFI\u00fb") && n >= 8 && head[4] == 0 && head[5] == 0 && head[6] == 0 && head[7] == 1) {
            return "qcow";
        }
        if (startsWith(head, n, "KDMV") || startsWith(head, n, "COWD") || startsWith(head, n, "# Disk DescriptorFile")) {
            return "vmdk";
        }
        if (startsWith(head, n, "conectix")) {
            return "vpc";
        }
        if (n >= 0x44 && (head[0x40] & 0xff) == 0x7f && (head[0x41] & 0xff) == 0x10 && (head[0x42] & 0xff) == 0xda
                && (head[0x43] & 0xff) == 0xbe) {
            return "vdi";
        }
        if (startsWith(head, n, "QED\u0000")) {
            return "qed";
        }
        if (startsWith(head, n, "vhdxfile")) {
            return "vhdx";
        }
        if (startsWith(head, n, "WithoutFreeSpace") || startsWith(head, n, "WithouFreSpacExt")) {
            return "parallels";
        }
        if (startsWith(head, n, "LUKS\u00ba\u00be")) {
            return "luks";
        }
        if (startsWith(head, n, "Bochs Virtual HD Image")) {
            return "bochs";
        }
        if (startsWith(head, n, "#!/bin/sh\n#V2.0 Format\nmodprobe cloop")) {
            return "cloop";
        }
        return null;
    }

    /** "Image is in vmdk format, ...": the refusal of a probed file of such a format. */
    static String probedForeign(String format) {
        return "Image is in " + format + " format, which qcow4j does not support (only qcow2 and raw;"
                + " -f raw reads the file as a raw disk)";
    }

    private static boolean startsWith(byte[] head, int n, String magic) {
        if (n < magic.length()) {
            return false;
        }
        for (int i = 0; i < magic.length(); i++) {
            if ((head[i] & 0xff) != magic.charAt(i)) {
                return false;
            }
        }
        return true;
    }

    static boolean supported(String format) {
        return Images.QCOW2.equals(format) || Images.RAW.equals(format);
    }

    /** "Format 'x' is not supported by qcow4j ...": qcow4j's words for a format qemu-img has. */
    static String notSupported(String format) {
        return "Format '" + format + "' is not supported by qcow4j (only qcow2 and raw)";
    }

    /**
     * Refuses a format an image cannot be created in ({@code -f} of create, {@code -O} of
     * convert, measure, dd), in the words of qemu-img's create; {@code prefix} is put before
     * the message ("FILE: " for create, "" elsewhere).
     */
    static void checkCreatable(String format, String prefix) {
        if (supported(format)) {
            return;
        }
        if (!QEMU.contains(format)) {
            throw new CliException(prefix + "Unknown file format '" + format + "'");
        }
        if (QEMU_CANNOT_CREATE.contains(format)) {
            throw new CliException(prefix + "Format driver '" + format + "' does not support image creation");
        }
        throw new CliException(prefix + notSupported(format))
                .withQemuWords(prefix + "Unknown file format '" + format + "'");
    }

    /**
     * Refuses a format an image cannot be opened in; {@code prefix} is "Could not open 'FILE': "
     * as qemu-img puts it.
     */
    static void checkOpenable(String format, String prefix) {
        if (format == null || supported(format)) {
            return;
        }
        if (!QEMU.contains(format)) {
            throw new CliException(prefix + "Unknown driver '" + format + "'");
        }
        throw new CliException(prefix + notSupported(format)).withQemuWords(prefix + "Unknown driver '" + format + "'");
    }
}
