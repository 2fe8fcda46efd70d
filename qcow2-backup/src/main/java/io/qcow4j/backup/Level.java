package io.qcow4j.backup;

import java.util.Locale;

/** Backup levels, as libvirt and virtnbdbackup name them. */
public enum Level {
    /** The whole disk; starts a new chain and a checkpoint. */
    FULL,
    /** What changed since the set's latest checkpoint; a new checkpoint. */
    INC,
    /** What changed since the chain's full; no new checkpoint. */
    DIFF,
    /** The whole disk, no checkpoint. */
    COPY,
    /** FULL into a set without one, else INC (FULL when the checkpoint cannot be trusted). */
    AUTO;

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static Level parse(String s) {
        for (Level l : values()) {
            if (l.label().equals(s)) {
                return l;
            }
        }
        throw new IllegalArgumentException("unknown level '" + s + "' (full, inc, diff, copy or auto)");
    }
}
