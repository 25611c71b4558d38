#ifndef BIS_CZSTD_H
#define BIS_CZSTD_H
#include <zstd.h>
#endif
