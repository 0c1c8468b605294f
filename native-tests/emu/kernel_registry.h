// kernel_registry.h: support for the generated registry of a CPU kernel library.
//
// KXAI_EMU_KERNEL(fn, "signature") makes a kxai_emu_kernel entry whose invoke() unpacks
// cuLaunchKernel's kernelParams (one pointer per argument, like the real driver) into a typed
// call of fn, and whose size/kind tables are read off fn's parameter types by the compiler.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "emu_abi.h"

namespace kxai_emu_registry {

template <typename T>
constexpr char kind_of()
{
    if (std::is_pointer_v<T>)
        return 'p';
    if (std::is_floating_point_v<T>)
        return 'f';
    if (std::is_integral_v<T> || std::is_enum_v<T>)
        return 'i';
    return 'o';
}

template <auto Kernel>
struct Thunk;

template <typename... Params, void (*Kernel)(Params...)>
struct Thunk<Kernel> {
    static void invoke(void** args) { call(args, std::index_sequence_for<Params...>{}); }

    template <std::size_t... I>
    static void call([[maybe_unused]] void** args, std::index_sequence<I...>)
    {
        Kernel(*static_cast<std::remove_cv_t<Params>*>(args[I])...);
    }

    // A trailing element keeps the arrays non-empty for kernels without parameters.
    static constexpr unsigned sizes[] = {static_cast<unsigned>(sizeof(Params))..., 0u};
    static constexpr char kinds[] = {kind_of<std::remove_cv_t<Params>>()..., '\0'};
};

}  // namespace kxai_emu_registry

#define KXAI_EMU_KERNEL(fn, signature)                                                        \
    {                                                                                         \
        #fn, signature, &kxai_emu_registry::Thunk<&fn>::invoke,                               \
            static_cast<unsigned>(sizeof(kxai_emu_registry::Thunk<&fn>::sizes) / sizeof(unsigned) - 1), \
            kxai_emu_registry::Thunk<&fn>::sizes, kxai_emu_registry::Thunk<&fn>::kinds        \
    }
