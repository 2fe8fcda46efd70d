package io.qcow4j.backup;

import java.io.IOException;

/** A backup, restore or prune refused or failed for a reason the message states in full. */
public class BackupException extends IOException {
    private static final long serialVersionUID = 1L;

    public BackupException(String message) {
        super(message);
    }

    public BackupException(String message, Throwable cause) {
        super(message, cause);
    }
}
