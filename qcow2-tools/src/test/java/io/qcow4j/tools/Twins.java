package io.qcow4j.tools;

import static io.qcow4j.tools.Cli.qcow4j;
import static io.qcow4j.tools.Cli.qemuImg;
import static io.qcow4j.tools.Cli.qemuIo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qcow4j.testing.Qemu;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

/**
 * Twin directories, ours/ and theirs/, set up alike by qemu-img and qemu-io; a command runs
 * through qcow4j in ours and through qemu-img in theirs, and what both leave is compared:
 * data, allocation (qemu-img map), header fields, check results, bitmaps, messages.
 */
final class Twins {
    final Path ours;
    final Path theirs;

    private Twins(Path ours, Path theirs) {
        this.ours = ours;
        this.theirs = theirs;
    }

    static Twins in(Path parent, String name) {
        return new Twins(Cli.mkdir(parent, name + "-ours"), Cli.mkdir(parent, name + "-theirs"));
    }

    /** A qemu-img command in both directories. */
    Twins img(String... args) {
        qemuImg(ours, args).assertOk();
        qemuImg(theirs, args).assertOk();
        return this;
    }

    /** qemu-io on {@code image} in both directories, the commands given as -c arguments. */
    Twins io(String image, String... commands) {
        String[] args = Stream.concat(Stream.of("-f", "qcow2"),
                Stream.concat(Stream.of(commands).flatMap(c -> Stream.of("-c", c)), Stream.of(image))).toArray(String[]::new);
        qemuIo(ours, args).assertOk();
        qemuIo(theirs, args).assertOk();
        return this;
    }

    /** Makes ours a byte-identical copy of theirs (a random setup made once). */
    Twins copyTheirsToOurs() {
        try (Stream<Path> files = Files.list(theirs)) {
            for (Path f : files.filter(Files::isRegularFile).toList()) {
                Files.copy(f, ours.resolve(f.getFileName()), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return this;
    }

    /** Runs {@code args} through qcow4j in ours and qemu-img in theirs; asserts the same exit code, output and message. */
    Qemu.Result runBoth(String... args) {
        Qemu.Result mine = qcow4j(ours, args);
        Qemu.Result qemu = qemuImg(theirs, args);
        String what = String.join(" ", args) + "\n" + mine.describe() + "\n" + qemu.describe();
        assertEquals(qemu.exitCode(), mine.exitCode(), what);
        assertEquals(qemu.stdout(), mine.stdout(), what);
        if (qemu.exitCode() != 0) {
            Cli.assertOneLineError(mine, qemu.exitCode(), Cli.qemuMessage(qemu));
        } else {
            assertEquals("", mine.stderr(), what);
        }
        return mine;
    }

    /**
     * Same data, allocation, size and backing file in both, and both check clean with the
     * same report. The files are first rewritten without holes, which qemu-img map would
     * otherwise report as zeros (see qemu-quirks.md).
     */
    void assertSameImages(String... images) {
        for (Path dir : List.of(ours, theirs)) {
            try (Stream<Path> files = Files.list(dir)) {
                files.filter(Files::isRegularFile).forEach(MapIT::nonSparse);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        for (String img : images) {
            assertTrue(Qemu.compare(ours.resolve(img), theirs.resolve(img)), img + ": content differs");
            assertEquals(CommitIT.mapWithoutOffsets(theirs, img), CommitIT.mapWithoutOffsets(ours, img), img + ": allocation differs");
            JsonNode o = OverlayIT.info(ours, img);
            JsonNode t = OverlayIT.info(theirs, img);
            for (String f : List.of("virtual-size", "backing-filename", "backing-filename-format")) {
                assertEquals(t.path(f), o.path(f), img + " " + f);
            }
            assertEquals(checkReport(theirs, img), checkReport(ours, img), img + ": check");
        }
    }

    /** qemu-img check --output=json of a clean image, without what depends on the writer's layout. */
    private static JsonNode checkReport(Path dir, String img) {
        ObjectNode r = (ObjectNode) Cli.checkJson(dir, img);
        for (String f : List.of("image-end-offset", "allocated-clusters", "fragmented-clusters", "compressed-clusters")) {
            r.remove(f);
        }
        return r;
    }

    /** The same dirty ranges in {@code bitmap} of {@code image} in both (read by qcow4j map --bitmap). */
    void assertSameBitmap(String image, String bitmap) {
        assertEquals(dirty(theirs, image, bitmap), dirty(ours, image, bitmap), image + " bitmap " + bitmap);
    }

    static String dirty(Path dir, String image, String bitmap) {
        return qcow4j(dir, "map", "--output=json", "--bitmap", bitmap, image).assertOk().stdout();
    }

    /** The files' bytes in a directory, to show that a refused command changed nothing. */
    static List<byte[]> snapshot(Path dir, String... files) {
        return Stream.of(files).map(f -> {
            try {
                return Files.readAllBytes(dir.resolve(f));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }).toList();
    }
}
