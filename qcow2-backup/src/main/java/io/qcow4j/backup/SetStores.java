package io.qcow4j.backup;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ServiceLoader;
import java.util.function.Function;

/**
 * A backup set named as the CLI takes it: {@code SCHEME://...} for a store a
 * {@link SetStore.Provider} on the class path serves (qcow2-backup-s3 serves {@code s3}),
 * anything else a local directory.
 */
public final class SetStores {
    private SetStores() {
    }

    /** Whether {@code location} names a store rather than a directory. */
    public static boolean isUri(String location) {
        int i = location.indexOf("://");
        return i > 0 && location.substring(0, i).matches("[a-zA-Z][a-zA-Z0-9+.-]*");
    }

    /** The store {@code location} names; a local directory is resolved with {@code paths}. */
    public static SetStore open(String location, Function<String, Path> paths) throws IOException {
        if (!isUri(location)) {
            return SetStore.directory(paths.apply(location));
        }
        String scheme = location.substring(0, location.indexOf("://"));
        for (SetStore.Provider p : ServiceLoader.load(SetStore.Provider.class, SetStores.class.getClassLoader())) {
            if (p.scheme().equalsIgnoreCase(scheme)) {
                return p.open(location);
            }
        }
        throw new BackupException("no store for '" + scheme + "://' backup sets"
                + (scheme.equals("s3") ? " (the qcow2-backup-s3 module is not on the class path)" : ""));
    }
}
