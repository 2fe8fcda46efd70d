package io.qcow4j.core.storage;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;

/**
 * Chooses the storage of an image opened read-write: {@link MappedStorage} (metadata
 * through Chronicle Bytes' mapping) when this JVM grants Chronicle the JDK internals it
 * reaches into, else {@link ChannelMappedStorage}, the same engine on the JDK's own
 * {@code FileChannel.map} (README, "Embedding the library").
 *
 * <p>The choice is made from the module graph alone ({@link Module#isOpen},
 * {@link Module#isExported}), before any of Chronicle's classes is initialised: without the
 * flags their static initialisers fail, and a class whose initialiser failed stays unusable
 * for the rest of the JVM. A library embedded in an application server cannot ask for JVM
 * flags, so their absence is a warning (once per JVM, through the image's warnings
 * listener), never an error.
 */
public final class MappingSupport {
    /**
     * {@code -Dqcow4j.mapping=jdk}: the JDK's mapping even where Chronicle's works;
     * {@code =off}: no mapping, positional I/O only (benchmarks, tests).
     */
    public static final String PROPERTY = "qcow4j.mapping";

    /** What Chronicle Bytes needs opened (deep reflection) or exported, as JVM flags name them. */
    private static final String[] OPENS = {
        "java.base/java.lang", "java.base/java.lang.reflect", "java.base/java.io", "java.base/java.util",
        "java.base/java.nio", "java.base/sun.nio.ch",
    };
    private static final String[] EXPORTS = {
        "java.base/jdk.internal.ref", "java.base/sun.nio.ch", "jdk.unsupported/sun.misc",
    };
    /** A class of Chronicle's, loaded (never initialised) only to learn which module it is in. */
    private static final String CHRONICLE_CLASS = "net.openhft.chronicle.core.OS";

    private static final AtomicBoolean WARNED = new AtomicBoolean();
    private static volatile String unavailable;
    private static volatile boolean decided;

    private MappingSupport() {
    }

    /**
     * {@code path} opened read-write: mapped by Chronicle when this JVM allows it, else by
     * the JDK, and then (the first time in this JVM) one line to {@code warnings} saying so.
     */
    public static Storage openReadWrite(Path path, Consumer<String> warnings) throws IOException {
        String why = whyUnavailable();
        if (why == null) {
            try {
                return new MappedStorage(path, false);
            } catch (LinkageError e) {
                // the flags are there but Chronicle still cannot start (a JDK it does not
                // know): the class is unusable from now on, so stop trying
                why = "Chronicle Bytes could not start (" + e + ")";
                unavailable = why;
            }
        }
        boolean positional = "off".equals(System.getProperty(PROPERTY));
        FileStorage storage = positional ? new FileStorage(path, false) : new ChannelMappedStorage(path);
        if (WARNED.compareAndSet(false, true)) {
            warnings.accept(why + ": image metadata goes through "
                    + (positional ? "positional I/O" : "the JDK's FileChannel.map instead of Chronicle Bytes")
                    + " (see \"Embedding the library\" in qcow4j's README)");
        }
        return storage;
    }

    /** Null when Chronicle maps read-write images in this JVM, else why not (the missing flags). */
    public static String whyUnavailable() {
        if (!decided) {
            unavailable = decide();
            decided = true;
        }
        return unavailable;
    }

    private static String decide() {
        String mode = System.getProperty(PROPERTY);
        if (mode != null && !mode.equals("chronicle")) {
            return "Chronicle Bytes not used (-D" + PROPERTY + "=" + mode + ")";
        }
        Module chronicle;
        try {
            chronicle = Class.forName(CHRONICLE_CLASS, false, MappingSupport.class.getClassLoader()).getModule();
        } catch (ClassNotFoundException | LinkageError e) {
            return "Chronicle Bytes is not on the class path";
        }
        List<String> missing = new ArrayList<>();
        for (String p : EXPORTS) {
            if (!granted(p, chronicle, false)) {
                missing.add("--add-exports=" + p + "=" + name(chronicle));
            }
        }
        for (String p : OPENS) {
            if (!granted(p, chronicle, true)) {
                missing.add("--add-opens=" + p + "=" + name(chronicle));
            }
        }
        return missing.isEmpty() ? null : "JVM flags missing for Chronicle Bytes: " + String.join(" ", missing);
    }

    private static boolean granted(String modulePackage, Module to, boolean open) {
        int slash = modulePackage.indexOf('/');
        Optional<Module> module = ModuleLayer.boot().findModule(modulePackage.substring(0, slash));
        if (module.isEmpty()) {
            return false;
        }
        String pkg = modulePackage.substring(slash + 1);
        return open ? module.get().isOpen(pkg, to) : module.get().isExported(pkg, to);
    }

    private static String name(Module m) {
        return m.isNamed() ? m.getName() : "ALL-UNNAMED";
    }
}
