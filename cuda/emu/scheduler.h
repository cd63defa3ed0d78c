// scheduler.h: runs one block of a launch.
#ifndef QM_EMU_SCHEDULER_H
#define QM_EMU_SCHEDULER_H

#include <stdint.h>

#include <string>

#include "device.h"

namespace qm_emu {

// Order is the schedule: forward (threads, and blocks, in index order) or
// shuffled by a seeded generator (a new permutation of the runnable
// threads at every scheduling round, and of the blocks of every launch).
struct Order {
    bool shuffle = false;
    uint64_t state = 0; // splitmix64 state when shuffling
    // below returns a uniform draw from [0, n).
    uint64_t below(uint64_t n);
};

// run_block runs every thread of one block of kernel k to its end. It
// returns false, with *error saying why, when a thread trapped or a checker
// found a fault; the block's other threads are then abandoned.
bool run_block(const Kernel& k, void* const* params, const BlockCoords& block, Order& order, std::string* error);

} // namespace qm_emu

#endif // QM_EMU_SCHEDULER_H
