package io.qcow4j.tools.dump;

/** A structure of the file that cannot be shown: where it is and what is wrong with it. */
public final class DumpException extends Exception {
    private static final long serialVersionUID = 1L;

    public DumpException(String message) {
        super(message);
    }
}
