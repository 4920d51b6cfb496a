/*
 * gomem's JNI backend: the same five system calls the Panama backend reaches through the jextract
 * bindings (mmap, munmap, madvise, mprotect, mincore), for JVMs where java.lang.foreign is absent
 * or a preview (JDK 17 to 21), or where gomem.backend=jni asks for it.
 *
 * Contract with io.gomem.os.JniSyscalls (the only caller):
 *   - every call returns what the kernel returned, and on failure the errno the call set, read
 *     before anything else runs (no JNI call, no library call in between): mmap returns the
 *     address or -errno, the others 0 or errno. Java turns those into exceptions, the same way
 *     for both backends.
 *   - no call keeps a reference to a Java object, and none calls back into Java.
 *   - constants come from the same system headers the jextract bindings were generated from
 *     (gomem_sys.h), as a table of names and values, so that the bindings test can check both
 *     backends against the C compiler.
 */
#include <jni.h>
#include <stdint.h>
#include <stdlib.h>
#include "gomem_sys.h"

#define ADDR(a) ((void *) (uintptr_t) (a))

JNIEXPORT jlong JNICALL Java_io_gomem_os_JniSyscalls_mmap0(JNIEnv *env, jclass c, jlong addr, jlong len,
        jint prot, jint flags) {
    void *r = mmap(ADDR(addr), (size_t) len, prot, flags, -1, 0);
    if (r == MAP_FAILED) {
        return -(jlong) errno;
    }
    return (jlong) (uintptr_t) r;
}

JNIEXPORT jint JNICALL Java_io_gomem_os_JniSyscalls_munmap0(JNIEnv *env, jclass c, jlong addr, jlong len) {
    return munmap(ADDR(addr), (size_t) len) == 0 ? 0 : errno;
}

JNIEXPORT jint JNICALL Java_io_gomem_os_JniSyscalls_madvise0(JNIEnv *env, jclass c, jlong addr, jlong len,
        jint advice) {
    return madvise(ADDR(addr), (size_t) len, advice) == 0 ? 0 : errno;
}

JNIEXPORT jint JNICALL Java_io_gomem_os_JniSyscalls_mprotect0(JNIEnv *env, jclass c, jlong addr, jlong len,
        jint prot) {
    return mprotect(ADDR(addr), (size_t) len, prot) == 0 ? 0 : errno;
}

/*
 * mincore into vec (one byte per kernel page of [addr, addr + len)). The kernel writes a buffer
 * of ours, then one copy into the Java array: the call may block (page-table walk), so the array
 * is never pinned across it. 0 or errno.
 */
JNIEXPORT jint JNICALL Java_io_gomem_os_JniSyscalls_mincore0(JNIEnv *env, jclass c, jlong addr, jlong len,
        jbyteArray vec) {
    jsize n = (*env)->GetArrayLength(env, vec);
    unsigned char stack[4096];
    unsigned char *buf = n <= (jsize) sizeof stack ? stack : malloc((size_t) n);
    if (buf == NULL) {
        return ENOMEM;
    }
    int err = mincore(ADDR(addr), (size_t) len, buf) == 0 ? 0 : errno;
    if (err == 0) {
        (*env)->SetByteArrayRegion(env, vec, 0, n, (const jbyte *) buf);
    }
    if (buf != stack) {
        free(buf);
    }
    return err;
}

JNIEXPORT jstring JNICALL Java_io_gomem_os_JniSyscalls_strerror0(JNIEnv *env, jclass c, jint errnum) {
    return (*env)->NewStringUTF(env, strerror(errnum));
}

JNIEXPORT jlong JNICALL Java_io_gomem_os_JniSyscalls_sysconf0(JNIEnv *env, jclass c, jint name) {
    return (jlong) sysconf(name);
}

/* The constants the OS layer uses, by the names jextract.args gives them. */
#define C(name) { #name, (jlong) (name) }
static const struct { const char *name; jlong value; } CONSTANTS[] = {
    C(PROT_NONE), C(PROT_READ), C(PROT_WRITE), C(PROT_EXEC),
    C(MAP_PRIVATE), C(MAP_SHARED), C(MAP_ANONYMOUS), C(MAP_FIXED), C(MAP_FIXED_NOREPLACE),
    C(MAP_NORESERVE), { "MAP_FAILED", (jlong) (intptr_t) MAP_FAILED },
    C(MADV_NORMAL), C(MADV_DONTNEED), C(MADV_FREE), C(MADV_HUGEPAGE), C(MADV_NOHUGEPAGE),
    C(MADV_COLLAPSE),
    C(_SC_PAGESIZE),
    C(EPERM), C(EINTR), C(EAGAIN), C(ENOMEM), C(EACCES), C(EFAULT), C(EBUSY), C(EEXIST),
    C(EINVAL), C(ENOSYS), C(EOVERFLOW),
};
#define NCONSTANTS ((jsize) (sizeof CONSTANTS / sizeof CONSTANTS[0]))

/* The names of the table, in order (a String[]); NULL with an exception pending if out of memory. */
JNIEXPORT jobjectArray JNICALL Java_io_gomem_os_JniSyscalls_constantNames(JNIEnv *env, jclass c) {
    jclass string = (*env)->FindClass(env, "java/lang/String");
    if (string == NULL) {
        return NULL;
    }
    jobjectArray names = (*env)->NewObjectArray(env, NCONSTANTS, string, NULL);
    for (jsize i = 0; names != NULL && i < NCONSTANTS; i++) {
        jstring s = (*env)->NewStringUTF(env, CONSTANTS[i].name);
        if (s == NULL) {
            return NULL;
        }
        (*env)->SetObjectArrayElement(env, names, i, s);
        (*env)->DeleteLocalRef(env, s);
    }
    return names;
}

/* The values of the table, in the order of constantNames(). */
JNIEXPORT jlongArray JNICALL Java_io_gomem_os_JniSyscalls_constantValues(JNIEnv *env, jclass c) {
    jlongArray values = (*env)->NewLongArray(env, NCONSTANTS);
    for (jsize i = 0; values != NULL && i < NCONSTANTS; i++) {
        (*env)->SetLongArrayRegion(env, values, i, 1, &CONSTANTS[i].value);
    }
    return values;
}
