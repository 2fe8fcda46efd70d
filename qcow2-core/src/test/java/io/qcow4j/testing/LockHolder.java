package io.qcow4j.testing;

import java.nio.file.Path;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.OpenOptions;

/**
 * Child process of the locking tests ({@link Holder#qcow4j}): opens an image with qcow4j
 * (rw, ro, or ro-U), prints "ready" (or one line "failed: why" and exits 1), and keeps it
 * open until its stdin ends.
 */
public final class LockHolder {
    private LockHolder() {
    }

    public static void main(String[] args) throws Exception {
        Path path = Path.of(args[0]);
        OpenOptions options = switch (args[1]) {
            case "rw" -> OpenOptions.readWrite();
            case "ro" -> OpenOptions.readOnly();
            case "ro-U" -> OpenOptions.readOnly().forceShare(true);
            default -> throw new IllegalArgumentException(args[1]);
        };
        Qcow2Image img;
        try {
            img = Qcow2Image.open(path, options);
        } catch (Exception e) {
            System.out.println("failed: " + String.valueOf(e.getMessage()).replace('\n', ' '));
            System.out.flush();
            System.exit(1);
            return;
        }
        try (img) {
            System.out.println("ready");
            System.out.flush();
            while (System.in.read() >= 0) {
                // hold the image until stdin ends
            }
        }
    }
}
