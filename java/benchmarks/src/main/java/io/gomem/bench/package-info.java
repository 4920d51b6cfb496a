/**
 * JMH benchmarks: gomem against the allocators a Java program can use for off-heap memory
 * (glibc malloc and jemalloc through FFM, {@code java.lang.foreign} arenas, Netty's pooled and
 * adaptive allocators, {@code sun.misc.Unsafe}). Allocate + free pairs per size, one class per
 * allocator ({@code *Bench}); workloads written once and run per allocator through
 * {@link io.gomem.bench.Allocator} ({@link io.gomem.bench.BatchBench},
 * {@link io.gomem.bench.CrossThreadBench}, {@link io.gomem.bench.MixBench}); and the footprint
 * churn, a plain program ({@link io.gomem.bench.Footprint}). How to build and run them, and the
 * recorded numbers: BENCHMARKS.md at the repository root.
 */
package io.gomem.bench;
