package io.qcow4j.core.alloc;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.LongPredicate;

/**
 * Where {@link RefcountManager} allocates: the first run of free host clusters from a hint,
 * skipping clusters an allocation in progress holds (chosen, not yet refcounted), clusters a
 * repair excludes, and refusing clusters whose refcount says free but that hold live
 * metadata. Kept apart from the refcount updates: this part only reads counts.
 */
final class FreeClusterSearch {
    private final RefcountTable table;
    /** Clusters chosen by an allocation in progress, not yet refcounted: [start, end) pairs. */
    private final List<long[]> pending = new ArrayList<>();
    /** Clusters the allocator must not hand out whatever their refcount says (repair). */
    private LongPredicate excluded = c -> false;
    private boolean exclusionActive;
    /** Names the metadata the engine knows at a host cluster, or null; see {@link #setGuard}. */
    private RefcountManager.MetadataMap guard = offset -> null;
    /** No free cluster below this one (a hint: the search starts here). */
    private long hint = 1;
    private long firstFreeSeen;

    FreeClusterSearch(RefcountTable table) {
        this.table = table;
    }

    /** See {@link RefcountManager#setExcluded}. */
    void setExcluded(LongPredicate inUse) {
        this.excluded = inUse == null ? c -> false : inUse;
        this.exclusionActive = inUse != null;
    }

    /** See {@link RefcountManager#guardAllocations}. */
    void setGuard(RefcountManager.MetadataMap metadata) {
        this.guard = metadata;
    }

    /** Starts the next search from the beginning (the table was replaced). */
    void resetHint() {
        hint = 1;
    }

    /** {@code cluster}'s refcount dropped to 0. */
    void freed(long cluster) {
        hint = Math.min(hint, cluster);
    }

    /**
     * {@code [start, start + n)} was allocated by a search that saw {@code firstFree} first:
     * clusters below the first free one stay used, so the next search starts there.
     */
    void allocated(long start, long n, long firstFree) {
        hint = firstFree == start ? start + n : firstFree;
    }

    /** Holds {@code [start, end)} against other searches until {@link #release}. */
    long[] hold(long start, long end) {
        long[] range = {start, end};
        pending.add(range);
        return range;
    }

    void release(long[] range) {
        pending.remove(range);
    }

    /** The end of the clusters held by allocations in progress (0 for none). */
    long pendingEnd() {
        long end = 0;
        for (long[] r : pending) {
            end = Math.max(end, r[1]);
        }
        return end;
    }

    /**
     * Whether {@code cluster} may take a compressed cluster's tail: refcount 0, not held,
     * not excluded, no metadata there.
     */
    boolean isFree(long cluster) throws IOException {
        return table.stored(cluster) == 0 && !isPending(cluster) && !excluded.test(cluster)
                && guard.at(cluster << table.clusterBits()) == null;
    }

    /** The first free cluster the last {@link #find} saw (at most the run it returned). */
    long firstFreeSeen() {
        return firstFreeSeen;
    }

    /** First run of {@code n} free clusters at or after the hint; notes the first free cluster seen. */
    long find(int n) throws IOException {
        firstFreeSeen = -1;
        long found = scan(n);
        if (firstFreeSeen < 0 || firstFreeSeen > found) {
            firstFreeSeen = found;
        }
        return found;
    }

    /**
     * Refuses clusters whose refcount says free but that hold live metadata (a corrupt
     * refcount), before anything is written, like QEMU's overlap check.
     */
    void checkUnused(long start, long n) throws IOException {
        for (long c = start; c < start + n; c++) {
            String what = guard.at(c << table.clusterBits());
            if (what != null) {
                throw table.corrupt(c, "cluster 0x" + Long.toHexString(c << table.clusterBits())
                        + " has refcount 0 but holds " + what);
            }
        }
    }

    private long scan(int n) throws IOException {
        long entriesPerBlock = table.entriesPerBlock();
        long coverageEnd = table.coverageEnd();
        long c = Math.max(1, hint);
        long runStart = c;
        long run = 0;
        while (run < n) {
            if (c >= coverageEnd && !isPending(c) && c >= pendingEnd() && !excluded.test(c)) {
                // nothing past the table's coverage is allocated
                return runStart + run == c ? runStart : c;
            }
            long block = c < coverageEnd ? table.blockFor(c) : 0;
            if (block == 0 && c < coverageEnd && !isPendingIn(c, entriesPerBlock) && !exclusionActive) {
                // a missing refcount block: its whole range is free
                if (firstFreeSeen < 0) {
                    firstFreeSeen = c;
                }
                long blockEnd = (c / entriesPerBlock + 1) * entriesPerBlock;
                run += blockEnd - c;
                c = blockEnd;
                continue;
            }
            if (!isPending(c) && !excluded.test(c) && table.stored(c) == 0) {
                if (firstFreeSeen < 0) {
                    firstFreeSeen = c;
                }
                run++;
            } else {
                run = 0;
                runStart = c + 1;
            }
            c++;
        }
        return runStart;
    }

    private boolean isPending(long cluster) {
        for (long[] r : pending) {
            if (cluster >= r[0] && cluster < r[1]) {
                return true;
            }
        }
        return false;
    }

    private boolean isPendingIn(long c, long blockSize) {
        long blockStart = c - c % blockSize;
        for (long[] r : pending) {
            if (r[0] < blockStart + blockSize && r[1] > blockStart) {
                return true;
            }
        }
        return false;
    }
}
