package io.qcow4j.jmh;

/** Sums the bytes written by each timed store. */
final class WriteCounter {
    private final String name;
    private long before;
    private long count;
    private long sum;
    private long min = Long.MAX_VALUE;
    private long max;

    WriteCounter(String name) {
        this.name = name;
    }

    void start() {
        before = BitmapImages.threadWchar();
    }

    void stop() {
        long after = BitmapImages.threadWchar();
        if (before < 0 || after < 0) {
            return;
        }
        long d = after - before;
        count++;
        sum += d;
        min = Math.min(min, d);
        max = Math.max(max, d);
    }

    void print() {
        if (count == 0) {
            System.out.println("# " + name + ": no write counts (no /proc/thread-self/io)");
            return;
        }
        System.out.printf("# %s: %d stores, bytes written per store (pwrite): min %.3f MiB, mean %.3f MiB, max %.3f MiB%n",
                name, count, min / 1048576.0, sum / (double) count / 1048576.0, max / 1048576.0);
    }
}
