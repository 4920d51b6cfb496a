package io.gomem.cli;

import org.w3c.dom.Document;

import javax.xml.parsers.DocumentBuilderFactory;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Runs the gomem command in this JVM, as {@code Main.main} does but with stdout and stderr captured; checks of its files. */
final class Cli {
    private Cli() {
    }

    /** What a run left: its exit code and output. */
    record Result(int code, String out, String err) {
        /** The non-empty lines of stderr. */
        String[] errLines() {
            return err.lines().filter(l -> !l.isBlank()).toArray(String[]::new);
        }

        @Override
        public String toString() {
            return "exit " + code + "\n--- stdout\n" + out + "--- stderr\n" + err;
        }
    }

    static Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        var cl = Main.commandLine(false);
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(args);
        return new Result(code, out.toString(), err.toString());
    }

    /** Parses an SVG file with the JDK's default XML parser (no DTD to fetch: our SVGs have no DOCTYPE). */
    static Document svg(Path file) throws Exception {
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setNamespaceAware(true);
        Document doc = f.newDocumentBuilder().parse(file.toFile());
        assertTrue(doc.getDocumentElement().getLocalName().equals("svg"), file + " is not SVG");
        return doc;
    }

    /** The text of the SVG's desc element (the chart's series). */
    static String svgDesc(Document doc) {
        return doc.getElementsByTagNameNS("http://www.w3.org/2000/svg", "desc").item(0).getTextContent();
    }

    /** Asserts that the file is a PNG (starts with the PNG signature). */
    static void assertPng(Path file) throws Exception {
        byte[] head = Arrays.copyOf(Files.readAllBytes(file), 8);
        assertArrayEquals(new byte[]{(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, head, file + " is not a PNG");
    }
}
