// emu_memory.h: the fake libcuda.so.1's allocation table, as seen by the fake libcublas.so.12.
#pragma once

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// 1 when [ptr, ptr + bytes) lies inside one live device allocation, else 0.
int kxai_emu_is_device_range(unsigned long long ptr, size_t bytes);

// A cuBLAS call's work on `stream` (a CUstream; null, CU_STREAM_LEGACY or CU_STREAM_PER_THREAD:
// a default stream): refused (CUDA_ERROR_INVALID_HANDLE) on a destroyed stream; recorded as a
// graph node (run(arg) at each replay) while the stream captures; else counted by stream kind and
// run now. release(arg) is called when the work can no longer run. Returns a CUresult.
int kxai_emu_stream_submit(void* stream, const char* call, void (*run)(void*), void* arg, void (*release)(void*));

// The driver's counters by name, or ~0 for an unknown name:
//   0 launches_default_stream  1 launches_created_stream  2 ops_default_stream  3 ops_created_stream
//   4 async_copies_pageable    5 async_copies_pinned      6 sync_host_copies    7 pinned_allocations
//   8 pinned_frees             9 cublas_default_stream   10 cublas_created_stream
//  11 graph_captures          12 graph_launches          13 captured_nodes
// ("ops": copies and memsets; every synchronous copy is on the default stream.)
unsigned long long kxai_emu_counter(const char* name);

// The same counters from the JVM: cuDeviceGetAttribute(KXAI_EMU_COUNTER_ATTRIBUTE + index)
// returns the counter's low 31 bits ('KX' << 16; no real attribute is that large, and a real
// driver refuses it with CUDA_ERROR_INVALID_VALUE).
#define KXAI_EMU_COUNTER_ATTRIBUTE 0x4B580000

#ifdef __cplusplus
}
#endif
