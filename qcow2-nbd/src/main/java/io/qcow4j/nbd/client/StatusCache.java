package io.qcow4j.nbd.client;

import java.util.List;
import java.util.Map;

/** Extents of the last BLOCK_STATUS reply, per context, contiguous from its start. */
final class StatusCache {
    private Map<String, List<NbdClient.Extent>> lists = Map.of();

    void clear() {
        lists = Map.of();
    }

    void fill(Map<String, List<NbdClient.Extent>> extents) {
        lists = extents;
    }

    List<NbdClient.Extent> get(String context) {
        return lists.getOrDefault(context, List.of());
    }

    NbdClient.Extent find(String context, long offset) {
        List<NbdClient.Extent> l = get(context);
        int i = indexOf(context, offset);
        return i < l.size() && l.get(i).offset() <= offset && offset < l.get(i).end() ? l.get(i) : null;
    }

    /** Index of the extent holding {@code offset} (or where it would be). */
    int indexOf(String context, long offset) {
        List<NbdClient.Extent> l = get(context);
        int lo = 0;
        int hi = l.size() - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            NbdClient.Extent e = l.get(mid);
            if (e.end() <= offset) {
                lo = mid + 1;
            } else if (e.offset() > offset) {
                hi = mid - 1;
            } else {
                return mid;
            }
        }
        return lo;
    }
}
