package io.qcow4j.core.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;

import io.qcow4j.core.format.SnapshotEntry;
import org.junit.jupiter.api.Test;

/** Snapshot ids as QEMU picks them (moved from InternalSnapshotsTest: it reads the engine's helpers). */
class InternalSnapshotIdsTest {

    @Test
    void idsFollowQemuRule() {
        assertEquals(0, InternalSnapshots.strtoul("abc"));
        assertEquals(12, InternalSnapshots.strtoul("  12abc"));
        assertEquals(-1L, InternalSnapshots.strtoul("99999999999999999999999"));
        assertEquals(-5L, InternalSnapshots.strtoul("-5"));
        List<SnapshotEntry> list = new ArrayList<>();
        for (String id : new String[] {"3", "x", "10"}) {
            SnapshotEntry e = new SnapshotEntry();
            e.id = id;
            list.add(e);
        }
        assertEquals("11", InternalSnapshots.newId(list));
        assertEquals("1", InternalSnapshots.newId(List.of()));
    }
}
