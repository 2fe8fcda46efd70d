package io.qcow4j.backup.s3;

import java.lang.management.ManagementFactory;
import java.nio.file.Path;

import io.qcow4j.backup.BackupOptions;
import io.qcow4j.backup.BackupResult;
import io.qcow4j.backup.Progress;
import io.qcow4j.backup.SetStores;

/**
 * A child JVM that backs IMAGE up into the S3 set LOCATION (auto level, the SDK configured by
 * AWS_* variables or a profile). It first prints the region and addressing its client got
 * ("CLIENT ..."). With {@code half} it prints "HALF" once {@code 28 MiB} are read and
 * sleeps, for its parent to SIGKILL it mid-upload; with {@code full} it finishes and prints
 * "DONE" and "LIVE-HEAP <bytes>", the most heap in use after any garbage collection (what the
 * backup holds, without the garbage a collector has not yet reclaimed).
 */
public final class S3BackupChild {
    private S3BackupChild() {
    }

    private static final java.util.concurrent.atomic.AtomicLong LIVE = new java.util.concurrent.atomic.AtomicLong();

    public static void main(String[] args) throws Exception {
        java.util.Set<String> heap = new java.util.HashSet<>();
        for (var pool : ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() == java.lang.management.MemoryType.HEAP) {
                heap.add(pool.getName());
            }
        }
        for (var gc : ManagementFactory.getGarbageCollectorMXBeans()) {
            ((javax.management.NotificationEmitter) gc).addNotificationListener((n, h) -> {
                if (n.getType().equals(com.sun.management.GarbageCollectionNotificationInfo.GARBAGE_COLLECTION_NOTIFICATION)) {
                    var info = com.sun.management.GarbageCollectionNotificationInfo.from(
                            (javax.management.openmbean.CompositeData) n.getUserData());
                    long used = 0;
                    for (var u : info.getGcInfo().getMemoryUsageAfterGc().entrySet()) {
                        if (heap.contains(u.getKey())) {
                            used += u.getValue().getUsed();
                        }
                    }
                    LIVE.accumulateAndGet(used, Math::max);
                }
            }, null, null);
        }
        try (var client = S3Clients.fromEnvironment()) {
            // what the standard chain gave: the parent checks it against what it configured
            System.out.println("CLIENT " + client.serviceClientConfiguration().region() + " path-style="
                    + S3Clients.pathStyle(S3Clients.endpoint()));
        }
        Path img = Path.of(args[0]);
        boolean half = args[2].equals("half");
        Progress p = new Progress((done, total) -> {
            if (half && done >= 28L << 20 && done < total) {
                System.out.println("HALF");
                System.out.flush();
                try {
                    Thread.sleep(60_000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        });
        BackupResult r = S3Sets.backup(img, SetStores.open(args[1], Path::of), BackupOptions.defaults().progress(p));
        System.out.println("DONE " + r.level().label() + " " + r.bytesWritten());
        System.out.println("LIVE-HEAP " + LIVE.get());
    }
}
