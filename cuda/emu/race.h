// race.h: the shared-memory race checker. Two threads of a block that
// access one shared-memory word between two __syncthreads, at least one of
// them writing, race: on a GPU the result depends on warp scheduling
// (compute-sanitizer's racecheck reports the same). Lanes of one warp are
// also ordered by a warp op (__syncwarp, a shuffle) between their accesses.
//
// The checker learns of accesses from the checked build's memory hooks
// (checked.cpp) and of barriers from the scheduler. Since fibers of a block
// run one after another, it sees a race whatever order they ran in: it
// compares who touched a word within one barrier interval, not timing.
#ifndef QM_EMU_RACE_H
#define QM_EMU_RACE_H

#include <stddef.h>
#include <stdint.h>

namespace qm_emu {
namespace race {

// block_started and barrier_passed begin a new barrier interval for every
// thread; warp_passed one for the lanes of warp w.
void block_started();
void barrier_passed();
void warp_passed(unsigned w);

// access checks one access by the running thread; pc is the accessing
// instruction (for the report). A race ends the thread with a trap.
void access(uintptr_t addr, size_t bytes, bool write, const void* pc);

} // namespace race

// describe_code returns "function file:line" for a code address (via
// addr2line), or the address if it cannot say.
const char* describe_code(const void* pc);

} // namespace qm_emu

#endif // QM_EMU_RACE_H
