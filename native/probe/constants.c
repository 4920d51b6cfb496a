/*
 * Prints, as "NAME VALUE" lines, every constant gomem's bindings carry, as this machine's C
 * compiler sees them through the same header jextract read. BindingsMatchPlatformTest compiles
 * and runs this and compares each value with the generated bindings.
 */
#include <stdio.h>
#include "gomem_sys.h"

#define P(name) printf("%s %ld\n", #name, (long) (name))

int main(void) {
    P(PROT_NONE); P(PROT_READ); P(PROT_WRITE); P(PROT_EXEC);
    P(MAP_PRIVATE); P(MAP_SHARED); P(MAP_ANONYMOUS); P(MAP_FIXED); P(MAP_FIXED_NOREPLACE);
    P(MAP_NORESERVE); P(MAP_FAILED);
    P(MADV_NORMAL); P(MADV_DONTNEED); P(MADV_FREE); P(MADV_HUGEPAGE); P(MADV_NOHUGEPAGE);
    P(MADV_COLLAPSE);
    P(_SC_PAGESIZE);
    P(EPERM); P(EINTR); P(EAGAIN); P(ENOMEM); P(EACCES); P(EFAULT); P(EBUSY); P(EEXIST);
    P(EINVAL); P(ENOSYS); P(EOVERFLOW);
    printf("sysconf(_SC_PAGESIZE) %ld\n", sysconf(_SC_PAGESIZE));
    return 0;
}
