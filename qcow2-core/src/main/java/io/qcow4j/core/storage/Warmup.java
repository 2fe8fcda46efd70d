package io.qcow4j.core.storage;

/**
 * Initialises, on a background thread, the native and mapping machinery a short command
 * is about to need, while its main thread parses the command line and creates files. A
 * JVM initialises classes on first use, one after the other: JNA (the C library, for
 * QEMU's OFD image locks; it starts java.util.logging) takes ~25 ms and Chronicle Bytes
 * (for an image opened read-write) ~50 ms before the first byte is copied. On a machine
 * with a second core that time is spent beside the main thread instead of before it; the
 * main thread, reaching a class first, waits for its initialisation to end (the JVM's
 * class initialisation lock), so nothing is done twice or half.
 *
 * <p>Best effort: any failure here is dropped, and the class concerned fails again, with
 * its real error, where the command uses it. Chronicle is only touched where
 * {@link MappingSupport} says this JVM grants it its flags (else its initialisers would
 * fail and leave its classes unusable for the fallback's warning).
 */
public final class Warmup {
    /** Classes whose static initialisers Chronicle runs when the first image is mapped. */
    private static final String[] CHRONICLE = {
        "io.qcow4j.core.storage.MappedStorage",
        "net.openhft.chronicle.core.OS",
        "net.openhft.chronicle.core.Jvm",
        "net.openhft.chronicle.bytes.MappedFile",
        "net.openhft.chronicle.bytes.MappedBytes",
        "net.openhft.chronicle.bytes.MappedBytesStore",
        "net.openhft.chronicle.bytes.internal.NativeBytesStore",
        "net.openhft.chronicle.core.io.IOTools",
    };

    private Warmup() {
    }

    /**
     * Starts the background initialisation: the C library always, Chronicle Bytes when
     * {@code readWrite} (the command will open an image read-write).
     */
    public static void start(boolean readWrite) {
        if (readWrite) {
            // the longer of the two first: both run while the main thread waits for the C library
            begin(Warmup::chronicle, "qcow4j-warmup-mapping");
        }
        begin(Warmup::libc, "qcow4j-warmup-libc");
    }

    private static void begin(Runnable work, String name) {
        Thread t = new Thread(work, name);
        t.setDaemon(true); // never holds the JVM's exit
        t.start();
    }

    private static void libc() {
        try {
            Libc.function("fcntl");
        } catch (Throwable e) {
            // said where the lock is taken
        }
    }

    private static void chronicle() {
        ClassLoader loader = Warmup.class.getClassLoader();
        if (MappingSupport.whyUnavailable() != null) {
            return;
        }
        for (String name : CHRONICLE) {
            try {
                Class.forName(name, true, loader);
            } catch (Throwable e) {
                return; // said where the image is opened (MappingSupport falls back)
            }
        }
    }
}
