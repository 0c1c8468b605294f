// harness.h: a small test runner for the native tests (no dependencies beyond the C++ library).
//
// A SUITE is a function registered at start-up; it runs any number of cases with
// harness::run_case(name, body). A case passes when no CHECK in its body failed; the summary
// counts cases. A case can also be skipped (harness::skip) when the build lacks what it needs.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "cuda_subset.h"

namespace harness {

void register_suite(const char* name, void (*body)());
void run_case(const std::string& name, const std::function<void()>& body);
void skip(const std::string& name, const std::string& why);
void check_failed(const char* file, int line, const std::string& what);

// Paths and facts the tests need, from the environment set by tools/run-tests.sh.
// $KXAI_TEST_PTX_DIR/<module>.ptx, else ptx/ beside this binary or beside its directory.
std::string ptx_path(const char* module);
bool ptx_is_from_nvcc(const char* module);
std::string read_file(const std::string& path);
bool built_with_asan();

// Runs this test binary again as `--child mode` with extra environment entries ("NAME=value"),
// capturing stdout and stderr together.
struct ChildResult {
    int exit_code;  // -1 when killed by a signal
    int signal;
    std::string output;
};
ChildResult run_child(const char* mode, const std::vector<std::string>& extra_env);
void register_child_mode(const char* mode, int (*body)());
// A case that runs a child mode and expects exit status 0 and, unless null, `needle` in its
// output.
void expect_child(const char* name, const char* mode, const std::vector<std::string>& extra_env,
                  const char* needle);

struct SuiteRegistrar {
    SuiteRegistrar(const char* name, void (*body)()) { register_suite(name, body); }
};
struct ChildModeRegistrar {
    ChildModeRegistrar(const char* mode, int (*body)()) { register_child_mode(mode, body); }
};

std::string cu_name(CUresult r);

}  // namespace harness

#define SUITE(name)                                                         \
    static void name();                                                     \
    static const harness::SuiteRegistrar name##_registrar(#name, name);     \
    static void name()

// A mode this binary runs when started as `--child <mode>`; its return value is the exit code.
#define CHILD_MODE(name)                                                             \
    static int child_##name();                                                       \
    static const harness::ChildModeRegistrar child_##name##_registrar(#name, child_##name); \
    static int child_##name()

#define CHECK(cond)                                                  \
    do {                                                             \
        if (!(cond))                                                 \
            harness::check_failed(__FILE__, __LINE__, #cond);        \
    } while (0)

#define CHECK_MSG(cond, ...)                                         \
    do {                                                             \
        if (!(cond)) {                                               \
            char message_[512];                                      \
            std::snprintf(message_, sizeof message_, __VA_ARGS__);   \
            harness::check_failed(__FILE__, __LINE__, message_);     \
        }                                                            \
    } while (0)

// Checks that a driver call returns `expected` and reports both by name otherwise.
#define CHECK_CU(expected, call)                                                          \
    do {                                                                                  \
        const CUresult got_ = (call);                                                     \
        if (got_ != (expected))                                                           \
            harness::check_failed(__FILE__, __LINE__,                                     \
                                  std::string(#call) + " returned " + harness::cu_name(got_) + \
                                      ", expected " + harness::cu_name(expected));        \
    } while (0)
