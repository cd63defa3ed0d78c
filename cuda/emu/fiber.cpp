// fiber.cpp: the context switch. On x86-64 it is a few instructions of
// assembly (save the callee-saved registers and the floating-point control
// state on the current stack, swap stack pointers, restore); elsewhere, or
// with -DQM_EMU_UCONTEXT, it is swapcontext, about 50 times slower because
// it saves the signal mask with a system call.
#include "fiber.h"

#include <stdint.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define QM_EMU_ASAN 1
#include <sanitizer/common_interface_defs.h>
#endif

#ifndef QM_EMU_USE_UCONTEXT
// qm_emu_swap(save, to): pushes rbp, rbx, r12-r15 and an 8-byte slot with
// MXCSR and the x87 control word, stores rsp in *save, loads rsp from to and
// pops the same frame from there. The "ret" at the end continues wherever
// the resumed fiber called qm_emu_swap, or, for a new fiber, at its entry
// (fiber_prepare builds that first frame by hand).
extern "C" void qm_emu_swap(void** save, void* to);
asm(R"(
    .text
    .globl qm_emu_swap
    .hidden qm_emu_swap
    .type qm_emu_swap,@function
qm_emu_swap:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size qm_emu_swap,.-qm_emu_swap
    .section .note.GNU-stack,"",@progbits
    .text
)");
#endif

namespace qm_emu {

void fiber_prepare(Fiber& f, char* stack, size_t size, void (*entry)())
{
    f.stack_bottom = stack;
    f.stack_size = size;
#ifdef QM_EMU_USE_UCONTEXT
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = stack;
    f.context.uc_stack.ss_size = size;
    f.context.uc_link = nullptr;
    makecontext(&f.context, entry, 0);
#else
    // The frame qm_emu_swap pops, top of the stack first: the control-word
    // slot, six zeroed registers, then entry as the return address. After
    // that ret, rsp must be 8 mod 16 as right after a call, hence the
    // padding word above it.
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    void** sp = (void**)top;
    *--sp = nullptr; // padding: entry's "return address", never used
    *--sp = (void*)entry;
    for (int i = 0; i < 6; i++)
        *--sp = nullptr;
    --sp;
    uint32_t control[2] = {0, 0};
    asm volatile("stmxcsr %0" : "=m"(control[0]));
    asm volatile("fnstcw %0" : "=m"(control[1]));
    memcpy(sp, control, sizeof control);
    f.sp = sp;
#endif
}

void fiber_switch(Fiber& from, Fiber& to, bool finished)
{
#ifdef QM_EMU_ASAN
    void* fake_stack = nullptr;
    __sanitizer_start_switch_fiber(finished ? nullptr : &fake_stack, to.stack_bottom, to.stack_size);
#else
    (void)finished;
#endif
#ifdef QM_EMU_USE_UCONTEXT
    swapcontext(&from.context, &to.context);
#else
    qm_emu_swap(&from.sp, to.sp);
#endif
#ifdef QM_EMU_ASAN
    __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
}

void fiber_entered(Fiber& from)
{
#ifdef QM_EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &from.stack_bottom, &from.stack_size);
#else
    (void)from;
#endif
}

} // namespace qm_emu
