package io.qcow4j.tools;

import io.qcow4j.core.Qcow2Image;
import io.qcow4j.core.api.OpenOptions;
import io.qcow4j.core.check.CheckResult;
import io.qcow4j.core.check.ImageChecker;
import io.qcow4j.core.check.Repair;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code check [-f FMT] [--output=human|json] [-r leaks|all] [-q] [-U] [-p] FILE}, as qemu-img
 * check: the same report, the same repairs, the same exit codes (0 clean, 1 check not
 * completed, 2 corruptions, 3 leaks only, 63 a format without checks). The image opens
 * with its backing chain, as in qemu-img. {@code -p} (qcow4j's own: qemu-img check has
 * none) draws qemu-img's progress line on stdout before the report.
 */
@Command(name = "check", mixinStandardHelpOptions = true, description = "Check an image for errors; -r repairs them.")
final class CheckCommand implements Callable<Integer> {
    /** -p: the checker reports fractions; the bar counts in these steps. */
    private static final long PROGRESS_STEPS = 1_000_000;

    @Spec
    CommandSpec spec;

    @Option(names = "-f", paramLabel = "FMT")
    String format;

    @Option(names = "--output", paramLabel = "FMT")
    String output = "human";

    @Option(names = "-r", paramLabel = "leaks|all")
    String repair;

    @Option(names = "-q")
    boolean quiet;

    @Option(names = {"-U", "--force-share"}, description = "open even an image in use (take no locks; not with -r)")
    boolean forceShare;

    @Option(names = "-p", description = "show progress (qcow4j; qemu-img check has no -p)")
    boolean progress;

    @Parameters(paramLabel = "FILE", arity = "1")
    String file;

    @Override
    public Integer call() throws IOException {
        String[] fmt = {format};
        String given = file; // qemu-img's JSON report names the image as given (an option list too)
        byte[] secret;
        try {
            secret = ImageOpts.secret(file);
        } catch (CliException e) {
            throw new CliException("Could not open '" + file + "': " + e.getMessage(), e.exitCode(), e);
        }
        file = ImageOpts.resolve(file, fmt); // json:{...}, or an option list under --image-opts
        format = fmt[0];
        boolean json = InfoCommand.checkOutputFormat(output);
        Repair mode = null;
        if (repair != null) {
            mode = switch (repair) {
                case "leaks" -> Repair.LEAKS;
                case "all" -> Repair.ALL;
                default -> throw new CliException("Unknown option value for -r (expecting 'leaks' or 'all'): " + repair);
            };
        }
        Images.checkFormat(format, "Could not open '" + file + "': ");
        Path path = Cwd.path(file);
        if (format == null && Files.isRegularFile(path) && Images.probe(path).equals(Images.RAW)) {
            throw new CliException("This image format does not support checks", 63);
        }
        if (Images.RAW.equals(format)) {
            throw new CliException("This image format does not support checks", 63);
        }
        Qcow2Image image;
        try {
            if (!Files.exists(path)) {
                throw new java.nio.file.NoSuchFileException(file);
            }
            if (!Images.probe(path).equals(Images.QCOW2)) {
                throw new CliException("Could not open '" + file + "': Image is not in qcow2 format");
            }
            // with its backing chain, as qemu-img check: a missing or locked backing file fails it
            OpenOptions o = (mode == null ? OpenOptions.readOnly() : OpenOptions.readWrite()).checkMode(true)
                    .forceShare(forceShare).warnings(CliWarnings.sink()).encryptionSecret(secret);
            image = Qcow2Image.open(path, o);
        } catch (CliException e) {
            throw Images.namedByOptions(e, given, file);
        } catch (IOException | RuntimeException e) {
            throw Images.namedByOptions(new CliException("Could not open '" + file + "': " + Images.reason(e), 1, e), given, file);
        }
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        CheckResult result;
        Progress bar = new Progress(out, progress && !quiet, PROGRESS_STEPS);
        try (Qcow2Image img = image) {
            java.util.function.DoubleConsumer shown = f -> bar.update((long) (f * PROGRESS_STEPS));
            java.util.function.Consumer<CheckResult.Line> lines = line -> err.println(Cwd.asTyped(line.render("qcow4j")));
            result = mode == null
                    ? ImageChecker.check(img.engine(), lines, shown)
                    : ImageChecker.repair(img.engine(), mode, lines, shown);
        }
        bar.finish();
        if (result.completed() && !quiet) {
            if (json) {
                String doc = result.json(given);
                out.print(doc.endsWith("\n") ? doc : doc + "\n");
            } else {
                for (String line : result.humanLines()) {
                    out.println(line);
                }
            }
        }
        out.flush();
        return result.exitCode();
    }
}
