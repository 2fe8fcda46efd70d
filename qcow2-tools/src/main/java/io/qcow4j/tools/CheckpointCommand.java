package io.qcow4j.tools;

import io.qcow4j.bitmaps.Chain;
import io.qcow4j.bitmaps.Checkpoints;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code checkpoint create FILE NAME | list [--output=human|json] [-U] FILE | delete FILE NAME}
 * (beyond qemu-img): checkpoints as libvirt keeps them, one persistent bitmap each in the
 * images of FILE's chain, the newest enabled (see {@link Checkpoints}). create stops the
 * recording bitmap and starts NAME in FILE, atomically; delete folds NAME's bits into its
 * predecessor; list prints them oldest first: JSON {@code [{"name": ..., "enabled": ...}]},
 * or one line per checkpoint, {@code NAME: enabled|disabled (FILE-OF-ITS-LAYER)}.
 */
@Command(name = "checkpoint", mixinStandardHelpOptions = true,
        description = "Create, list or delete checkpoints (persistent bitmaps) in an image chain.",
        subcommands = {CheckpointCommand.Create.class, CheckpointCommand.ListCheckpoints.class,
            CheckpointCommand.Delete.class})
final class CheckpointCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        throw new CommandLine.ParameterException(spec.commandLine(), "Expecting a subcommand: create, list or delete");
    }

    PrintWriter err() {
        return spec.commandLine().getErr();
    }

    /** {@code checkpoint create FILE NAME}. */
    @Command(name = "create", mixinStandardHelpOptions = true, description = "Start checkpoint NAME in FILE.")
    static final class Create implements Callable<Integer> {
        @ParentCommand
        CheckpointCommand parent;

        @Parameters(index = "0", paramLabel = "FILE")
        String file;

        @Parameters(index = "1", paramLabel = "NAME")
        String name;

        @Override
        public Integer call() throws IOException {
            String what = "Could not create checkpoint '" + name + "': ";
            if (name.isEmpty()) {
                throw new CliException(what + "the name is empty");
            }
            Chain chain = Chains.open(file, null, true, parent.err(), null);
            ChainOps.run(chain, c -> {
                if (c.checkpoints().list().stream().anyMatch(cp -> cp.name().equals(name))) {
                    throw new CliException(what + "a checkpoint of that name exists in the chain");
                }
                ChainOps.guard(what, () -> c.checkpoints().create(name));
            });
            return 0;
        }
    }

    /** {@code checkpoint list [--output=human|json] [-U] FILE}. */
    @Command(name = "list", mixinStandardHelpOptions = true, description = "List the checkpoints, oldest first.")
    static final class ListCheckpoints implements Callable<Integer> {
        @ParentCommand
        CheckpointCommand parent;

        @Spec
        CommandSpec spec;

        @Option(names = "--output", paramLabel = "FMT", description = "human (default) or json")
        String output = "human";

        @Option(names = {"-U", "--force-share"}, description = "open even an image in use (take no locks)")
        boolean forceShare;

        @Parameters(paramLabel = "FILE", arity = "1")
        String file;

        @Override
        public Integer call() throws IOException {
            boolean json = InfoCommand.checkOutputFormat(output);
            Chain chain = Chains.open(file, null, false, forceShare, parent.err(), null);
            List<Checkpoints.Checkpoint> all;
            List<String> names;
            try {
                all = chain.checkpoints().list();
                names = Chains.names(file, chain);
            } finally {
                Chains.closeQuietly(chain);
            }
            PrintWriter out = spec.commandLine().getOut();
            if (json) {
                List<Object> doc = new ArrayList<>();
                for (Checkpoints.Checkpoint c : all) {
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("name", c.name());
                    m.put("enabled", c.enabled());
                    doc.add(m);
                }
                out.println(QemuJson.pretty(doc));
            } else {
                for (Checkpoints.Checkpoint c : all) {
                    out.println(c.name() + ": " + (c.enabled() ? "enabled" : "disabled") + " (" + names.get(c.depth()) + ")");
                }
            }
            return 0;
        }
    }

    /** {@code checkpoint delete FILE NAME}. */
    @Command(name = "delete", mixinStandardHelpOptions = true,
            description = "Delete checkpoint NAME, keeping what it recorded in its predecessor.")
    static final class Delete implements Callable<Integer> {
        @ParentCommand
        CheckpointCommand parent;

        @Parameters(index = "0", paramLabel = "FILE")
        String file;

        @Parameters(index = "1", paramLabel = "NAME")
        String name;

        @Override
        public Integer call() throws IOException {
            String what = "Could not delete checkpoint '" + name + "': ";
            Chain chain = Chains.open(file, null, true, parent.err(), null);
            ChainOps.run(chain, c -> {
                if (c.checkpoints().list().stream().noneMatch(cp -> cp.name().equals(name))) {
                    throw new CliException(what + "no such checkpoint in the chain of '" + file + "'");
                }
                ChainOps.guard(what, () -> c.checkpoints().delete(name));
            });
            return 0;
        }
    }
}
