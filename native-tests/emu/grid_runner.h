// grid_runner.h: runs one kernel launch on the CPU (used by the fake driver, fake-cuda/driver.cpp).
#pragma once

#include <stddef.h>

#include <string>

#include "emu_abi.h"

namespace kxai_emu {

enum class Schedule {
    // One worker thread; blocks in increasing linear index; within a block, fibers run in
    // increasing thread index, each until it blocks. Every run of a launch is identical.
    deterministic,
    // KXAI_EMU_WORKERS worker threads (default: cores, at most 4); block order and, at every
    // barrier, fiber order are permuted from KXAI_EMU_SEED. Exposes kernels that depend on an
    // order CUDA does not promise.
    shuffled,
};

struct RunnerSettings {
    Schedule schedule;
    unsigned workers;
    unsigned long long seed;
    size_t stack_bytes;  // per fiber, plus one guard page below it

    // KXAI_EMU_SCHEDULE, KXAI_EMU_SEED, KXAI_EMU_WORKERS, KXAI_EMU_STACK_KIB; an unparsable
    // value is fatal (a misspelt switch must not silently test something else).
    static RunnerSettings from_environment();
};

struct GridLaunch {
    const kxai_emu_kernel* kernel;
    void* (*dynamic_shared)(void);
    void** args;
    kxai_emu_uint3 grid;
    kxai_emu_uint3 block;
    unsigned dynamic_shared_bytes;
};

// Runs every block of the launch and returns "" or, when the launch failed (a barrier or
// warp operation that can never complete), what went wrong. Launches are serialised.
std::string run_grid(const GridLaunch& launch);

}  // namespace kxai_emu
