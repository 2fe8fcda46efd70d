package io.qcow4j.backup;

import java.util.Objects;

/** What to back up and how: level, checkpoint or bitmap, format, progress. */
public final class BackupOptions {
    Level level = Level.AUTO;
    String checkpoint;
    String bitmap;
    Format format;
    boolean compress;
    Progress progress = Progress.none();

    public static BackupOptions defaults() {
        return new BackupOptions();
    }

    public BackupOptions level(Level l) {
        this.level = Objects.requireNonNull(l);
        return this;
    }

    /** Name of the new checkpoint (default: {@code qcow4j.N}, the first N free). */
    public BackupOptions checkpoint(String name) {
        this.checkpoint = name;
        return this;
    }

    /**
     * Read the changes from this bitmap (someone else's: an NBD export's dirty-bitmap context,
     * or an image bitmap this set does not manage) instead of the set's checkpoints.
     */
    public BackupOptions bitmap(String name) {
        this.bitmap = name;
        return this;
    }

    /** qcow2 or stream (default: the chain's, or qcow2 for a new chain). */
    public BackupOptions format(Format f) {
        this.format = f;
        return this;
    }

    /** LZ4-compressed stream. */
    public BackupOptions compress(boolean on) {
        this.compress = on;
        return this;
    }

    public BackupOptions progress(Progress p) {
        this.progress = Objects.requireNonNull(p);
        return this;
    }
}
