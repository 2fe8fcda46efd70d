package io.qcow4j.backup;

import java.util.Locale;

/** How a backup file is stored. */
public enum Format {
    /** A qcow2 image; an incremental's backing file is its parent. */
    QCOW2(".qcow2"),
    /** virtnbdbackup's sparse stream. */
    STREAM(".data");

    private final String extension;

    Format(String extension) {
        this.extension = extension;
    }

    public String extension() {
        return extension;
    }

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Why a qcow2 backup cannot be written to or read from {@code store}. */
    static String qcow2Refused(SetStore store) {
        return "qcow2 backups need random access to their backing files, which '" + store.name()
                + "' does not give: use the stream format there (--format stream)";
    }

    public static Format parse(String s) {
        for (Format f : values()) {
            if (f.label().equals(s)) {
                return f;
            }
        }
        throw new IllegalArgumentException("unknown format '" + s + "' (qcow2 or stream)");
    }
}
