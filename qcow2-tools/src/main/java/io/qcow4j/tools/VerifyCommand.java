package io.qcow4j.tools;

import io.qcow4j.backup.BackupSet;
import io.qcow4j.backup.SetStores;
import io.qcow4j.backup.VerifyReport;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code verify [--output=json] DIR} (beyond qemu-img): every file, checksum and link of the
 * backup set in DIR, without its source. One line per file ({@code FILE: ok}, or {@code FILE:
 * damaged at offset N: why}); exit codes as check's: 0 good, 2 damaged.
 */
@Command(name = "verify", mixinStandardHelpOptions = true, description = "Check every file and checksum of a backup set.")
final class VerifyCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--output", paramLabel = "FMT", description = "human (default) or json")
    String output = "human";

    @Parameters(paramLabel = "DIR", arity = "1")
    String dir;

    @Override
    public Integer call() {
        boolean json = InfoCommand.checkOutputFormat(output);
        VerifyReport r = BackupCli.run("Could not verify '" + dir + "'", spec.commandLine().getErr(), false,
                p -> BackupSet.verify(SetStores.open(dir, Cwd::path), p));
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            Map<String, Object> doc = new LinkedHashMap<>();
            doc.put("good", r.good());
            List<Object> files = new ArrayList<>();
            for (VerifyReport.FileReport f : r.files()) {
                Map<String, Object> e = new LinkedHashMap<>();
                e.put("file", f.file());
                e.put("status", f.status());
                if (!f.ok()) {
                    e.put("offset", f.offset());
                    e.put("reason", f.reason());
                }
                files.add(e);
            }
            doc.put("files", files);
            if (r.note() != null) {
                doc.put("note", r.note());
            }
            out.println(QemuJson.pretty(doc));
        } else {
            for (VerifyReport.FileReport f : r.files()) {
                if (f.ok()) {
                    out.println(f.file() + ": ok");
                } else {
                    out.println(f.file() + ": " + f.status() + (f.offset() >= 0 ? " at offset " + f.offset() : "") + ": " + f.reason());
                }
            }
            if (r.note() != null) {
                out.println("Note: " + r.note());
            }
            out.println(r.good() ? "The backup set is good." : "The backup set is damaged.");
        }
        return r.good() ? 0 : 2;
    }
}
