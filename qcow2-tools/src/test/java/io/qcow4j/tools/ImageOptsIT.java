package io.qcow4j.tools;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --image-opts} and {@code json:{...}} file names for the qcow2, raw and file
 * drivers, against qemu-img in drop-in mode on twin directories: the same output and
 * messages (unknown drivers and options refused in its words), the same images after.
 */
class ImageOptsIT {
    @TempDir
    Path tmp;

    private static final List<String> SETUP = List.of("create -q -f qcow2 -o cluster_size=4k a.qcow2 1M",
            "io a.qcow2 write -P 1 0 64k", "create -q -f qcow2 -b a.qcow2 -F qcow2 o.qcow2", "io o.qcow2 write -P 2 4k 4k");

    @Test
    void imageOptsOnEveryCommand() {
        DropInTwins twins = new DropInTwins(tmp);
        String a = "driver=qcow2,file.filename=a.qcow2";
        String o = "driver=qcow2,file.driver=file,file.filename=o.qcow2";
        for (String c : List.of("info --image-opts " + a, "info --image-opts driver=raw,file.filename=a.qcow2",
                "info --image-opts file.filename=o.qcow2", "info --image-opts a.qcow2",
                "info --image-opts driver=foo,file.filename=a.qcow2", "info --image-opts driver=qcow2,file=a.qcow2",
                "info --image-opts driver=qcow2,file.filename=nope.qcow2", "info --image-opts " + a + ",foo=1",
                "info --image-opts " + a + ",lazy-refcounts=on,l2-cache-size=1M,file.locking=off",
                "info --image-opts " + a + ",file.foo=1", "info --image-opts driver=file,filename=a.qcow2,foo=1",
                "info --image-opts driver=qcow2", "info --image-opts driver=qcow2,file.driver=file",
                "info --image-opts driver=file,filename=a.qcow2", "info --output=json --image-opts driver=file,filename=a.qcow2",
                "check --image-opts " + o, "map --image-opts " + o, "compare --image-opts " + a + " " + o,
                "convert --image-opts -O raw " + o + " out.raw", "snapshot -l --image-opts " + a,
                "measure --image-opts -O qcow2 " + o, "resize --image-opts " + a + " 2M",
                "commit --image-opts " + o, "rebase -u -b a.qcow2 -F qcow2 --image-opts " + o,
                "amend --image-opts -o compat=0.10 " + a, "bitmap --image-opts --add " + a + " b1",
                "snapshot -c s --image-opts " + a + ",force-share=on",
                "convert --target-image-opts a.qcow2 " + o, "convert -n --target-image-opts -O qcow2 a.qcow2 " + o,
                "convert -n --target-image-opts a.qcow2 " + o,
                "convert -n --target-image-opts a.qcow2 driver=qcow2,file.filename=nope.qcow2",
                "convert -n --target-image-opts a.qcow2 driver=qcow2,file.filename=o.qcow2,foo=1")) {
            twins.same(SETUP, c.split(" "));
        }
    }

    @Test
    void jsonFileNames() {
        DropInTwins twins = new DropInTwins(tmp);
        for (String j : List.of("json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\",\"filename\":\"o.qcow2\"}}",
                "json:{\"driver\":\"raw\",\"file.filename\":\"a.qcow2\"}", "json:{\"filename\":\"a.qcow2\"}", "json:[]",
                "json:{\"driver\":\"qcow2\",\"file\":\"a.qcow2\"}", "json:{\"driver\":\"file\",\"filename\":\"a.qcow2\"}",
                "json:{\"driver\":\"qcow2\",\"file\":{\"filename\":\"a.qcow2\"},\"lazy-refcounts\":true}")) {
            twins.same(SETUP, "info", j);
            twins.same(SETUP, "map", j);
            twins.same(SETUP, "convert", "-O", "qcow2", j, "out.qcow2");
        }
        twins.same(SETUP, "check", "json:{\"driver\":\"qcow2\",\"file\":{\"filename\":\"o.qcow2\"}}");
        twins.same(SETUP, "check", "json:{\"driver\":\"qcow2\",\"file\":{\"filename\":\"nope.qcow2\"}}");
        twins.same(SETUP, "check", "--image-opts", "driver=qcow2,file.filename=nope.qcow2");
        twins.same(SETUP, "compare", "json:{\"driver\":\"qcow2\",\"file\":{\"filename\":\"o.qcow2\"}}", "o.qcow2");
    }
}
