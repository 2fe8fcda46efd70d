package io.qcow4j.core;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qcow4j.core.api.CompressionType;
import io.qcow4j.core.api.CreateOptions;
import io.qcow4j.testing.Qemu;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Images created by the library with each option pass qemu-img check, and qemu-img info
 * reports for them exactly what it reports for qemu-img's own image with the same options
 * (file names aside), down to the file's allocated size.
 */
class CreateOptionsTest {

    @ParameterizedTest
    @ValueSource(strings = {
            "",
            "cluster_size=512",
            "cluster_size=4096",
            "cluster_size=2M",
            "refcount_bits=1",
            "refcount_bits=8",
            "refcount_bits=32",
            "refcount_bits=64",
            "compat=0.10",
            "compat=1.1,lazy_refcounts=on",
            "extended_l2=on",
            "extended_l2=on,cluster_size=32k",
            "compression_type=zstd",
            "data_file=img.data",
            "data_file=img.data,data_file_raw=on",
            "backing",
            "backing,compat=0.10",
            "preallocation=metadata",
            "preallocation=metadata,cluster_size=4096,extended_l2=off",
    })
    void sameAsQemuImg(String spec, @TempDir Path tmp) throws IOException {
        long size = spec.contains("preallocation") ? 100L << 20 : (5L << 30) + 512 * 3;
        Path ours = Files.createDirectories(tmp.resolve("ours")).resolve("img.qcow2");
        Path theirs = Files.createDirectories(tmp.resolve("theirs")).resolve("img.qcow2");
        CreateOptions opts = CreateOptions.size(size);
        List<String> qemuOpts = new ArrayList<>();
        boolean backing = false;
        for (String kv : spec.split(",")) {
            if (kv.isEmpty()) {
                continue;
            }
            if (kv.equals("backing")) {
                backing = true;
                continue;
            }
            qemuOpts.add(kv);
            String[] p = kv.split("=");
            switch (p[0]) {
                case "cluster_size" -> opts.clusterSize(p[1].equals("2M") ? 2 << 20 : p[1].equals("32k") ? 32768 : Integer.parseInt(p[1]));
                case "refcount_bits" -> opts.refcountBits(Integer.parseInt(p[1]));
                case "compat" -> opts.compat(p[1]);
                case "lazy_refcounts" -> opts.lazyRefcounts(p[1].equals("on"));
                case "extended_l2" -> opts.extendedL2(p[1].equals("on"));
                case "compression_type" -> opts.compressionType(CompressionType.fromName(p[1]));
                case "data_file" -> opts.dataFile(p[1]);
                case "data_file_raw" -> opts.dataFileRaw(p[1].equals("on"));
                case "preallocation" -> opts.preallocation(CreateOptions.Preallocation.valueOf(p[1].toUpperCase()));
                default -> throw new IllegalArgumentException(kv);
            }
        }
        List<String> cmd = new ArrayList<>(List.of("qemu-img", "create", "-q", "-f", "qcow2"));
        if (!qemuOpts.isEmpty()) {
            cmd.add("-o");
            cmd.add(String.join(",", qemuOpts));
        }
        if (backing) {
            for (Path dir : List.of(ours.getParent(), theirs.getParent())) {
                Qemu.qemuImg("create", "-q", "-f", "qcow2", dir.resolve("base.qcow2").toString(), "1G").assertOk();
            }
            opts.backingFile("base.qcow2").backingFormat("qcow2");
            cmd.addAll(List.of("-b", "base.qcow2", "-F", "qcow2"));
        }
        cmd.add("img.qcow2");
        cmd.add(Long.toString(size));
        Qemu.besideImage(theirs, cmd.toArray(new String[0])).assertOk();
        Qcow2Image.create(ours, opts).close();

        Qemu.Result check = Qemu.besideImage(ours, "qemu-img", "check", "img.qcow2");
        assertEquals(0, check.exitCode(), spec + ": qemu-img check\n" + check.stdout() + check.stderr());
        assertEquals(info(theirs), info(ours), spec + ": qemu-img info --output=json");
        assertEquals(Files.size(theirs), Files.size(ours), spec + ": file length");
    }

    private static JsonNode info(Path img) {
        Qemu.Result r = Qemu.besideImage(img, "qemu-img", "info", "--output=json", "img.qcow2");
        r.assertOk();
        try {
            ObjectNode n = (ObjectNode) new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.stdout());
            n.remove("filename");
            n.remove("full-backing-filename");
            return n;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
