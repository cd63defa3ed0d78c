// emu.h: the emulated device's interface to the fake driver (libcuda.cpp)
// and the fixture runner: find a kernel, launch it, read the counts.
#ifndef QM_EMU_EMU_H
#define QM_EMU_EMU_H

#include <stddef.h>

#include <string>

#include "device.h"

namespace qm_emu {

// find_kernel returns the kernel named name, or null.
const Kernel* find_kernel(const char* name);

// launch runs k on a grid of blocks and returns true, or false with *error
// saying what went wrong (a bad shape, a trap, a checker's finding).
// Launches are serialised: one runs at a time in the process.
//
// QM_EMU_SCHEDULE picks the Order: "forward" (the default) or
// "shuffle:SEED".
bool launch(const Kernel& k, dim3 grid, dim3 block, void* const* params, std::string* error);

} // namespace qm_emu

#endif // QM_EMU_EMU_H
