package io.dedisk.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * The systemd unit and its example settings say what the CLI accepts: the ExecStart command line, with the
 * unit's defaults and with the example environment file, parses as `dedisk serve` with the same options.
 */
class ContribTest {
    static final Path UNIT = Path.of("contrib/systemd/dedisk@.service");
    static final Path ENV = Path.of("contrib/systemd/dedisk.env.example");

    /** KEY=value assignments: the unit's Environment= lines (quotes removed), or an EnvironmentFile's lines. */
    static Map<String, String> environment(List<String> lines, boolean unit) {
        Map<String, String> env = new HashMap<>();
        for (String l : lines) {
            String line = l.trim();
            if (line.isEmpty() || line.startsWith("#")) continue;
            if (unit) {
                if (!line.startsWith("Environment=")) continue;
                line = line.substring("Environment=".length());
            }
            if (line.startsWith("\"") && line.endsWith("\"")) line = line.substring(1, line.length() - 1);
            int eq = line.indexOf('=');
            assertTrue(eq > 0, "an assignment: " + l);
            env.put(line.substring(0, eq), line.substring(eq + 1));
        }
        return env;
    }

    /** systemd's expansion: ${VAR} is one word, $VAR splits on whitespace; %i is the instance. */
    static List<String> expand(String exec, Map<String, String> env, String instance) {
        List<String> words = new ArrayList<>();
        for (String w : exec.replace("%i", instance).split("\\s+")) {
            if (w.startsWith("${") && w.endsWith("}")) words.add(env.getOrDefault(w.substring(2, w.length() - 1), ""));
            else if (w.startsWith("$")) {
                String v = env.getOrDefault(w.substring(1), "").trim();
                if (!v.isEmpty()) words.addAll(Arrays.asList(v.split("\\s+")));
            } else words.add(w);
        }
        return words;
    }

    static void assertServeParses(List<String> cmd, String expectedListen) {
        int jar = cmd.indexOf("-jar");
        assertTrue(jar > 0 && cmd.get(jar + 1).endsWith("dedisk.jar"), cmd.toString());
        List<String> args = cmd.subList(jar + 2, cmd.size());
        CommandLine.ParseResult parsed = Main.commandLine(args.toArray(String[]::new)).parseArgs(args.toArray(String[]::new));
        CommandLine.ParseResult serve = parsed.subcommand();
        assertEquals("serve", serve.commandSpec().name(), args.toString());
        assertEquals("/var/lib/dedisk/vms", serve.matchedOptionValue("--pool", ""));
        assertEquals(expectedListen, serve.matchedOptionValue("--listen", ""));
        Main.parseListen(serve.matchedOptionValue("--listen", ""));
        String interval = serve.matchedOptionValue("--stats-interval", "60s");
        assertFalse(Observability.parseInterval(interval).isNegative());
    }

    @Test
    void unitExecStartIsAValidServeCommand() throws Exception {
        List<String> unit = Files.readAllLines(UNIT);
        String exec = unit.stream().filter(l -> l.startsWith("ExecStart=")).findFirst().orElseThrow().substring("ExecStart=".length());
        assertTrue(unit.contains("Type=simple"), "Type=simple");
        assertTrue(unit.contains("SuccessExitStatus=143"), "SIGTERM's exit status is a clean stop");
        assertTrue(unit.stream().noneMatch(l -> l.startsWith("ExecReload=")), "serve has no reload, so the unit offers none");
        Map<String, String> defaults = environment(unit, true);
        assertServeParses(expand(exec, defaults, "vms"), "127.0.0.1:10809");

        Map<String, String> withFile = new HashMap<>(defaults);
        withFile.putAll(environment(Files.readAllLines(ENV), false));
        List<String> cmd = expand(exec, withFile, "vms");
        assertServeParses(cmd, "127.0.0.1:10809");
        assertTrue(cmd.contains("--metrics"), "the example turns metrics on: " + cmd);
        assertTrue(cmd.contains("-Xmx512m"), "JVM options reach java: " + cmd);
    }
}
