// checked.cpp: the memory hooks of the checked build.
//
// The kernels of the checked build are compiled with -fsanitize=address and
// --param asan-instrumentation-with-call-threshold=0, so that every load
// and store they make calls __asan_loadN / __asan_storeN instead of an
// inline shadow check. This file defines those functions (hidden, so the
// kernels bind to them rather than to libasan's): each hands the access to
// the race checker, then does AddressSanitizer's own check and, on a bad
// address, its report (with the kernel's file:line in the stack).
//
// One gap: the compiler omits the call where it can prove an access in
// bounds of a variable it sees, which is why device.h turns __shared__
// arrays into references to heap blocks (those accesses are always seen).
#include <sanitizer/asan_interface.h>
#include <stddef.h>
#include <stdint.h>

#include "race.h"

#define HOOK extern "C" __attribute__((visibility("hidden")))

extern "C" {
void __asan_report_load1(uintptr_t);
void __asan_report_load2(uintptr_t);
void __asan_report_load4(uintptr_t);
void __asan_report_load8(uintptr_t);
void __asan_report_load16(uintptr_t);
void __asan_report_load_n(uintptr_t, size_t);
void __asan_report_store1(uintptr_t);
void __asan_report_store2(uintptr_t);
void __asan_report_store4(uintptr_t);
void __asan_report_store8(uintptr_t);
void __asan_report_store16(uintptr_t);
void __asan_report_store_n(uintptr_t, size_t);
}

namespace {
inline bool poisoned(uintptr_t a, size_t n) { return __asan_region_is_poisoned((void*)a, n) != nullptr; }
} // namespace

#define QM_EMU_HOOKS(n)                                                                                               \
    HOOK void __asan_load##n(uintptr_t a)                                                                             \
    {                                                                                                                 \
        qm_emu::race::access(a, n, false, __builtin_return_address(0));                                              \
        if (poisoned(a, n))                                                                                           \
            __asan_report_load##n(a);                                                                                 \
    }                                                                                                                 \
    HOOK void __asan_store##n(uintptr_t a)                                                                            \
    {                                                                                                                 \
        qm_emu::race::access(a, n, true, __builtin_return_address(0));                                               \
        if (poisoned(a, n))                                                                                           \
            __asan_report_store##n(a);                                                                                \
    }
QM_EMU_HOOKS(1)
QM_EMU_HOOKS(2)
QM_EMU_HOOKS(4)
QM_EMU_HOOKS(8)
QM_EMU_HOOKS(16)

HOOK void __asan_loadN(uintptr_t a, size_t n)
{
    qm_emu::race::access(a, n, false, __builtin_return_address(0));
    if (poisoned(a, n))
        __asan_report_load_n(a, n);
}

HOOK void __asan_storeN(uintptr_t a, size_t n)
{
    qm_emu::race::access(a, n, true, __builtin_return_address(0));
    if (poisoned(a, n))
        __asan_report_store_n(a, n);
}
