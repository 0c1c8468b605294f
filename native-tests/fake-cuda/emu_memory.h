// emu_memory.h: the fake libcuda.so.1's allocation table, as seen by the fake libcublas.so.12.
#pragma once

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// 1 when [ptr, ptr + bytes) lies inside one live device allocation, else 0.
int kxai_emu_is_device_range(unsigned long long ptr, size_t bytes);

#ifdef __cplusplus
}
#endif
