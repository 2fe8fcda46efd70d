package io.qcow4j.backup;

import java.io.IOException;
import java.util.List;

/**
 * Checkpoints a source keeps itself (persistent bitmaps of an image). A backup starts a new
 * checkpoint and freezes the recording ones in one step; if the backup does not complete the
 * new one is merged back into them, so no dirty bit is ever lost (QEMU's on-success rule).
 */
public interface Checkpointing {
    /** Every checkpoint, oldest first. */
    List<String> names() throws IOException;

    /** The checkpoints recording writes now: the ones {@link #start} freezes. */
    List<String> recording() throws IOException;

    /**
     * Why "changed since {@code name}" cannot be trusted, or null when it can: missing from the
     * top image, in_use, sized for another disk size, or a gap (one of {@code laterInSet},
     * the set's later checkpoints, missing; nothing recording after it).
     */
    String problem(String name, List<String> laterInSet) throws IOException;

    /** Freezes the recording checkpoints and starts {@code name}, in one step, durably. */
    void start(String name) throws IOException;

    /**
     * Undoes {@link #start}: {@code name}'s bits go into each of {@code frozen}, which record
     * again, and {@code name} is removed, durably. Without {@code name} in the source, nothing.
     */
    void mergeBack(String name, List<String> frozen) throws IOException;
}
