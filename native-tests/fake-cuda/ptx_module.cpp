// ptx_module.cpp: a tokenizer and just enough of a PTX reader for module loading.
#include "ptx_module.h"

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace kxai_emu {
namespace {

// Tokens are identifiers/directives/numbers, or one of the punctuation characters below.
std::vector<std::string> tokenize(const char* text)
{
    std::vector<std::string> tokens;
    const char* p = text;
    while (*p != '\0') {
        if (std::isspace(static_cast<unsigned char>(*p))) {
            ++p;
        } else if (p[0] == '/' && p[1] == '/') {
            while (*p != '\0' && *p != '\n')
                ++p;
        } else if (p[0] == '/' && p[1] == '*') {
            const char* end = std::strstr(p + 2, "*/");
            p = end == nullptr ? p + std::strlen(p) : end + 2;
        } else if (std::strchr("(){}[],;", *p) != nullptr) {
            tokens.emplace_back(1, *p++);
        } else {
            const char* start = p;
            while (*p != '\0' && !std::isspace(static_cast<unsigned char>(*p)) &&
                   std::strchr("(){}[],;", *p) == nullptr && !(p[0] == '/' && (p[1] == '/' || p[1] == '*')))
                ++p;
            tokens.emplace_back(start, p);
        }
    }
    return tokens;
}

// Width in bytes of a PTX fundamental type, 0 for anything else.
unsigned type_bytes(const std::string& t)
{
    static const struct {
        const char* name;
        unsigned bytes;
    } types[] = {{".b8", 1},  {".u8", 1},  {".s8", 1},  {".b16", 2}, {".u16", 2}, {".s16", 2},
                 {".f16", 2}, {".b32", 4}, {".u32", 4}, {".s32", 4}, {".f32", 4}, {".b64", 8},
                 {".u64", 8}, {".s64", 8}, {".f64", 8}};
    for (const auto& type : types)
        if (t == type.name)
            return type.bytes;
    return 0;
}

class Reader {
public:
    explicit Reader(std::vector<std::string> tokens) : t_(std::move(tokens)) {}

    std::string read(PtxModule* m)
    {
        unsigned module_shared = 0;
        for (i_ = 0; i_ < t_.size();) {
            const std::string& tok = t_[i_];
            if (tok == ".version" && i_ + 1 < t_.size()) {
                if (std::sscanf(t_[i_ + 1].c_str(), "%d.%d", &m->version_major, &m->version_minor) != 2)
                    return "unreadable .version " + t_[i_ + 1];
                i_ += 2;
            } else if (tok == ".target" && i_ + 1 < t_.size()) {
                if (std::sscanf(t_[i_ + 1].c_str(), "sm_%d", &m->target_sm) != 1)
                    return "unreadable .target " + t_[i_ + 1];
                i_ += 2;
            } else if (tok == ".entry") {
                PtxEntry entry;
                std::string error = read_entry(&entry);
                if (!error.empty())
                    return error;
                m->entries.push_back(std::move(entry));
            } else if (tok == "{") {
                skip_braces(nullptr);  // a .func body
            } else if (tok == ".shared" && !(i_ > 0 && t_[i_ - 1] == ".extern")) {
                module_shared += read_shared_declaration();
            } else {
                ++i_;
            }
        }
        if (m->version_major == 0)
            return "no .version directive (not PTX text)";
        for (PtxEntry& e : m->entries)
            e.static_shared_bytes += module_shared;
        return "";
    }

private:
    bool at(const char* s) const { return i_ < t_.size() && t_[i_] == s; }

    std::string read_entry(PtxEntry* e)
    {
        ++i_;  // .entry
        if (i_ >= t_.size())
            return "truncated .entry";
        e->name = t_[i_++];
        if (!at("("))
            return ".entry " + e->name + " has no parameter list";
        ++i_;
        while (!at(")")) {
            if (i_ >= t_.size())
                return ".entry " + e->name + ": unterminated parameter list";
            if (!at(".param"))
                return ".entry " + e->name + ": unexpected '" + t_[i_] + "' in parameter list";
            PtxParam p{"", 0};
            unsigned count = 1;
            for (++i_; i_ < t_.size() && !at(",") && !at(")"); ++i_) {
                if (type_bytes(t_[i_]) != 0) {
                    p.type = t_[i_];
                } else if (at("[") && i_ + 1 < t_.size()) {
                    count = static_cast<unsigned>(std::strtoul(t_[i_ + 1].c_str(), nullptr, 10));
                }
            }
            if (p.type.empty())
                return ".entry " + e->name + ": parameter without a type";
            p.bytes = type_bytes(p.type) * count;
            e->params.push_back(p);
            if (at(","))
                ++i_;
        }
        ++i_;  // )
        // Performance directives sit between the parameter list and the body.
        while (i_ < t_.size() && !at("{") && !at(";")) {
            if (at(".maxntid")) {
                unsigned product = 1;
                for (++i_; i_ < t_.size() && std::isdigit(static_cast<unsigned char>(t_[i_][0]));) {
                    product *= static_cast<unsigned>(std::strtoul(t_[i_].c_str(), nullptr, 10));
                    ++i_;
                    if (at(","))
                        ++i_;
                }
                e->max_threads = product;
            } else {
                ++i_;
            }
        }
        if (at("{"))
            skip_braces(e);
        return "";
    }

    // Skips a { ... } body starting at t_[i_] == "{", adding its .shared declarations to e.
    void skip_braces(PtxEntry* e)
    {
        int depth = 0;
        do {
            if (at("{")) {
                ++depth;
            } else if (at("}")) {
                --depth;
            } else if (at(".shared") && e != nullptr && t_[i_ - 1] != ".extern") {
                e->static_shared_bytes += read_shared_declaration();
                continue;
            }
            ++i_;
        } while (depth > 0 && i_ < t_.size());
    }

    // `.shared [.align N] .TYPE name[ COUNT ] ;` (a variable, not a `ld.shared` instruction,
    // which is a single token). Leaves i_ after the declaration.
    unsigned read_shared_declaration()
    {
        unsigned width = 0, count = 1;
        for (++i_; i_ < t_.size() && !at(";"); ++i_) {
            if (type_bytes(t_[i_]) != 0)
                width = type_bytes(t_[i_]);
            else if (at("[") && i_ + 1 < t_.size())
                count = static_cast<unsigned>(std::strtoul(t_[i_ + 1].c_str(), nullptr, 10));
        }
        return width * count;
    }

    std::vector<std::string> t_;
    size_t i_ = 0;
};

}  // namespace

std::string parse_ptx(const char* text, PtxModule* module)
{
    return Reader(tokenize(text)).read(module);
}

}  // namespace kxai_emu
