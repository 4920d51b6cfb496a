/*
 * The slice of the Linux C API that gomem's OS layer calls. jextract reads this file (see
 * bindings/jextract.args) for the Panama backend, and the JNI backend (native/jni/gomem_jni.c)
 * includes it, so both see the same constants. Keep it to system headers.
 */
#ifndef GOMEM_SYS_H
#define GOMEM_SYS_H

#include <sys/mman.h>    /* mmap, munmap, madvise, mprotect, mincore, PROT_*, MAP_*, MADV_* */
#include <linux/mman.h>  /* MADV_COLLAPSE on glibc versions whose <sys/mman.h> lacks it */
#include <unistd.h>      /* sysconf, getpagesize, _SC_PAGESIZE */
#include <string.h>      /* strerror, for errno text in exceptions */
#include <errno.h>       /* the errno values the OS layer names in its exceptions */

#endif
