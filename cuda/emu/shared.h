// shared.h: the storage of __shared__ declarations (see device.h).
#ifndef QM_EMU_SHARED_H
#define QM_EMU_SHARED_H

#include <stddef.h>
#include <stdint.h>

namespace qm_emu {

// SharedRegion is one __shared__ declaration's storage. word_state is the
// race checker's record per 4-byte word.
struct WordState {
    uint32_t interval;          // barrier interval of the records below
    int16_t writer, reader;     // thread (linear id), -1 none, -2 several readers
    uint32_t writer_warp_epoch; // warp ops the writer's warp had passed
    uint32_t reader_warp_epoch;
};
struct SharedRegion {
    uintptr_t base;
    size_t bytes;
    const char* name;
    const char* site;
    WordState* words;
};

// find_shared returns the region holding addr, or null.
SharedRegion* find_shared(uintptr_t addr);

} // namespace qm_emu

#endif // QM_EMU_SHARED_H
