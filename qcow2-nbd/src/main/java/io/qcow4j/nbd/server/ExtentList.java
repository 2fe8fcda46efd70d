package io.qcow4j.nbd.server;

import java.util.Arrays;

/**
 * Block status descriptors of one context for one request: consecutive runs from the
 * request's offset, each with its flags, adjacent runs of equal flags merged (as qemu-nbd
 * merges them), at most {@code limit} runs.
 */
final class ExtentList {
    private long[] lengths = new long[16];
    private int[] flags = new int[16];
    private int size;
    private long total;
    private final int limit;

    ExtentList(int limit) {
        this.limit = limit;
    }

    /** Adds a run; false when the list is full and the caller should stop. */
    boolean add(long length, int flag) {
        if (length <= 0) {
            return size < limit;
        }
        if (size > 0 && flags[size - 1] == flag && lengths[size - 1] + length <= 0xffffffffL) {
            lengths[size - 1] += length;
            total += length;
            return true;
        }
        if (size == limit) {
            return false;
        }
        if (size == lengths.length) {
            lengths = Arrays.copyOf(lengths, size * 2);
            flags = Arrays.copyOf(flags, size * 2);
        }
        lengths[size] = length;
        flags[size] = flag;
        size++;
        total += length;
        return true;
    }

    /** Whether another run of {@code flag} could still be recorded. */
    boolean accepts(int flag) {
        return size < limit || flags[size - 1] == flag;
    }

    int size() {
        return size;
    }

    long total() {
        return total;
    }

    long length(int i) {
        return lengths[i];
    }

    int flags(int i) {
        return flags[i];
    }
}
