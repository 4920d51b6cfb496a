/**
 * jextract's bindings to the Linux memory calls gomem makes ({@code LinuxSys}), for the Panama
 * backend. The classes are in the jar's JDK 25 part ({@code META-INF/versions/25}): they use
 * {@code java.lang.foreign} as jextract's JDK 25 line writes it. Below JDK 25 this package holds
 * only {@link io.gomem.bindings.linux.Bindings} and the module only keeps its name, so that the
 * jar reads on every JDK gomem supports.
 */
package io.gomem.bindings.linux;
