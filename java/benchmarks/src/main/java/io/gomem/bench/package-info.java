/**
 * JMH benchmarks: gomem against the allocators a Java program can use for off-heap memory
 * (glibc malloc and jemalloc through FFM, {@code java.lang.foreign} arenas, Netty's pooled and
 * adaptive allocators, {@code sun.misc.Unsafe}). Every benchmark is an allocate + free pair (or
 * a batch of them) per size, in average time per pair. How to build and run them, and the
 * recorded numbers: BENCHMARKS.md at the repository root.
 */
package io.gomem.bench;
