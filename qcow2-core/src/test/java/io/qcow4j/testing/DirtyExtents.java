package io.qcow4j.testing;

import java.util.ArrayList;
import java.util.List;

/** Dirty extents [start, length, dirty] as nbdinfo --map=qemu:dirty-bitmap:NAME prints them, merged. */
public final class DirtyExtents {
    private DirtyExtents() {
    }

    /** Parses nbdinfo's map lines ("start length type description"). */
    public static List<List<Long>> parseNbdinfo(String map) {
        List<List<Long>> out = new ArrayList<>();
        for (String line : map.split("\n")) {
            String[] f = line.trim().split("\\s+");
            if (f.length < 3 || f[0].isEmpty()) {
                continue;
            }
            add(out, Long.parseLong(f[0]), Long.parseLong(f[1]), Long.parseLong(f[2]) != 0);
        }
        return out;
    }

    /** Appends a run, merging it with the previous one when both are dirty or both clean. */
    public static void add(List<List<Long>> out, long start, long length, boolean dirty) {
        if (length == 0) {
            return;
        }
        if (!out.isEmpty()) {
            List<Long> last = out.get(out.size() - 1);
            if ((last.get(2) != 0) == dirty && last.get(0) + last.get(1) == start) {
                out.set(out.size() - 1, List.of(last.get(0), last.get(1) + length, last.get(2)));
                return;
            }
        }
        out.add(List.of(start, length, dirty ? 1L : 0L));
    }

    /** Extents of a byte-granular dirty oracle over a disk of {@code size} bytes at {@code granularity}. */
    public static List<List<Long>> ofOracle(boolean[] dirtyBits, long granularity, long size) {
        List<List<Long>> out = new ArrayList<>();
        for (int i = 0; i < dirtyBits.length; i++) {
            long start = i * granularity;
            add(out, start, Math.min(granularity, size - start), dirtyBits[i]);
        }
        return out;
    }
}
