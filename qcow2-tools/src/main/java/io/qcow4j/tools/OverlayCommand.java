package io.qcow4j.tools;

import io.qcow4j.bitmaps.Bitmaps;
import io.qcow4j.bitmaps.Chain;
import io.qcow4j.bitmaps.DirtyBitmap;
import io.qcow4j.bitmaps.Transaction;
import java.io.IOException;
import java.nio.file.Files;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code overlay [--bitmap NAME [-g SIZE]] [--disable-base-bitmaps] BASE TOP} (beyond
 * qemu-img): an external snapshot. TOP is created backed by BASE, and BASE is named as
 * {@code qemu-img create -b} names a backing file: relative to TOP's directory (or
 * absolute), recorded as given, with format qcow2. With --bitmap, the overlay and an
 * enabled persistent bitmap in it are made in one transaction, together with disabling
 * the base's enabled bitmaps when asked; on any failure TOP does not exist and BASE is
 * unchanged.
 */
@Command(name = "overlay", mixinStandardHelpOptions = true,
        description = "Create an overlay TOP over BASE (an external snapshot), optionally with a bitmap in it.")
final class OverlayCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--bitmap", paramLabel = "NAME", description = "an enabled persistent bitmap in the new overlay")
    String bitmap;

    @Option(names = "-g", paramLabel = "SIZE", description = "granularity of that bitmap")
    String granularity;

    @Option(names = "--disable-base-bitmaps", description = "disable the base's enabled bitmaps, in the same transaction")
    boolean disableBase;

    @Option(names = "-q", description = "quiet")
    boolean quiet;

    @Parameters(paramLabel = "BASE TOP", arity = "0..*")
    List<String> args = List.of();

    @Override
    public Integer call() throws IOException {
        if (args.size() != 2) {
            throw new CliException("Expecting base and overlay file names");
        }
        if (granularity != null && bitmap == null) {
            throw new CliException("granularity only supported with --bitmap");
        }
        long g = granularity();
        String backingName = args.get(0);
        String top = args.get(1);
        String base = Images.combine(top, backingName);
        if (Files.exists(Cwd.path(top))) {
            throw new CliException("Could not create '" + top + "': File exists");
        }
        Chain chain = Chains.open(base, null, disableBase, spec.commandLine().getErr(), null);
        ChainOps.run(chain, c -> {
            Transaction tx = c.transaction();
            if (disableBase) {
                for (DirtyBitmap b : c.bitmaps(0).list()) {
                    if (b.isEnabled() && b.isPersistent()) {
                        tx.disableBitmap(0, b.name());
                    }
                }
            }
            tx.externalSnapshot(Cwd.path(top), backingName);
            if (bitmap != null) {
                tx.addBitmap(0, bitmap, Bitmaps.AddOptions.defaults().withGranularity(g));
            }
            ChainOps.guard("Could not create '" + top + "': ", tx::commit);
        });
        return 0;
    }

    /** The -g granularity in bytes; 0 (the default) without -g. */
    private long granularity() {
        if (granularity == null) {
            return 0;
        }
        try {
            return Sizes.parse(granularity);
        } catch (Sizes.SizeException e) {
            throw new CliException("Invalid granularity specified");
        }
    }
}
