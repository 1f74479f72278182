package io.dedisk.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** Main.commandLine: a command line naming a subcommand models that one alone, and parses and helps as the full one does. */
class CommandLineTest {
    static List<String> subcommandNames(CommandLine cl) { return new ArrayList<>(cl.getSubcommands().keySet()); }

    static List<String> allNames() {
        List<String> names = new ArrayList<>();
        for (Class<?> c : Main.COMMANDS) names.add(c.getAnnotation(CommandLine.Command.class).name());
        return names;
    }

    @Test
    void everySubcommandHasItsOwnName() {
        List<String> names = allNames();
        assertEquals(names.size(), new HashSet<>(names).size(), names.toString());
        assertTrue(names.containsAll(List.of("create", "volume", "snapshot", "clone", "serve", "run", "stats", "check", "gc", "import", "export")), names.toString());
    }

    @Test
    void aNamedSubcommandIsTheOnlyOneModelled() {
        assertEquals(List.of("import"), subcommandNames(Main.commandLine("import", "--pool", "p", "f.img", "v")));
        CommandLine volume = Main.commandLine("volume", "create", "--pool", "p", "a", "--size", "1G");
        assertEquals(List.of("volume"), subcommandNames(volume));
        // its own subcommands come with it
        assertTrue(volume.getSubcommands().get("volume").getSubcommands().containsKey("rollback"));
    }

    @Test
    void helpVersionAndUnknownNamesGetEverySubcommandInOrder() {
        for (String[] args : List.of(new String[0], new String[] {"--help"}, new String[] {"-V"}, new String[] {"imprt"}, new String[] {"--pool", "p"})) {
            assertEquals(allNames(), subcommandNames(Main.commandLine(args)), String.join(" ", args));
        }
        StringWriter err = new StringWriter();
        CommandLine cl = Main.commandLine("imprt");
        cl.setErr(new PrintWriter(err));
        assertEquals(2, cl.execute("imprt"));
        assertTrue(err.toString().contains("Unmatched argument at index 0: 'imprt'") && err.toString().contains("import"), err.toString());
    }

    @Test
    void aLoneSubcommandParsesAndHelpsAsInTheFullModel() {
        String[] args = {"import", "--pool", "/p", "--no-progress", "--size", "2G", "disk.qcow2", "vm1"};
        CommandLine.ParseResult lone = Main.commandLine(args).parseArgs(args).subcommand();
        assertEquals("import", lone.commandSpec().name());
        assertEquals("/p", lone.matchedOptionValue("--pool", ""));
        assertEquals("2G", lone.matchedOptionValue("--size", ""));
        assertEquals(List.of("disk.qcow2", "vm1"), lone.matchedPositionals().stream().map(p -> p.getValue().toString()).toList());

        CommandLine full = Main.commandLine("--help");
        CommandLine alone = Main.commandLine("import", "--help");
        String fullUsage = full.getSubcommands().get("import").getUsageMessage(CommandLine.Help.Ansi.OFF);
        assertEquals(fullUsage, alone.getSubcommands().get("import").getUsageMessage(CommandLine.Help.Ansi.OFF));
        assertTrue(fullUsage.contains("--help") && fullUsage.contains("--version"), "the root's help options are inherited: " + fullUsage);

        StringWriter out = new StringWriter();
        alone.setOut(new PrintWriter(out));
        assertEquals(0, alone.execute("import", "--help"));
        assertEquals(fullUsage, out.toString());
    }

    /** Descriptions are format strings to picocli: a lone % makes it warn on stderr and print the text unformatted. */
    @Test
    void everyCommandsHelpRendersWithoutPicocliWarnings() {
        java.io.PrintStream err = System.err;
        java.io.ByteArrayOutputStream captured = new java.io.ByteArrayOutputStream();
        System.setErr(new java.io.PrintStream(captured, true, java.nio.charset.StandardCharsets.UTF_8));
        try {
            CommandLine full = Main.commandLine("--help");
            List<CommandLine> all = new ArrayList<>(List.of(full));
            for (int i = 0; i < all.size(); i++) {
                all.addAll(all.get(i).getSubcommands().values());
                assertFalse(all.get(i).getUsageMessage(CommandLine.Help.Ansi.OFF).isEmpty());
            }
            assertTrue(all.size() > Main.COMMANDS.size(), "subcommands of subcommands were rendered too");
        } finally {
            System.setErr(err);
        }
        assertEquals("", captured.toString(java.nio.charset.StandardCharsets.UTF_8), "picocli's warnings");
    }
}
