// shared.cpp: storage for __shared__ declarations. Each declaration gets
// its own malloc block, exactly its size, on the first execution of the
// declaration; every later block reuses it (blocks run one at a time). In
// the checked build, AddressSanitizer's redzones around the block catch
// out-of-bounds shared-memory accesses.
#include "shared.h"

#include <stdio.h>
#include <stdlib.h>

#include <vector>

#include "device.h"

namespace qm_emu {

namespace {
// Regions are created under the launch lock and never freed.
std::vector<SharedRegion>& regions()
{
    static std::vector<SharedRegion>* r = new std::vector<SharedRegion>();
    return *r;
}
} // namespace

void* shared_alloc(size_t bytes, const char* name, const char* site)
{
    void* p = malloc(bytes);
    WordState* words = (WordState*)calloc((bytes + 3) / 4, sizeof(WordState));
    if (!p || !words) {
        fprintf(stderr, "qm_emu: out of host memory for __shared__ %s at %s\n", name, site);
        abort();
    }
    // GPU shared memory starts with whatever was there: make reads of
    // never-written words conspicuous (NaN, -1).
    memset(p, 0xff, bytes);
    regions().push_back(SharedRegion{(uintptr_t)p, bytes, name, site, words});
    return p;
}

SharedRegion* find_shared(uintptr_t addr)
{
    for (SharedRegion& r : regions())
        if (addr - r.base < r.bytes)
            return &r;
    return nullptr;
}

} // namespace qm_emu
