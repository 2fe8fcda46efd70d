package io.qcow4j.core.crypto;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HashMap;
import java.util.Map;

import io.qcow4j.testing.Qemu;

/**
 * LUKS images made by qemu-img, once per JVM and kind: qemu-img create times PBKDF2 for
 * about 2 s whatever encrypt.iter-time says, so the tests copy one template instead.
 */
final class QemuLuksImages {
    private static final Map<String, Path> TEMPLATES = new HashMap<>();
    private static Path dir;

    private QemuLuksImages() {
    }

    /** A copy at {@code target} of an empty image of {@code size} made with {@code more} -o options. */
    static synchronized Path copy(Path target, String size, String more) {
        Path t = TEMPLATES.computeIfAbsent(size + more, k -> create(size, more));
        try {
            return Files.copy(t, target, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static Path create(String size, String more) {
        try {
            if (dir == null) {
                dir = Files.createTempDirectory("qemu-luks");
                Path d = dir;
                Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                    try (var s = Files.list(d)) {
                        for (Path p : s.toList()) {
                            Files.deleteIfExists(p);
                        }
                        Files.deleteIfExists(d);
                    } catch (IOException ignored) {
                        // a temp dir left behind
                    }
                }));
            }
            Path img = dir.resolve("t" + TEMPLATES.size() + ".qcow2");
            for (int attempt = 1; ; attempt++) {
                Qemu.Result r = Qemu.qemuImg("create", "-q", "-f", "qcow2", "--object", "secret,id=sec0,data=" + LuksImageTest.SECRET,
                        "-o", "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=20" + more, img.toString(), size);
                // qemu times PBKDF2 by CPU time first and gives up on a busy machine: try again
                if (attempt == 5 || !r.stderr().contains("Unable to get accurate CPU usage")) {
                    r.assertOk();
                    return img;
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
