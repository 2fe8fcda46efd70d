package io.qcow4j.tools;

import io.qcow4j.backup.BackupSet;
import io.qcow4j.backup.SetStores;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code restore [--until CHECKPOINT] [-O qcow2|raw] [-p] DIR TARGET} (beyond qemu-img): the
 * disk at a point of the backup set in DIR (the newest by default; a checkpoint or a backup
 * file names one) into a new file TARGET, thin, at that point's virtual size. The set may be
 * one qcow4j wrote (a directory, or {@code s3://BUCKET/PREFIX}) or a directory of virtnbdbackup
 * stream files.
 */
@Command(name = "restore", mixinStandardHelpOptions = true,
        description = "Restore a point of a backup set into a new qcow2 or raw image.")
final class RestoreCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--until", paramLabel = "CHECKPOINT", description = "the point: a checkpoint or a backup file (default: the newest)")
    String until;

    @Option(names = "-O", paramLabel = "FMT", description = "qcow2 (default) or raw")
    String format = "qcow2";

    @Option(names = "-p", description = "show progress")
    boolean progress;

    @Parameters(index = "0", paramLabel = "DIR")
    String dir;

    @Parameters(index = "1", paramLabel = "TARGET")
    String target;

    @Override
    public Integer call() {
        if (!format.equals("qcow2") && !format.equals("raw")) {
            throw new CommandLine.ParameterException(spec.commandLine(), "Unknown target format '" + format + "' (qcow2 or raw)");
        }
        Path out = Cwd.path(target);
        BackupCli.run("Could not restore '" + dir + "' to '" + target + "'", spec.commandLine().getOut(), progress, p -> {
            BackupSet.restore(SetStores.open(dir, Cwd::path), until, out, format.equals("raw"), p);
            return null;
        });
        return 0;
    }
}
