// Hand-written module descriptor for the jextract output in this tree (jextract does not write
// one, and regenerating leaves this file alone).
module io.gomem.bindings {
    exports io.gomem.bindings.linux;
}
