/* jni_link_check.c [--preload] BUILD_DIR JNI_LIBRARY...
 *
 * Loads JCuda's JNI libraries the way the JVM does (dlopen, RTLD_LOCAL) but with RTLD_NOW, so
 * that every symbol they import must resolve at once instead of killing the process (exit 127)
 * the first time an unresolved one is called. Then checks that libcuda.so.1 and
 * libcublas.so.12 are the emulator's (not a system driver's) and that cuInit finds the CPU
 * kernel library beside libcuda.so.1.
 *
 * Two ways to point the JNI libraries at the emulator, both checked by tools/run-tests.sh:
 *   LD_LIBRARY_PATH=BUILD_DIR (set before the process starts), or
 *   --preload: load BUILD_DIR/libcuda.so.1 and libcublas.so.12 by absolute path first (what
 *   System.load does); the dynamic loader then satisfies the JNI libraries' NEEDED entries
 *   from the already-loaded objects with those sonames.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static int passed, failed;

static void result(int ok, const char* what, const char* detail)
{
    printf("%s  %s%s%s\n", ok ? "ok  " : "FAIL", what, detail[0] ? ": " : "", detail);
    ok ? ++passed : ++failed;
}

/* Which file provides `symbol` in the already-loaded `soname`, or "" when it is not loaded. */
static const char* provider(const char* soname, const char* symbol)
{
    void* handle = dlopen(soname, RTLD_NOW | RTLD_NOLOAD);
    Dl_info info;
    if (handle == NULL)
        return "";
    void* address = dlsym(handle, symbol);
    if (address == NULL || dladdr(address, &info) == 0 || info.dli_fname == NULL)
        return "";
    return info.dli_fname;
}

int main(int argc, char** argv)
{
    char what[8192], path[4096];
    const int preload = argc > 1 && strcmp(argv[1], "--preload") == 0;
    if (argc < 3 + preload) {
        fprintf(stderr, "usage: %s [--preload] BUILD_DIR JNI_LIBRARY...\n", argv[0]);
        return 2;
    }
    const char* build = argv[1 + preload];
    const char* how = preload ? "preloaded by absolute path" : "LD_LIBRARY_PATH";
    if (preload) {
        const char* fakes[] = {"libcuda.so.1", "libcublas.so.12"};
        for (int i = 0; i < 2; ++i) {
            snprintf(path, sizeof path, "%s/%s", build, fakes[i]);
            snprintf(what, sizeof what, "preload %s", path);
            result(dlopen(path, RTLD_NOW | RTLD_LOCAL) != NULL, what, "");
        }
    }
    for (int i = 2 + preload; i < argc; ++i) {
        snprintf(what, sizeof what, "[%s] dlopen(%s, RTLD_NOW): every import resolves", how, argv[i]);
        void* handle = dlopen(argv[i], RTLD_NOW | RTLD_LOCAL);
        result(handle != NULL, what, handle != NULL ? "" : dlerror());
    }
    const struct {
        const char* soname;
        const char* symbol;
    } fakes[] = {{"libcuda.so.1", "cuInit"}, {"libcublas.so.12", "cublasCreate_v2"}};
    for (size_t i = 0; i < sizeof fakes / sizeof fakes[0]; ++i) {
        const char* file = provider(fakes[i].soname, fakes[i].symbol);
        if (file[0] == '\0')
            continue; /* no JNI library given needs it */
        snprintf(what, sizeof what, "[%s] %s is the emulator's", how, fakes[i].soname);
        result(strstr(file, build) != NULL, what, file);
    }
    void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (cuda != NULL) {
        int (*cu_init)(unsigned) = (int (*)(unsigned))dlsym(cuda, "cuInit");
        const int status = cu_init != NULL ? cu_init(0) : -1;
        snprintf(what, sizeof what, "[%s] cuInit loads the CPU kernel library beside libcuda.so.1", how);
        snprintf(path, sizeof path, "cuInit returned %d", status);
        result(status == 0, what, status == 0 ? "" : path);
    }
    printf("jni-link-check: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
