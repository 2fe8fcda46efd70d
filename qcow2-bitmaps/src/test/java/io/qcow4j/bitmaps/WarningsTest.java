package io.qcow4j.bitmaps;

import static io.qcow4j.bitmaps.ChainScenariosTest.checkClean;
import static io.qcow4j.bitmaps.ChainScenariosTest.write;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The library's warnings where a gotcha would lose bitmaps, delivered to the listener
 * (OpenOptions.warnings for an image, Chain.onWarning for a chain), and only then.
 */
class WarningsTest {
    @TempDir
    Path tmp;

    private Path image(String name, String... bitmapArgs) {
        Path p = tmp.resolve(name);
        Qemu.create(p, "4M");
        for (String b : bitmapArgs) {
            List<String> args = new ArrayList<>(List.of("bitmap", "--add"));
            if (b.startsWith("-")) {
                args.add("--disable");
                b = b.substring(1);
            }
            args.add(p.toString());
            args.add(b);
            Qemu.qemuImg(args.toArray(String[]::new)).assertOk();
        }
        return p;
    }

    private Path overlay(Path base, String name) {
        Path top = tmp.resolve(name);
        Qemu.besideImage(top, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base.getFileName().toString(),
                "-F", "qcow2", name).assertOk();
        return top;
    }

    @Test
    void closingAnImageWithTransientBitmapsWarnsThroughOpenOptions() throws IOException {
        Path img = image("t.qcow2", "keep");
        List<String> warnings = new ArrayList<>();
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite().warnings(warnings::add))) {
            Bitmaps.of(image).add("scratch", Bitmaps.AddOptions.defaults().transientBitmap());
            Bitmaps.of(image).add("scratch2", Bitmaps.AddOptions.defaults().transientBitmap().disabledBitmap());
            write(image, 0, 4096, 1);
            assertTrue(warnings.isEmpty(), "nothing is lost before the close: " + warnings);
        }
        assertEquals(List.of("closing '" + img + "' drops transient bitmap 'scratch'",
                "closing '" + img + "' drops transient bitmap 'scratch2'"), warnings);
        assertEquals(List.of("keep"), ChainScenariosTest.names(img), "only the persistent bitmap was stored");
        // persistent bitmaps only: no warning; a read-only image holding a transient one warns too
        warnings.clear();
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readWrite().warnings(warnings::add))) {
            write(image, 65536, 4096, 1);
        }
        assertEquals(List.of(), warnings);
        try (Qcow2Image image = Qcow2Image.open(img, OpenOptions.readOnly().warnings(warnings::add))) {
            Bitmaps.of(image).add("ro-scratch", Bitmaps.AddOptions.defaults().transientBitmap());
        }
        assertEquals(List.of("closing '" + img + "' drops transient bitmap 'ro-scratch'"), warnings);
        checkClean(img);
    }

    @Test
    void aChainWarnsForEveryLayerAndReopenMovesTransientBitmapsWithoutLoss() throws IOException {
        Path base = image("base.qcow2");
        Path top = overlay(base, "top.qcow2");
        List<String> warnings = new ArrayList<>();
        try (Chain chain = Chain.open(top, true, warnings::add)) {
            chain.bitmaps(0).add("t0", Bitmaps.AddOptions.defaults().transientBitmap());
            chain.bitmaps(1).add("t1", Bitmaps.AddOptions.defaults().transientBitmap());
            chain.bitmaps(1).get("t1").set(65536, 512);
            // a reopen keeps the layer's transient bitmap (as QEMU keeps it in memory): no warning, same bits
            chain.reopen(1, true);
            chain.bitmaps(1).add("t1b", Bitmaps.AddOptions.defaults().transientBitmap().disabledBitmap());
            chain.reopen(1, false);
            assertTrue(warnings.isEmpty(), warnings.toString());
            assertEquals(List.of(new DirtyBitmap.Extent(65536, 65536, true)), chain.bitmaps(1).get("t1").dirtyExtents());
            assertTrue(chain.bitmaps(1).get("t1").isEnabled());
            assertFalse(chain.bitmaps(1).get("t1b").isEnabled());
            assertFalse(chain.bitmaps(1).get("t1").isPersistent());
        }
        assertEquals(List.of("closing '" + base + "' drops transient bitmap 't1'",
                "closing '" + base + "' drops transient bitmap 't1b'",
                "closing '" + top + "' drops transient bitmap 't0'"), warnings);
        // onWarning redirects the sink after the open, for the engine's warnings too
        List<String> later = new ArrayList<>();
        try (Chain chain = Chain.open(top, true)) {
            chain.onWarning(later::add);
            chain.bitmaps(1).add("t2", Bitmaps.AddOptions.defaults().transientBitmap());
        }
        assertEquals(List.of("closing '" + base + "' drops transient bitmap 't2'"), later);
        checkClean(base, top);
    }

    @Test
    void aReopenKeepsWhatWasDisabledWhileReadOnly() throws IOException {
        Path base = image("base.qcow2", "rec");
        Path top = overlay(base, "top.qcow2");
        try (Chain chain = Chain.open(top, true, w -> { })) {
            chain.bitmaps(1).disable("rec"); // allowed on a read-only layer, in memory
            chain.reopen(1, true);
            assertFalse(chain.bitmaps(1).get("rec").isEnabled(), "the reopen forgot the disable");
            chain.reopen(1, false);
        }
        assertEquals("[]", Qemu.infoJson(base).path("format-specific").path("data").path("bitmaps").get(0).path("flags").toString());
        checkClean(base, top);
    }

    @Test
    void anOverlayOverRecordingBitmapsWithoutOneOfItsOwnWarns() throws IOException {
        Path base = image("base.qcow2", "rec", "-off");
        List<String> warnings = new ArrayList<>();
        try (Chain chain = Chain.open(base, true, warnings::add)) {
            chain.transaction().externalSnapshot(tmp.resolve("o1.qcow2"), "base.qcow2").commit();
        }
        assertEquals(1, warnings.size(), warnings.toString());
        assertTrue(warnings.get(0).contains("o1.qcow2") && warnings.get(0).contains("base.qcow2"), warnings.get(0));
        // by default, as in QEMU, the bitmaps are untouched and the overlay has none; backing name and format recorded
        assertEquals(List.of("rec [auto]", "off []"), Oracle.flags(base));
        assertEquals(List.of(), Oracle.names(tmp.resolve("o1.qcow2")));
        com.fasterxml.jackson.databind.JsonNode info = Qemu.infoJson(tmp.resolve("o1.qcow2"));
        assertEquals("base.qcow2", info.path("backing-filename").asText());
        assertEquals("qcow2", info.path("backing-filename-format").asText());
        assertTrue(Qemu.compare(base, tmp.resolve("o1.qcow2")));
        warnings.clear();
        // the recipe: a bitmap in the overlay, or the base's recording ones disabled, in the same transaction
        try (Chain chain = Chain.open(base, true, warnings::add)) {
            chain.transaction().externalSnapshot(tmp.resolve("o2.qcow2"), "base.qcow2")
                    .addBitmap(0, "next", Bitmaps.AddOptions.defaults()).commit();
        }
        try (Chain chain = Chain.open(base, true, warnings::add)) {
            chain.transaction().disableBitmap(0, "rec").externalSnapshot(tmp.resolve("o3.qcow2"), "base.qcow2").commit();
        }
        // only disabled bitmaps below: nothing stops recording
        try (Chain chain = Chain.open(base, true, warnings::add)) {
            chain.transaction().externalSnapshot(tmp.resolve("o4.qcow2"), "base.qcow2").commit();
        }
        assertEquals(List.of(), warnings);
        checkClean(base, tmp.resolve("o1.qcow2"), tmp.resolve("o2.qcow2"), tmp.resolve("o3.qcow2"), tmp.resolve("o4.qcow2"));
    }

    @Test
    void aCommitThatNoBitmapRecordsWarns() throws IOException {
        // the base's bitmaps all disabled (the recipe disabled them at snapshot time): the commit goes unrecorded
        Path base = image("b1.qcow2", "-old");
        Path top = overlay(base, "t1.qcow2");
        Qemu.io(top, "write 0 64k").assertOk();
        List<String> warnings = new ArrayList<>();
        try (Chain chain = Chain.open(top, true, warnings::add)) {
            chain.jobs().commit(Jobs.CommitOptions.defaults());
        }
        assertEquals(List.of("commit into '" + base + "': no enabled bitmap there records what it writes"), warnings);
        warnings.clear();
        // only the top has bitmaps: warned, unless --merge-bitmaps carries an enabled one down
        Path base2 = image("b2.qcow2");
        Path top2 = overlay(base2, "t2.qcow2");
        Qemu.qemuImg("bitmap", "--add", top2.toString(), "t").assertOk();
        Qemu.io(top2, "write 0 64k").assertOk();
        try (Chain chain = Chain.open(top2, true, warnings::add)) {
            chain.jobs().commit(new Jobs.CommitOptions(1, false, false));
        }
        assertEquals(1, warnings.size(), warnings.toString());
        warnings.clear();
        try (Chain chain = Chain.open(top2, true, warnings::add)) {
            chain.jobs().commit(new Jobs.CommitOptions(1, false, true));
        }
        // a recording bitmap in the base, or no bitmap anywhere: nothing to warn about
        Path base3 = image("b3.qcow2", "rec");
        Path top3 = overlay(base3, "t3.qcow2");
        Path base4 = image("b4.qcow2");
        Path top4 = overlay(base4, "t4.qcow2");
        for (Path t : List.of(top3, top4)) {
            Qemu.io(t, "write 0 64k").assertOk();
            try (Chain chain = Chain.open(t, true, warnings::add)) {
                chain.jobs().commit(Jobs.CommitOptions.defaults());
            }
        }
        assertEquals(List.of(), warnings);
        checkClean(base, top, base2, top2, base3, top3, base4, top4);
    }
}
