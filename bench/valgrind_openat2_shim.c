// Profiling aid for bench_check under valgrind, which (3.19) does not know
// openat2: an LD_PRELOAD library that serves openat2 with a plain openat
// relative to the same directory fd. It drops the RESOLVE_* confinement,
// so it is for measuring instruction counts on the benchmark's own tree only,
// never for running lithos.
//
//   gcc -O2 -shared -fPIC -o /tmp/openat2_shim.so bench/valgrind_openat2_shim.c -ldl
//   LD_PRELOAD=/tmp/openat2_shim.so valgrind --tool=callgrind build-perf/bin/bench_check 300 1
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <sys/syscall.h>

long syscall(long number, ...) {
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (int i = 0; i < 6; ++i) a[i] = va_arg(ap, long);
  va_end(ap);
  if (number == SYS_openat2) {
    const struct open_how* how = (const struct open_how*)a[2];
    const char* path = (const char*)a[1];
    while (*path == '/') ++path;
    if (!*path) path = ".";
    return openat((int)a[0], path, (int)how->flags);
  }
  static long (*real)(long, ...) = 0;
  if (!real) real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
  return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
