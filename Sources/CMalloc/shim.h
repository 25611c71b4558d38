#ifndef BIS_CMALLOC_H
#define BIS_CMALLOC_H
// glibc's <malloc.h> (mallopt and its M_* parameters), which the Glibc
// module does not export. Linux only: ProcessResources imports it under
// #if os(Linux).
#ifdef __linux__
#include <malloc.h>
// M_MMAP_THRESHOLD is a macro Swift cannot import reliably everywhere; the
// setting as a function.
static inline int bis_set_mmap_threshold(int bytes) { return mallopt(M_MMAP_THRESHOLD, bytes); }
#endif
#endif
