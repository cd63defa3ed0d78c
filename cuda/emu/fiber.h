// fiber.h: user-space context switching, the mechanism behind one fiber per
// CUDA thread. A Fiber is a saved execution context; fiber_switch saves the
// running one and resumes another, on the same OS thread, without the
// kernel's involvement (a few nanoseconds on x86-64).
#ifndef QM_EMU_FIBER_H
#define QM_EMU_FIBER_H

#include <stddef.h>

#if !defined(__x86_64__) || defined(QM_EMU_UCONTEXT)
#define QM_EMU_USE_UCONTEXT 1
#include <ucontext.h>
#endif

namespace qm_emu {

struct Fiber {
#ifdef QM_EMU_USE_UCONTEXT
    ucontext_t context;
#else
    void* sp = nullptr; // the saved stack pointer; the registers lie on that stack
#endif
    // The fiber's stack, for AddressSanitizer's fiber annotations (the OS
    // thread's own stack is learnt when the first fiber starts).
    const void* stack_bottom = nullptr;
    size_t stack_size = 0;
};

// fiber_prepare makes f start entry on the given stack at its first resume.
// entry must never return: it ends with fiber_switch(..., true).
void fiber_prepare(Fiber& f, char* stack, size_t size, void (*entry)());

// fiber_switch saves the running context in from and resumes to; finished
// says from will never be resumed.
void fiber_switch(Fiber& from, Fiber& to, bool finished);

// fiber_entered is the first call of every fiber entry: it completes the
// switch from the fiber that started it (which it records the stack of).
void fiber_entered(Fiber& from);

} // namespace qm_emu

#endif // QM_EMU_FIBER_H
