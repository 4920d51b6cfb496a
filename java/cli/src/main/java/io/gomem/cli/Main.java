package io.gomem.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.ExitCode;
import picocli.CommandLine.IVersionProvider;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Properties;

/**
 * The {@code gomem} command: picocli's root, holding the subcommands. Exit codes: 0 ok, 1 a check
 * or run failed, 2 bad usage (every usage error is one line on stderr that names the option).
 */
@Command(name = "gomem", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "gomem, an off-heap memory manager built like Go's runtime heap: its demo, the allocator churn"
                + " figure, and plots and stats of JFR recordings of applications that use it.",
        subcommands = {DemoCommand.class, ChurnCommand.class, PlotCommand.class, StatsCommand.class,
                ChurnChild.class, CommandLine.HelpCommand.class},
        exitCodeListHeading = "%nExit codes:%n",
        exitCodeList = {"0:ok", "1:a check or run failed", "2:bad usage"})
public final class Main implements Runnable {
    @Spec
    CommandSpec spec;

    /** Whether stderr is a terminal, so that {@link Progress} may draw a bar with carriage returns. */
    final boolean stderrIsTerminal;

    Main(boolean stderrIsTerminal) {
        this.stderrIsTerminal = stderrIsTerminal;
    }

    @Override
    public void run() {
        throw new ParameterException(spec.commandLine(), "Missing subcommand: demo, churn, plot or stats");
    }

    public static void main(String[] args) {
        System.setProperty("java.awt.headless", "true");
        System.exit(commandLine(isTerminal(Path.of("/proc/self/fd/2"))).execute(args));
    }

    /** The command line with gomem's error handling: one line per usage error (exit 2) or failure (exit 1). */
    static CommandLine commandLine(boolean stderrIsTerminal) {
        CommandLine cl = new CommandLine(new Main(stderrIsTerminal));
        cl.setCaseInsensitiveEnumValuesAllowed(true);
        cl.setParameterExceptionHandler((e, args) -> {
            CommandLine where = e.getCommandLine();
            String name = where.getCommandSpec().qualifiedName();
            where.getErr().println(name + ": " + e.getMessage() + " (see '" + name + " --help')");
            return ExitCode.USAGE;
        });
        cl.setExecutionExceptionHandler((e, where, parsed) -> {
            where.getErr().println(where.getCommandSpec().qualifiedName() + ": failed: " + e);
            return ExitCode.SOFTWARE;
        });
        return cl;
    }

    /** True if the file descriptor link (e.g. /proc/self/fd/2) points at a terminal. */
    static boolean isTerminal(Path fd) {
        try {
            String target = Files.readSymbolicLink(fd).toString();
            return target.startsWith("/dev/pts/") || target.startsWith("/dev/tty");
        } catch (IOException | UnsupportedOperationException e) {
            return false;
        }
    }

    /** The root command of {@code spec}'s command line. */
    static Main root(CommandSpec spec) {
        return (Main) spec.root().userObject();
    }

    /** {@code --version}: this module's version (from the build) and the JVM's. */
    static final class Version implements IVersionProvider {
        @Override
        public String[] getVersion() {
            Properties p = new Properties();
            try (InputStream in = Main.class.getResourceAsStream("version.properties")) {
                if (in != null) {
                    p.load(in);
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return new String[]{
                "gomem " + p.getProperty("version", "(unknown version)"),
                "JVM " + Runtime.version() + " (" + System.getProperty("java.vendor") + "), "
                        + System.getProperty("os.name") + " " + System.getProperty("os.arch")};
        }
    }
}
