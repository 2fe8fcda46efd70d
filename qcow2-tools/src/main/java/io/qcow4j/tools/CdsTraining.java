package io.qcow4j.tools;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * The build's training run for the class-data-sharing archive that makes {@code bin/qcow4j}
 * start fast: the qcow2-tools package phase runs this once under
 * {@code -XX:ArchiveClassesAtExit=target/qcow4j.jsa}, so the classes the common commands
 * load (info human and JSON, create, io, and the bulk commands check, compare and convert,
 * whose whole-process time is set beside qemu-img's) are stored parsed and verified in the
 * archive.
 * Not a user command; output goes wherever the build sends it.
 */
final class CdsTraining {
    private CdsTraining() {
    }

    /** {@code args[0]}, if given: a directory to put JNA's native library in (see below). */
    public static void main(String[] args) throws IOException {
        if (args.length > 0) {
            unpackJnaLibrary(Path.of(args[0]));
        }
        Path dir = Files.createTempDirectory("qcow4j-cds");
        try {
            String img = dir.resolve("train.qcow2").toString();
            String overlay = dir.resolve("overlay.qcow2").toString();
            run("create", "-q", "-f", "qcow2", img, "1M");
            run("io", "-c", "write -P 0x5a 0 64k", "-c", "read -P 0x5a 0 512", img);
            run("create", "-q", "-f", "qcow2", "-b", img, "-F", "qcow2", overlay);
            run("info", overlay);
            run("info", "--output=json", "--backing-chain", overlay);
            run("io", "-r", "-c", "read -P 0x5a 0 512", overlay);
            String raw = dir.resolve("train.raw").toString();
            String copy = dir.resolve("copy.qcow2").toString();
            run("convert", "-O", "raw", overlay, raw);
            run("convert", "-O", "qcow2", raw, copy);
            run("compare", img, raw);
            run("check", copy);
            run("check", "--output=json", copy);
        } finally {
            try (Stream<Path> files = Files.walk(dir)) {
                files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    /**
     * JNA's native part, unpacked once at build time: bin/qcow4j points JNA there
     * (jna.boot.library.path), where JNA would otherwise unpack it from the jar into a fresh
     * temporary file on every run (and seed a SecureRandom to name that file).
     */
    static void unpackJnaLibrary(Path dir) throws IOException {
        String name = System.mapLibraryName("jnidispatch");
        String resource = "/com/sun/jna/" + com.sun.jna.Platform.RESOURCE_PREFIX + "/" + name;
        try (var in = CdsTraining.class.getResourceAsStream(resource)) {
            if (in == null) {
                return; // no native part for this platform in the jar
            }
            Files.createDirectories(dir);
            Path tmp = Files.createTempFile(dir, name, ".tmp");
            Files.copy(in, tmp, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            Files.move(tmp, dir.resolve(name), java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                    java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        }
    }

    private static void run(String... args) {
        int code = Main.run(args);
        if (code != 0) {
            System.err.println("qcow4j CDS training: exit " + code + " from " + String.join(" ", args));
        }
    }
}
