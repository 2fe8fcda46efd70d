package io.qcow4j.testing;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/**
 * The reference images in the repository's {@code testdata/} directory (made by
 * {@code testdata/make-images.sh}). Never write to them: {@link #copyToTemp} first.
 */
public final class TestData {
    private static final String MARKER = "make-images.sh";
    private static Path dir;

    private TestData() {
    }

    /** The testdata directory, found by walking up from {@code user.dir} (any module's directory). */
    public static synchronized Path dir() {
        if (dir == null) {
            Path start = Path.of(System.getProperty("user.dir")).toAbsolutePath();
            for (Path p = start; p != null; p = p.getParent()) {
                if (Files.isRegularFile(p.resolve("testdata").resolve(MARKER))) {
                    dir = p.resolve("testdata");
                    break;
                }
            }
            if (dir == null) {
                throw new IllegalStateException("no testdata/" + MARKER + " above " + start);
            }
        }
        return dir;
    }

    public static Path image(String name) {
        Path p = dir().resolve(name);
        if (!Files.isRegularFile(p)) {
            throw new IllegalArgumentException("no test image " + name + " in " + dir());
        }
        return p;
    }

    /** Names of all committed qcow2 images, sorted. */
    public static List<String> qcow2Images() {
        try (Stream<Path> s = Files.list(dir())) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".qcow2")).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Copies {@code name} into {@code tempDir}, with every file it references (its backing
     * chain and external data file) under the same relative names, so the copy opens alike.
     * Returns the copy of {@code name}.
     */
    public static Path copyToTemp(String name, Path tempDir) {
        try {
            for (String f : withReferencedFiles(name)) {
                Files.copy(image(f), tempDir.resolve(f), StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return tempDir.resolve(name);
    }

    /** {@code name} followed by the files it needs, as recorded in the images (relative names). */
    public static List<String> withReferencedFiles(String name) {
        Set<String> seen = new LinkedHashSet<>();
        List<String> todo = new ArrayList<>(List.of(name));
        while (!todo.isEmpty()) {
            String f = todo.remove(todo.size() - 1);
            if (!seen.add(f) || !f.endsWith(".qcow2")) {
                continue; // seen guards against backing loops; raw files reference nothing
            }
            JsonNode info = Qemu.infoJson(image(f));
            addReference(todo, f, info.path("backing-filename"));
            addReference(todo, f, info.path("format-specific").path("data").path("data-file"));
        }
        return List.copyOf(seen);
    }

    private static void addReference(List<String> todo, String from, JsonNode ref) {
        if (ref.isMissingNode() || ref.isNull()) {
            return;
        }
        String r = ref.asText();
        // copies are flat: only plain names beside the image can follow it into a temp dir
        if (r.isEmpty() || r.contains("/")) {
            throw new IllegalStateException(from + " references " + r + ", not a plain relative name");
        }
        todo.add(r);
    }
}
