package io.qcow4j.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Path;

import io.qcow4j.core.api.AmendOptions;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.engine.ImageAmender;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * An amend of an image that was written since it was opened (its bitmaps in use, not yet
 * stored): the amend stores them before its steps. It once stored them in the close of the
 * reopen after a refcount width change, through the refcount structures the change had just
 * replaced: qemu-img check found the new bitmap clusters at refcount 0 (found by the amend
 * power-loss scenario, {@code AmendScenario}).
 */
class AmendAfterWritesTest {
    @ParameterizedTest
    @ValueSource(strings = {"refcount_bits=64", "refcount_bits=1", "compat=0.10", "lazy_refcounts=on"})
    void anAmendAfterGuestWritesLeavesACleanImage(String option, @TempDir Path tmp) throws Exception {
        Path img = tmp.resolve("a.qcow2");
        try (Qcow2Image i = Qcow2Image.create(img, CreateOptions.size(4L << 20).clusterSize(4096))) {
            i.bitmaps().add("on", 65536, true, true);
        }
        Qcow2Image i = Qcow2Image.open(img, OpenOptions.readWrite());
        i.write(1 << 20, ByteBuffer.wrap(new byte[12288]).put(0, (byte) 7));
        i.write(3 << 20, ByteBuffer.wrap(new byte[4096]).put(5, (byte) 9));
        i.flush();
        String[] kv = option.split("=");
        AmendOptions o = switch (kv[0]) {
            case "refcount_bits" -> AmendOptions.none().refcountBits(Integer.parseInt(kv[1]));
            case "compat" -> AmendOptions.none().compat(kv[1]);
            default -> AmendOptions.none().lazyRefcounts(true);
        };
        ImageAmender.amend(i.engine(), o, null); // closes it
        Qemu.Result r = Qemu.check(img);
        assertEquals(0, r.exitCode(), r.describe());
        Qemu.io(img, "read -P 7 1M 1", "read -P 0 1049089 12287", "read -P 9 3145733 1").assertOk();
        if (!option.startsWith("compat")) {
            String info = Qemu.qemuImg("info", img.toString()).stdout();
            assertTrue(info.contains("name: on") && !info.contains("in-use"), info);
        }
    }

    /**
     * Every write or flush of a refcount width change failing in turn: the amend throws, and
     * leaves the image closed and unlocked (a failure after its reopen once left the reopened
     * image open, and locked, found by the amend scenario's fault injection) and consistent.
     */
    @org.junit.jupiter.api.Test
    void aFailedAmendLeavesTheImageClosedAndConsistent(@TempDir Path tmp) throws Exception {
        Path pristine = tmp.resolve("p.qcow2");
        try (Qcow2Image i = Qcow2Image.create(pristine, CreateOptions.size(4L << 20).clusterSize(4096))) {
            i.write(1 << 20, ByteBuffer.wrap(new byte[12288]).put(0, (byte) 7));
        }
        int events;
        Path img = tmp.resolve("a.qcow2");
        java.nio.file.Files.copy(pristine, img);
        try (io.qcow4j.testing.FaultyStorage.Plan p = io.qcow4j.testing.FaultyStorage.Plan.install(-1,
                io.qcow4j.testing.FaultyStorage.Fault.EIO, 0)) {
            ImageAmender.amend(Qcow2Image.open(img, OpenOptions.readWrite()).engine(), AmendOptions.none().refcountBits(64), null);
            events = p.events();
        }
        assertTrue(events > 5, "events " + events);
        for (int n = 0; n < events; n++) {
            java.nio.file.Files.copy(pristine, img, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
            try (io.qcow4j.testing.FaultyStorage.Plan p = io.qcow4j.testing.FaultyStorage.Plan.install(n,
                    io.qcow4j.testing.FaultyStorage.Fault.EIO, 0)) {
                Qcow2Image opened = Qcow2Image.open(img, OpenOptions.readWrite());
                org.junit.jupiter.api.Assertions.assertThrows(java.io.IOException.class,
                        () -> ImageAmender.amend(opened.engine(), AmendOptions.none().refcountBits(64), null), "event " + n);
            }
            try (Qcow2Image again = Qcow2Image.open(img, OpenOptions.readWrite())) {
                assertTrue(again.size() > 0);
            }
            Qemu.Result r = Qemu.check(img);
            assertTrue(r.exitCode() == 0 || r.exitCode() == 3, "event " + n + ": " + r.describe());
            Qemu.io(img, "read -P 7 1M 1").assertOk();
        }
    }
}
