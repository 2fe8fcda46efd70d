package io.qcow4j.core.storage;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A seam for reliability tests: when a wrapper is installed, every image file and external
 * data file opened read-write passes through it, so a test can record each write and flush
 * (power-loss replay) or make one fail (fault injection) under any operation, whichever
 * module opens the image. Nothing is installed in normal use; the cost is one volatile read
 * per open.
 */
public final class StorageHook {
    /** Wraps the storage of {@code file}; returns {@code storage} itself to leave it alone. */
    @FunctionalInterface
    public interface Wrapper {
        Storage wrap(Path file, Storage storage) throws IOException;
    }

    private static volatile Wrapper wrapper;

    private StorageHook() {
    }

    /** Installs {@code w} for every read-write open from now on (null: none). Tests only. */
    public static void install(Wrapper w) {
        wrapper = w;
    }

    /** {@code storage}, or what the installed wrapper makes of it (closing it on failure). */
    public static Storage apply(Path file, Storage storage) throws IOException {
        Wrapper w = wrapper;
        if (w == null || storage.isReadOnly()) {
            return storage;
        }
        try {
            return w.wrap(file, storage);
        } catch (IOException | RuntimeException e) {
            storage.close();
            throw e;
        }
    }
}
