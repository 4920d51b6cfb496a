// Hand-written module descriptor for the jextract output (jextract does not write one, and
// regenerating leaves this file alone). Compiled for JDK 17, like the jar's base: the generated
// classes live in META-INF/versions/25 (src/main/java25), so the module reads on
// JDK 17 and 21 too.
module io.gomem.bindings {
    exports io.gomem.bindings.linux;
}
