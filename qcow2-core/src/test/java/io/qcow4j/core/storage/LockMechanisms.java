package io.qcow4j.core.storage;

/** Lets tests in other packages run {@link ImageLock} with a given mechanism. */
public final class LockMechanisms {
    private LockMechanisms() {
    }

    /** "ofd" or "posix"; null restores the default. */
    public static void use(String name) {
        ImageLock.useMechanism(name);
    }
}
