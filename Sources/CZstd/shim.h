#ifndef BIS_CZSTD_H
#define BIS_CZSTD_H
#include <zstd.h>
#include <zstd_errors.h>
#endif
