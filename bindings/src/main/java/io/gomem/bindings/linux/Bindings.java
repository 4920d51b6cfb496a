package io.gomem.bindings.linux;

/**
 * Where this package's generated classes are: in the jar's part for {@link #FEATURE} and later
 * ({@code META-INF/versions/25}: jextract's JDK 25 line writes code that needs JDK 23+). The JDK 17 base of the jar holds only this class, the package
 * and the module descriptor, so that the module reads on every JDK gomem supports.
 */
public final class Bindings {
    /** The first Java release whose part of the jar has the bindings (the generated code's JDK). */
    public static final int FEATURE = 25;

    private Bindings() {
    }
}
