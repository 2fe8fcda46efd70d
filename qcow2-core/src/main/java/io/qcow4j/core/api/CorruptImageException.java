package io.qcow4j.core.api;

import java.io.IOException;

/** A structure read from an image violates the format: names the structure and its file offset. */
public class CorruptImageException extends IOException {
    private static final long serialVersionUID = 1L;
    private final String structure;
    private final long fileOffset;

    public CorruptImageException(String structure, long fileOffset, String message) {
        super(structure + " at offset 0x" + Long.toHexString(fileOffset) + ": " + message);
        this.structure = structure;
        this.fileOffset = fileOffset;
    }

    public String structure() {
        return structure;
    }

    public long fileOffset() {
        return fileOffset;
    }
}
