package io.qcow4j.core.api;

import java.io.IOException;

/**
 * An amend refused before anything was written, in QEMU's words (its first line; a second
 * line, QEMU's hint, follows after a newline where QEMU gives one).
 */
public final class AmendException extends IOException {
    private static final long serialVersionUID = 1L;
    /** How far QEMU would have got before this refusal (see ImageAmender's progress replay). */
    private int stage;
    /** For a refusal during the refcount walk: the old table entry QEMU's walk would fail at. */
    private long tableIndex;

    public AmendException(String message) {
        super(message);
    }

    /** The engine's bookkeeping for its progress replay; not for callers. */
    public int stage() {
        return stage;
    }

    public void stage(int value) {
        this.stage = value;
    }

    public long tableIndex() {
        return tableIndex;
    }

    public void tableIndex(long value) {
        this.tableIndex = value;
    }
}
