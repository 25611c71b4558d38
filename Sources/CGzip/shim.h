#ifndef BIS_CGZIP_H
#define BIS_CGZIP_H
#include <zlib.h>

/* inflateInit2 is a macro (it passes the library version and the struct's
   size): Swift cannot call it, so a function does. */
static inline int bis_inflate_init2(z_stream *stream, int window_bits) {
    return inflateInit2(stream, window_bits);
}
/* The same for deflateInit2 (tests write GZIP pages with it). */
static inline int bis_deflate_init2(z_stream *stream, int level, int window_bits) {
    return deflateInit2(stream, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY);
}
#endif
