// grid_runner.cpp: blocks on worker threads, CUDA threads as fibers.
//
// Each worker OS thread runs one block at a time. The block's threads are ucontext fibers on
// that worker; a fiber runs until it finishes or reaches __syncthreads or a warp operation,
// then switches back to the block's scheduler. A barrier opens when every thread of the block
// has arrived; a warp operation completes when every lane named in its mask has made the same
// call, and the scheduler then computes each lane's result at once (so one rendezvous per
// shuffle is enough). When no fiber can run and some have not finished, the block can never
// complete: the launch fails with a description instead of hanging.
//
// Fibers never migrate between OS threads, which is what makes thread_local work as per-block
// __shared__ memory and as the home of threadIdx and friends.
#include "grid_runner.h"

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define KXAI_EMU_ASAN 1
#endif

// Exported to kernel libraries (fake-cuda/libcuda.map); see emu_abi.h.
extern "C" {
__thread kxai_emu_uint3 kxai_emu_thread_idx;
__thread kxai_emu_uint3 kxai_emu_block_idx;
__thread kxai_emu_uint3 kxai_emu_block_dim;
__thread kxai_emu_uint3 kxai_emu_grid_dim;
}

namespace kxai_emu {
namespace {

constexpr unsigned kWarpSize = 32;

[[noreturn]] void fatal(const char* what)
{
    std::fprintf(stderr, "kxai-emu: fatal: %s\n", what);
    std::abort();
}

unsigned long long env_number(const char* name, unsigned long long fallback)
{
    const char* text = std::getenv(name);
    if (text == nullptr || *text == '\0')
        return fallback;
    char* end = nullptr;
    const unsigned long long value = std::strtoull(text, &end, 10);
    if (*end != '\0') {
        std::fprintf(stderr, "kxai-emu: fatal: %s=%s is not a number\n", name, text);
        std::abort();
    }
    return value;
}

enum class FiberState { runnable, at_block_barrier, at_warp_op, done };

struct WarpRequest {
    kxai_emu_warp_op op;
    unsigned mask;
    unsigned long long value;
    int param;
    int width;
};

const char* op_name(kxai_emu_warp_op op)
{
    switch (op) {
    case KXAI_EMU_SHFL_IDX: return "__shfl_sync";
    case KXAI_EMU_SHFL_UP: return "__shfl_up_sync";
    case KXAI_EMU_SHFL_DOWN: return "__shfl_down_sync";
    case KXAI_EMU_SHFL_XOR: return "__shfl_xor_sync";
    case KXAI_EMU_VOTE_BALLOT: return "__ballot_sync";
    case KXAI_EMU_VOTE_ANY: return "__any_sync";
    case KXAI_EMU_VOTE_ALL: return "__all_sync";
    case KXAI_EMU_SYNCWARP: return "__syncwarp";
    }
    return "warp operation";
}

struct Fiber {
    ucontext_t context;
    char* stack;
    kxai_emu_uint3 thread_idx;
    unsigned index;  // linear thread index in the block
    FiberState state;
    WarpRequest request;
    unsigned long long result;
#ifdef KXAI_EMU_ASAN
    void* fake_stack;
#endif
};

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...)
{
    char buffer[512];
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(buffer, sizeof buffer, fmt, args);
    va_end(args);
    return buffer;
}

// Fiber stacks of one worker: one mapping, each stack with an inaccessible guard page below
// it, so an overflow is a segmentation fault at the guard rather than silent corruption of
// the neighbouring fiber's frames. Pages are committed only when touched.
class StackArena {
public:
    explicit StackArena(size_t stack_bytes)
        : page_(static_cast<size_t>(sysconf(_SC_PAGESIZE))),
          stack_bytes_((stack_bytes + page_ - 1) / page_ * page_)
    {
    }
    ~StackArena() { release(); }

    void reserve(unsigned count)
    {
        if (count <= count_)
            return;
        release();
        const size_t slot = slot_bytes();
        void* base = mmap(nullptr, slot * count, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (base == MAP_FAILED)
            fatal("cannot map fiber stacks (lower KXAI_EMU_STACK_KIB or the block size)");
        base_ = static_cast<char*>(base);
        count_ = count;
        for (unsigned i = 0; i < count; ++i)
            if (mprotect(base_ + i * slot, page_, PROT_NONE) != 0)
                fatal("cannot protect fiber stack guard pages (vm.max_map_count? lower KXAI_EMU_WORKERS)");
    }
    char* stack(unsigned i) const { return base_ + i * slot_bytes() + page_; }
    size_t stack_bytes() const { return stack_bytes_; }

private:
    size_t slot_bytes() const { return stack_bytes_ + page_; }
    void release()
    {
        if (base_ != nullptr)
            munmap(base_, slot_bytes() * count_);
        base_ = nullptr;
        count_ = 0;
    }

    size_t page_;
    size_t stack_bytes_;
    char* base_ = nullptr;
    unsigned count_ = 0;
};

// Runs blocks on the calling worker thread, one at a time.
class BlockRunner {
public:
    explicit BlockRunner(const RunnerSettings& settings) : settings_(settings), stacks_(settings.stack_bytes) {}

    std::string run(const GridLaunch& launch, unsigned long long block_linear);

    // Called on a fiber (through the emu_abi.h functions).
    void syncthreads();
    unsigned long long warp_op(const WarpRequest& request);
    unsigned active_mask() const;

    static BlockRunner* current() { return current_runner; }

private:
    static void fiber_main();
    void resume(Fiber& fiber);
    void yield_to_scheduler(bool finished);
    std::string after_yield(Fiber& fiber);
    std::string complete_warp_op(const Fiber& caller);
    std::string describe_stall() const;
    std::string block_name() const;
    unsigned warp_lane_count(unsigned warp) const;

    static thread_local BlockRunner* current_runner;

    const RunnerSettings& settings_;
    StackArena stacks_;
    std::vector<Fiber> fibers_;
    std::vector<unsigned> order_;
    std::mt19937_64 rng_;
    const GridLaunch* launch_ = nullptr;
    Fiber* running_ = nullptr;
    ucontext_t scheduler_context_;
    unsigned at_block_barrier_ = 0;
#ifdef KXAI_EMU_ASAN
    void* scheduler_fake_stack_ = nullptr;
    const void* scheduler_stack_bottom_ = nullptr;
    size_t scheduler_stack_size_ = 0;
#endif
};

thread_local BlockRunner* BlockRunner::current_runner = nullptr;

std::string BlockRunner::block_name() const
{
    return format("block (%u,%u,%u) of %s", kxai_emu_block_idx.x, kxai_emu_block_idx.y,
                  kxai_emu_block_idx.z, launch_->kernel->name);
}

unsigned BlockRunner::warp_lane_count(unsigned warp) const
{
    const unsigned first = warp * kWarpSize;
    return std::min<unsigned>(kWarpSize, static_cast<unsigned>(fibers_.size()) - first);
}

void BlockRunner::fiber_main()
{
    BlockRunner* self = current_runner;
#ifdef KXAI_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &self->scheduler_stack_bottom_,
                                    &self->scheduler_stack_size_);
#endif
    self->launch_->kernel->invoke(self->launch_->args);
    self->yield_to_scheduler(true);
    fatal("a finished fiber was resumed");
}

void BlockRunner::resume(Fiber& fiber)
{
    running_ = &fiber;
    kxai_emu_thread_idx = fiber.thread_idx;
#ifdef KXAI_EMU_ASAN
    __sanitizer_start_switch_fiber(&scheduler_fake_stack_, fiber.stack, stacks_.stack_bytes());
#endif
    swapcontext(&scheduler_context_, &fiber.context);
#ifdef KXAI_EMU_ASAN
    __sanitizer_finish_switch_fiber(scheduler_fake_stack_, nullptr, nullptr);
#endif
    running_ = nullptr;
}

void BlockRunner::yield_to_scheduler(bool finished)
{
    Fiber& fiber = *running_;
    if (finished)
        fiber.state = FiberState::done;
#ifdef KXAI_EMU_ASAN
    // A finished fiber is never resumed: passing no fake-stack slot lets ASan drop its frames.
    __sanitizer_start_switch_fiber(finished ? nullptr : &fiber.fake_stack, scheduler_stack_bottom_,
                                   scheduler_stack_size_);
#endif
    swapcontext(&fiber.context, &scheduler_context_);
#ifdef KXAI_EMU_ASAN
    __sanitizer_finish_switch_fiber(fiber.fake_stack, &scheduler_stack_bottom_,
                                    &scheduler_stack_size_);
#endif
}

void BlockRunner::syncthreads()
{
    running_->state = FiberState::at_block_barrier;
    yield_to_scheduler(false);
}

unsigned long long BlockRunner::warp_op(const WarpRequest& request)
{
    running_->state = FiberState::at_warp_op;
    running_->request = request;
    yield_to_scheduler(false);
    return running_->result;
}

unsigned BlockRunner::active_mask() const
{
    const unsigned warp = running_->index / kWarpSize;
    unsigned mask = 0;
    for (unsigned lane = 0; lane < warp_lane_count(warp); ++lane)
        if (fibers_[warp * kWarpSize + lane].state != FiberState::done)
            mask |= 1u << lane;
    return mask;
}

std::string BlockRunner::run(const GridLaunch& launch, unsigned long long block_linear)
{
    launch_ = &launch;
    current_runner = this;
    const kxai_emu_uint3 g = launch.grid, b = launch.block;
    kxai_emu_grid_dim = g;
    kxai_emu_block_dim = b;
    kxai_emu_block_idx = {static_cast<unsigned>(block_linear % g.x),
                          static_cast<unsigned>(block_linear / g.x % g.y),
                          static_cast<unsigned>(block_linear / g.x / g.y)};

    // Dynamic shared memory starts as 0xFF bytes (NaN as float), as new device memory does,
    // so a kernel that reads what it never wrote sees garbage rather than a lucky zero.
    unsigned char* shared = static_cast<unsigned char*>(launch.dynamic_shared());
#ifdef KXAI_EMU_ASAN
    ASAN_UNPOISON_MEMORY_REGION(shared, KXAI_EMU_DYNAMIC_SHARED_CAPACITY);
#endif
    std::memset(shared, 0xFF, launch.dynamic_shared_bytes);
#ifdef KXAI_EMU_ASAN
    ASAN_POISON_MEMORY_REGION(shared + launch.dynamic_shared_bytes,
                              KXAI_EMU_DYNAMIC_SHARED_CAPACITY - launch.dynamic_shared_bytes);
#endif

    const unsigned threads = b.x * b.y * b.z;
    stacks_.reserve(threads);
    fibers_.resize(threads);
    order_.resize(threads);
    std::iota(order_.begin(), order_.end(), 0u);
    for (unsigned t = 0; t < threads; ++t) {
        Fiber& f = fibers_[t];
        f.index = t;
        f.thread_idx = {t % b.x, t / b.x % b.y, t / b.x / b.y};
        f.state = FiberState::runnable;
        f.stack = stacks_.stack(t);
        getcontext(&f.context);
        f.context.uc_stack.ss_sp = f.stack;
        f.context.uc_stack.ss_size = stacks_.stack_bytes();
        f.context.uc_link = nullptr;
        makecontext(&f.context, &BlockRunner::fiber_main, 0);
    }
    if (settings_.schedule == Schedule::shuffled)
        rng_.seed(settings_.seed ^ (block_linear * 0x9E3779B97F4A7C15ull));
    at_block_barrier_ = 0;

    unsigned unfinished = threads;
    std::string error;
    while (unfinished > 0 && error.empty()) {
        if (settings_.schedule == Schedule::shuffled)
            std::shuffle(order_.begin(), order_.end(), rng_);
        bool ran = false;
        for (unsigned t : order_) {
            Fiber& f = fibers_[t];
            if (f.state != FiberState::runnable)
                continue;
            ran = true;
            resume(f);
            if (f.state == FiberState::done)
                --unfinished;
            error = after_yield(f);
            if (!error.empty())
                break;
        }
        if (!ran && error.empty())
            error = describe_stall();
    }
#ifdef KXAI_EMU_ASAN
    // Fibers abandoned mid-kernel leave their frames' redzones poisoned on stacks that the
    // next block reuses.
    if (!error.empty())
        for (const Fiber& f : fibers_)
            if (f.state != FiberState::done)
                ASAN_UNPOISON_MEMORY_REGION(f.stack, stacks_.stack_bytes());
#endif
    current_runner = nullptr;
    return error;
}

std::string BlockRunner::after_yield(Fiber& fiber)
{
    switch (fiber.state) {
    case FiberState::at_block_barrier:
        if (++at_block_barrier_ == fibers_.size()) {
            at_block_barrier_ = 0;
            for (Fiber& f : fibers_)
                f.state = FiberState::runnable;
        }
        return "";
    case FiberState::at_warp_op:
        return complete_warp_op(fiber);
    case FiberState::runnable:
    case FiberState::done:
        return "";
    }
    return "";
}

std::string BlockRunner::complete_warp_op(const Fiber& caller)
{
    const WarpRequest& req = caller.request;
    const unsigned warp = caller.index / kWarpSize;
    const unsigned caller_lane = caller.index % kWarpSize;
    const unsigned lanes = warp_lane_count(warp);
    const unsigned existing = lanes == kWarpSize ? 0xffffffffu : (1u << lanes) - 1;
    const char* name = op_name(req.op);
    if ((req.mask >> caller_lane & 1u) == 0)
        return format("%s: thread %u calls %s with mask 0x%08x, which does not name its own lane %u",
                      block_name().c_str(), caller.index, name, req.mask, caller_lane);
    if ((req.mask & ~existing) != 0)
        return format("%s: %s mask 0x%08x names lanes that do not exist (warp %u has %u threads)",
                      block_name().c_str(), name, req.mask, warp, lanes);
    if (req.width <= 0 || req.width > static_cast<int>(kWarpSize) || (req.width & (req.width - 1)) != 0)
        return format("%s: %s width %d is not a power of two in 1..32", block_name().c_str(), name,
                      req.width);
    Fiber* lane_fiber[kWarpSize] = {};
    for (unsigned lane = 0; lane < kWarpSize; ++lane) {
        if ((req.mask >> lane & 1u) == 0)
            continue;
        Fiber& f = fibers_[warp * kWarpSize + lane];
        if (f.state == FiberState::done)
            return format("%s: %s with mask 0x%08x waits for lane %u of warp %u, which has exited",
                          block_name().c_str(), name, req.mask, lane, warp);
        if (f.state != FiberState::at_warp_op)
            return "";  // not everyone has arrived yet
        if (f.request.op != req.op || f.request.mask != req.mask || f.request.width != req.width)
            return format("%s: warp %u lanes disagree: lane %u calls %s (mask 0x%08x, width %d), "
                          "lane %u calls %s (mask 0x%08x, width %d)",
                          block_name().c_str(), warp, caller_lane, name, req.mask, req.width, lane,
                          op_name(f.request.op), f.request.mask, f.request.width);
        lane_fiber[lane] = &f;
    }

    unsigned ballot = 0;
    for (unsigned lane = 0; lane < kWarpSize; ++lane)
        if (lane_fiber[lane] != nullptr && lane_fiber[lane]->request.value != 0)
            ballot |= 1u << lane;
    const unsigned width = static_cast<unsigned>(req.width);
    for (unsigned lane = 0; lane < kWarpSize; ++lane) {
        Fiber* f = lane_fiber[lane];
        if (f == nullptr)
            continue;
        const unsigned param = static_cast<unsigned>(f->request.param);
        const unsigned segment = lane & ~(width - 1), local = lane & (width - 1);
        unsigned source = lane;
        switch (req.op) {
        case KXAI_EMU_SHFL_IDX: source = segment + param % width; break;
        case KXAI_EMU_SHFL_UP: source = local >= param ? lane - param : lane; break;
        case KXAI_EMU_SHFL_DOWN: source = local + param < width ? lane + param : lane; break;
        case KXAI_EMU_SHFL_XOR:
            // A lane may read from its own or an earlier width-group; a later one yields its
            // own value (CUDA Programming Guide, warp shuffle functions).
            source = lane ^ param;
            if (source >= kWarpSize || (source & ~(width - 1)) > segment)
                source = lane;
            break;
        case KXAI_EMU_VOTE_BALLOT: f->result = ballot; break;
        case KXAI_EMU_VOTE_ANY: f->result = ballot != 0; break;
        case KXAI_EMU_VOTE_ALL: f->result = ballot == req.mask; break;
        case KXAI_EMU_SYNCWARP: f->result = 0; break;
        }
        if (req.op <= KXAI_EMU_SHFL_XOR) {
            if (lane_fiber[source] == nullptr)
                return format("%s: lane %u of warp %u reads lane %u in %s, which is not in mask 0x%08x",
                              block_name().c_str(), lane, warp, source, name, req.mask);
            f->result = lane_fiber[source]->request.value;
        }
    }
    for (Fiber* f : lane_fiber)
        if (f != nullptr)
            f->state = FiberState::runnable;
    return "";
}

std::string BlockRunner::describe_stall() const
{
    unsigned done = 0, at_barrier = 0;
    const Fiber* waiting_warp = nullptr;
    for (const Fiber& f : fibers_) {
        done += f.state == FiberState::done;
        at_barrier += f.state == FiberState::at_block_barrier;
        if (f.state == FiberState::at_warp_op && waiting_warp == nullptr)
            waiting_warp = &f;
    }
    const unsigned threads = static_cast<unsigned>(fibers_.size());
    if (waiting_warp == nullptr)
        return format("%s: __syncthreads() reached by %u of %u threads; the other %u had exited "
                      "(a barrier inside a branch that not every thread takes)",
                      block_name().c_str(), at_barrier, threads, done);
    return format("%s: deadlock: thread %u waits in %s (mask 0x%08x) while %u threads wait in "
                  "__syncthreads() and %u have exited",
                  block_name().c_str(), waiting_warp->index, op_name(waiting_warp->request.op),
                  waiting_warp->request.mask, at_barrier, done);
}

// Persistent workers: created on the first launch, reused for every later one.
class WorkerPool {
public:
    explicit WorkerPool(const RunnerSettings& settings) : settings_(settings)
    {
        for (unsigned i = 0; i < settings_.workers; ++i)
            std::thread([this] { worker_loop(); }).detach();
    }

    std::string run(const GridLaunch& launch)
    {
        std::lock_guard<std::mutex> one_launch_at_a_time(launch_mutex_);
        const unsigned long long blocks = 1ull * launch.grid.x * launch.grid.y * launch.grid.z;
        std::unique_lock<std::mutex> lock(mutex_);
        launch_ = &launch;
        block_count_ = blocks;
        choose_block_order(blocks);
        next_block_.store(0);
        error_.clear();
        busy_ = settings_.workers;
        ++generation_;
        work_ready_.notify_all();
        all_idle_.wait(lock, [this] { return busy_ == 0; });
        launch_ = nullptr;
        return error_;
    }

private:
    // Shuffled mode visits blocks in the order linear = (stride * i + offset) mod n, a
    // permutation whenever stride and n are coprime; it needs no table for huge grids.
    void choose_block_order(unsigned long long blocks)
    {
        stride_ = 1;
        offset_ = 0;
        if (settings_.schedule != Schedule::shuffled || blocks < 2)
            return;
        std::mt19937_64 rng(settings_.seed + generation_);
        do {
            stride_ = rng() % blocks;
        } while (std::gcd(stride_, blocks) != 1);
        offset_ = rng() % blocks;
    }

    void worker_loop()
    {
        BlockRunner runner(settings_);
        unsigned long long seen = 0;
        for (;;) {
            const GridLaunch* launch;
            {
                std::unique_lock<std::mutex> lock(mutex_);
                work_ready_.wait(lock, [&] { return generation_ != seen; });
                seen = generation_;
                launch = launch_;
            }
            std::string error;
            for (unsigned long long i; error.empty() && (i = next_block_.fetch_add(1)) < block_count_;) {
                const unsigned long long block =
                    static_cast<unsigned long long>((static_cast<unsigned __int128>(stride_) * i + offset_) % block_count_);
                error = runner.run(*launch, block);
            }
            std::lock_guard<std::mutex> lock(mutex_);
            if (!error.empty()) {
                next_block_.store(block_count_);  // the launch has failed: stop handing out blocks
                if (error_.empty())
                    error_ = error;
            }
            if (--busy_ == 0)
                all_idle_.notify_one();
        }
    }

    const RunnerSettings settings_;
    std::mutex launch_mutex_;
    std::mutex mutex_;
    std::condition_variable work_ready_;
    std::condition_variable all_idle_;
    const GridLaunch* launch_ = nullptr;
    unsigned long long generation_ = 0;
    unsigned long long block_count_ = 0;
    unsigned long long stride_ = 1;
    unsigned long long offset_ = 0;
    std::atomic<unsigned long long> next_block_{0};
    unsigned busy_ = 0;
    std::string error_;
};

BlockRunner& runner_on_fiber(const char* what)
{
    BlockRunner* runner = BlockRunner::current();
    if (runner == nullptr) {
        std::fprintf(stderr, "kxai-emu: fatal: %s called outside a kernel launch\n", what);
        std::abort();
    }
    return *runner;
}

}  // namespace

RunnerSettings RunnerSettings::from_environment()
{
    RunnerSettings s;
    const char* schedule = std::getenv("KXAI_EMU_SCHEDULE");
    if (schedule == nullptr || *schedule == '\0' || std::strcmp(schedule, "deterministic") == 0) {
        s.schedule = Schedule::deterministic;
    } else if (std::strcmp(schedule, "shuffled") == 0) {
        s.schedule = Schedule::shuffled;
    } else {
        std::fprintf(stderr, "kxai-emu: fatal: KXAI_EMU_SCHEDULE=%s (want deterministic or shuffled)\n",
                     schedule);
        std::abort();
    }
    // Shuffled mode wants interleaving, not throughput: a few workers are enough, and each
    // holds up to 1024 guarded fiber stacks (2048 memory mappings).
    const unsigned default_workers = std::min(4u, std::max(1u, std::thread::hardware_concurrency()));
    s.workers = s.schedule == Schedule::deterministic
                    ? 1u
                    : static_cast<unsigned>(std::max(1ull, env_number("KXAI_EMU_WORKERS", default_workers)));
    s.seed = env_number("KXAI_EMU_SEED", 1);
    s.stack_bytes = static_cast<size_t>(env_number("KXAI_EMU_STACK_KIB", 64)) * 1024;
    if (s.stack_bytes < 16 * 1024)
        fatal("KXAI_EMU_STACK_KIB below 16 cannot hold a kernel frame");
    return s;
}

std::string run_grid(const GridLaunch& launch)
{
    // Leaked on purpose: detached workers may still be parked on its condition variable when
    // the process exits, so it must never be destroyed.
    static WorkerPool* pool = new WorkerPool(RunnerSettings::from_environment());
    return pool->run(launch);
}

}  // namespace kxai_emu

extern "C" {

void kxai_emu_syncthreads(void)
{
    kxai_emu::runner_on_fiber("__syncthreads").syncthreads();
}

unsigned long long kxai_emu_warp_collective(
    kxai_emu_warp_op op, unsigned mask, unsigned long long value, int param, int width)
{
    return kxai_emu::runner_on_fiber(kxai_emu::op_name(op)).warp_op({op, mask, value, param, width});
}

unsigned kxai_emu_active_mask(void)
{
    return kxai_emu::runner_on_fiber("__activemask").active_mask();
}
}
