package io.qcow4j.tools;

import io.qcow4j.backup.BackupSet;
import io.qcow4j.backup.SetStores;
import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code prune --keep N [-p] DIR} (beyond qemu-img): keeps the newest N points of the backup
 * set in DIR; older backups are folded into a new full at the oldest kept point, so every kept
 * point stays restorable. Prints each file removed.
 */
@Command(name = "prune", mixinStandardHelpOptions = true, description = "Keep the newest N points of a backup set.")
final class PruneCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--keep", paramLabel = "N", required = true, description = "points to keep (at least 1)")
    int keep;

    @Option(names = "-p", description = "show progress")
    boolean progress;

    @Parameters(paramLabel = "DIR", arity = "1")
    String dir;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        List<String> removed = BackupCli.run("Could not prune '" + dir + "'", out, progress,
                p -> BackupSet.prune(SetStores.open(dir, Cwd::path), keep, p));
        for (String f : removed) {
            out.println("removed " + f);
        }
        return 0;
    }
}
