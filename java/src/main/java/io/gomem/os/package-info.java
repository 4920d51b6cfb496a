/** The OS memory layer: Go's region state machine over mmap, madvise, mprotect and munmap. */
package io.gomem.os;
