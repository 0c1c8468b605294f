// ptx_module.h: what the fake driver needs to know about a PTX module, read from its text.
#pragma once

#include <string>
#include <vector>

namespace kxai_emu {

struct PtxParam {
    std::string type;  // ".u64", ".f32", ".b8" (structs are .b8 arrays) ...
    unsigned bytes;    // width times array length
};

struct PtxEntry {
    std::string name;
    std::vector<PtxParam> params;
    unsigned static_shared_bytes = 0;  // .shared variables declared in the body (or module-wide)
    unsigned max_threads = 0;          // product of .maxntid (__launch_bounds__); 0 when absent
};

struct PtxModule {
    int version_major = 0;  // .version (the PTX ISA version, which the driver must know)
    int version_minor = 0;
    int target_sm = 0;      // .target sm_NN
    std::vector<PtxEntry> entries;
};

// Parses the directives the emulator uses and ignores instructions. Returns "" on success,
// else why the text is not a PTX module.
std::string parse_ptx(const char* text, PtxModule* module);

}  // namespace kxai_emu
