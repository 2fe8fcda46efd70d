package io.qcow4j.tools;

import io.qcow4j.bitmaps.Chain;
import io.qcow4j.bitmaps.Jobs;
import java.io.IOException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code stream [-f FMT] [-p] [-q] FILE} (beyond qemu-img; QMP's block-stream of the whole
 * chain): everything FILE reads from its backing chain is copied into FILE, then its
 * backing file is dropped. The guest's view does not change, so no bitmap is dirtied.
 * An image without a backing file is left as it is. Prints nothing but the progress.
 */
@Command(name = "stream", mixinStandardHelpOptions = true,
        description = "Copy the backing chain's data into an image and drop its backing file.")
final class StreamCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "-f", paramLabel = "FMT", description = "image format (qcow2)")
    String format;

    @Option(names = "-p", description = "show progress")
    boolean progress;

    @Option(names = "-q", description = "quiet")
    boolean quiet;

    @Parameters(paramLabel = "FILE", arity = "1")
    String file;

    @Override
    public Integer call() throws IOException {
        Chain chain = Chains.open(file, format, true, spec.commandLine().getErr(), null);
        ChainOps.run(chain, c -> {
            if (c.depth() > 1) {
                ChainOps.job(c, new Progress(spec.commandLine().getOut(), progress && !quiet, c.top().size()), "Stream failed: ",
                        Jobs::stream);
            }
        });
        return 0;
    }
}
