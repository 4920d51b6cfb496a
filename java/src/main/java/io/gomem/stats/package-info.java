/** Statistics of a gomem heap: {@link io.gomem.stats.MemStats}, Go's MemStats for gomem. */
package io.gomem.stats;
