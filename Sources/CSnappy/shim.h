#ifndef BIS_CSNAPPY_H
#define BIS_CSNAPPY_H
#include <snappy-c.h>
#endif
