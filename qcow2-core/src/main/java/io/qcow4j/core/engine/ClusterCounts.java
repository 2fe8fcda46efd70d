package io.qcow4j.core.engine;

import java.util.BitSet;
import java.util.HashMap;
import java.util.Map;

/**
 * Expected refcounts by cluster index: a bit per cluster for the common count of one,
 * a map only for shared clusters, so memory follows the image, not its worst case.
 */
public final class ClusterCounts {
    private final BitSet once = new BitSet();
    private final Map<Long, Long> more = new HashMap<>();
    private long maxCluster = -1;

    public void add(long cluster) {
        if (cluster > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("cluster index too large: " + cluster);
        }
        maxCluster = Math.max(maxCluster, cluster);
        Long m = more.get(cluster);
        if (m != null) {
            more.put(cluster, m + 1);
        } else if (once.get((int) cluster)) {
            more.put(cluster, 2L);
        } else {
            once.set((int) cluster);
        }
    }

    /** Sets the count of {@code cluster} (the rebuild allocates and frees in this array). */
    public void set(long cluster, long value) {
        if (cluster < 0 || cluster > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("cluster index out of range: " + cluster);
        }
        more.remove(cluster);
        once.set((int) cluster, value == 1);
        if (value > 1) {
            more.put(cluster, value);
        }
        if (value > 0) {
            maxCluster = Math.max(maxCluster, cluster);
        }
    }

    /** Forgets every count. */
    public void clear() {
        once.clear();
        more.clear();
        maxCluster = -1;
    }

    public long get(long cluster) {
        if (cluster < 0 || cluster > Integer.MAX_VALUE) {
            return 0;
        }
        Long m = more.get(cluster);
        if (m != null) {
            return m;
        }
        return once.get((int) cluster) ? 1 : 0;
    }

    public boolean used(long cluster) {
        return get(cluster) > 0;
    }

    /** Highest cluster index counted, or -1. */
    public long maxCluster() {
        return maxCluster;
    }
}
