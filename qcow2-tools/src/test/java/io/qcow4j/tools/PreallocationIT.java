package io.qcow4j.tools;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code create -o help}, the option-list errors and preallocation (create -o
 * preallocation=falloc|full, resize --preallocation) against qemu-img, in drop-in mode on
 * twin directories: the same output and the same images, allocation included.
 */
class PreallocationIT {
    @TempDir
    Path tmp;

    @Test
    void createHelpAsQemuImg() {
        DropInTwins twins = new DropInTwins(tmp);
        for (String a : List.of("-o help", "-f qcow2 -o help", "-f raw -o help", "-f qcow2 -o ?",
                "-f qcow2 -o cluster_size=4k,help x.qcow2 1M", "-f qcow2 -o help,cluster_size=4k", "-f qcow2 -o help x.qcow2",
                "-o help x.raw", "-f raw -o help,size=1M x.raw", "-f qcow2 -o help -o cluster_size=4k x.qcow2 1M",
                "-f foo -o help", "-f qcow2 -o foo=1 x.qcow2 1M", "-f qcow2 -o cluster_size=abc x.qcow2 1M",
                "-f qcow2 -o , x.qcow2 1M", "-f qcow2 -o cluster_size=4k, x.qcow2 1M", "-f qcow2 -o =3 x.qcow2 1M",
                "-f qcow2 -o lazy_refcounts=maybe x.qcow2 1M", "-f qcow2 -o preallocation=foo x.qcow2 1M",
                "-f raw -o preallocation=metadata x.raw 1M", "x.raw 1M")) {
            twins.same(List.of(), Cli.prepend("create", a.split(" ")));
        }
    }

    @Test
    void createPreallocated() {
        DropInTwins twins = new DropInTwins(tmp);
        twins.compareAllocation = true;
        for (String a : List.of("-f qcow2 -o preallocation=falloc x.qcow2 1M", "-f qcow2 -o preallocation=full x.qcow2 1M",
                "-f qcow2 -o preallocation=full,cluster_size=4k,data_file=d.raw x.qcow2 1M",
                "-f qcow2 -o preallocation=falloc,data_file=d.raw,data_file_raw=on x.qcow2 1M",
                "-f raw -o preallocation=full x.raw 1M", "-f raw -o preallocation=falloc x.raw 1100K",
                "-f qcow2 -o preallocation=full,compat=0.10,cluster_size=16k x.qcow2 3M",
                "-f qcow2 -o preallocation=full,extended_l2=on x.qcow2 1M",
                "-f qcow2 -b b.qcow2 -F qcow2 -o preallocation=full x.qcow2")) {
            twins.same(List.of("create -q -f qcow2 b.qcow2 1M"), Cli.prepend("create", a.split(" ")));
        }
    }

    @Test
    void resizePreallocated() {
        DropInTwins twins = new DropInTwins(tmp);
        for (String mode : List.of("foo", "metadata", "falloc", "full", "off")) {
            // the data's allocation; metadata's holes may end a block apart from qemu-img's
            twins.compareAllocation = mode.equals("falloc") || mode.equals("full");
            for (String f : List.of("qcow2", "raw")) {
                twins.same(List.of("create -q -f " + f + " r." + f + " 1M"),
                        "resize", "--preallocation=" + mode, "-f", f, "r." + f, "3M");
            }
        }
        // over data that was there (a shrink's freed clusters come back zeroed), with a backing file
        List<String> used = List.of("create -q -f qcow2 -o cluster_size=4k b.qcow2 4M", "io b.qcow2 write -P 9 0 4M",
                "create -q -f qcow2 -o cluster_size=4k -b b.qcow2 -F qcow2 r.qcow2 2M", "io r.qcow2 write -P 5 1M 1M",
                "resize --shrink r.qcow2 1M");
        for (String mode : List.of("metadata", "full")) {
            twins.compareAllocation = mode.equals("full");
            twins.same(used, "resize", "--preallocation=" + mode, "r.qcow2", "3M");
        }
        assertEquals(1, twins.same(List.of("create -q -f qcow2 r.qcow2 3M"),
                "resize", "--shrink", "--preallocation=full", "r.qcow2", "1M").exitCode());
        assertEquals(1, twins.same(List.of("create -q -f qcow2 r.qcow2 3M"),
                "resize", "--preallocation=full", "r.qcow2", "1M").exitCode());
    }
}
