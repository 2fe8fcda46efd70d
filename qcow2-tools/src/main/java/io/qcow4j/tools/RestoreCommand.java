package io.qcow4j.tools;

import io.qcow4j.backup.BackupSet;
import io.qcow4j.nbd.client.NbdClient;
import io.qcow4j.nbd.protocol.Nbd;
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
 * file names one) into a new file TARGET, thin, at that point's virtual size, or into an NBD
 * export (TARGET an NBD URI, at least the point's size: data written, the rest zeroed where
 * it does not read zeros already). The set may be one qcow4j wrote or a directory of
 * virtnbdbackup stream files.
 */
@Command(name = "restore", mixinStandardHelpOptions = true,
        description = "Restore a point of a backup set into a new qcow2 or raw image, or into an NBD export.")
final class RestoreCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--until", paramLabel = "CHECKPOINT", description = "the point: a checkpoint or a backup file (default: the newest)")
    String until;

    @Option(names = "-O", paramLabel = "FMT", description = "qcow2 (default) or raw; not for an NBD target")
    String format;

    @Option(names = "-p", description = "show progress")
    boolean progress;

    @Parameters(index = "0", paramLabel = "DIR")
    String dir;

    @Parameters(index = "1", paramLabel = "TARGET")
    String target;

    @Override
    public Integer call() {
        String what = "Could not restore '" + dir + "' to '" + target + "'";
        if (NbdImages.isNbd(target)) {
            if (format != null) {
                throw new CommandLine.ParameterException(spec.commandLine(),
                        "-O does not apply to an NBD target (the export is written as a raw disk)");
            }
            BackupCli.run(what, spec.commandLine().getOut(), progress, p -> {
                try (NbdClient nbd = NbdImages.open(target, null, true, Nbd.CONTEXT_BASE_ALLOCATION)) {
                    BackupSet.restore(Cwd.path(dir), until, nbd, p);
                }
                return null;
            });
            return 0;
        }
        String fmt = format == null ? "qcow2" : format;
        if (!fmt.equals("qcow2") && !fmt.equals("raw")) {
            throw new CommandLine.ParameterException(spec.commandLine(), "Unknown target format '" + fmt + "' (qcow2 or raw)");
        }
        Path out = Cwd.path(target);
        BackupCli.run(what, spec.commandLine().getOut(), progress, p -> {
            BackupSet.restore(Cwd.path(dir), until, out, fmt.equals("raw"), p);
            return null;
        });
        return 0;
    }
}
