// checks.h: which of the emulator's checkers are on. All are on unless
// QM_EMU_NOCHECK names them (a comma-separated list of barrier, shuffle,
// race); the fixture tests switch one off to show that its fixture then
// goes unnoticed. Out-of-bounds accesses are AddressSanitizer's job: they
// are checked in the "checked" build (see Makefile), not switched here.
#ifndef QM_EMU_CHECKS_H
#define QM_EMU_CHECKS_H

namespace qm_emu {

struct Checks {
    // barrier: every thread of a block reaches the same __syncthreads, and
    // none has exited when the others reach one.
    bool barrier = true;
    // shuffle: every lane a warp op's mask names exists, has not exited,
    // and reaches the same op; a shuffle reads only lanes of its mask.
    bool shuffle = true;
    // race: no two threads of a block access one shared-memory word
    // between two barriers, one of them writing (needs the checked build).
    bool race = true;
};

// checks returns the configuration, read from the environment once.
const Checks& checks();

} // namespace qm_emu

#endif // QM_EMU_CHECKS_H
