package io.qcow4j.testing;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code qemu-img check} of an image a crash left, read line by line: leaks are allowed,
 * any other error is a corruption. One exception, with {@code copiedWindows}: an internal
 * snapshot being created or deleted has instants (in QEMU too) where a COPIED flag
 * disagrees with a refcount without any risk to data, and qemu-img reports them as errors:
 * a flag clear on a cluster of refcount 1 (the next write copies the cluster instead of
 * writing in place), or a flag set on a cluster whose refcount is above 1 only because
 * it leaks (a single reference). Those are counted apart and allowed; a flag set on a
 * cluster that really has several references, where a write in place would change a
 * snapshot, is still a corruption.
 */
public record CheckVerdict(int exitCode, int leaks, int copiedWindows, List<String> corruptions, String output) {
    private static final long COPIED = 1L << 63;
    private static final long OFFSET_MASK = 0x00fffffffffffe00L;
    private static final Pattern DATA_COPIED = Pattern.compile("ERROR OFLAG_COPIED data cluster: l2_entry=([0-9a-f]+) refcount=(\\d+)");
    private static final Pattern L2_COPIED = Pattern.compile("ERROR OFLAG_COPIED L2 cluster: l1_index=\\d+ l1_entry=([0-9a-f]+) refcount=(\\d+)");
    private static final Pattern LEAK = Pattern.compile("Leaked cluster (\\d+) refcount=(\\d+) reference=(\\d+)");

    public boolean clean() {
        return corruptions.isEmpty();
    }

    /** Runs {@code qemu-img check} on {@code img} (cluster size {@code clusterSize}). */
    public static CheckVerdict of(Path img, int clusterSize, boolean copiedWindows) {
        Qemu.Result r = Qemu.check(img);
        String out = r.stdout() + r.stderr();
        Map<Long, Long> leakedReferences = new HashMap<>();
        int leaks = 0;
        for (String line : out.split("\n")) {
            Matcher m = LEAK.matcher(line);
            if (m.find()) {
                leaks++;
                leakedReferences.put(Long.parseLong(m.group(1)), Long.parseLong(m.group(3)));
            }
        }
        List<String> corruptions = new ArrayList<>();
        int windows = 0;
        for (String line : out.split("\n")) {
            if (!line.startsWith("ERROR") && !line.contains("Warning")) {
                continue;
            }
            Matcher d = DATA_COPIED.matcher(line);
            Matcher l = L2_COPIED.matcher(line);
            Matcher m = d.find() ? d : l.find() ? l : null;
            if (copiedWindows && m != null) {
                long entry = Long.parseUnsignedLong(m.group(1), 16);
                long refcount = Long.parseLong(m.group(2));
                long cluster = (entry & OFFSET_MASK) / clusterSize;
                boolean set = (entry & COPIED) != 0;
                if ((!set && refcount == 1) || (set && refcount > 1 && Long.valueOf(1).equals(leakedReferences.get(cluster)))) {
                    windows++;
                    continue;
                }
            }
            corruptions.add(line);
        }
        if (r.exitCode() != 0 && r.exitCode() != 3 && r.exitCode() != 2) {
            corruptions.add("qemu-img check exited " + r.exitCode());
        }
        if (r.exitCode() == 2 && corruptions.isEmpty() && windows == 0) {
            corruptions.add("qemu-img check exited 2 without an error line");
        }
        return new CheckVerdict(r.exitCode(), leaks, windows, corruptions, out);
    }
}
