// launch.cpp: a kernel launch on the emulated device: the shape checks,
// the block order, the lock that makes launches one at a time, and the
// launch census (QM_EMU_CENSUS).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mutex>
#include <vector>

#include "census.h"
#include "emu.h"
#include "scheduler.h"

namespace qm_emu {

namespace {

std::mutex launch_lock;

// schedule_order reads QM_EMU_SCHEDULE once.
Order schedule_order()
{
    static const Order order = [] {
        Order o;
        const char* s = getenv("QM_EMU_SCHEDULE");
        if (!s || !*s || strcmp(s, "forward") == 0)
            return o;
        if (strncmp(s, "shuffle:", 8) == 0) {
            o.shuffle = true;
            o.state = strtoull(s + 8, nullptr, 10);
            return o;
        }
        fprintf(stderr, "qm_emu: QM_EMU_SCHEDULE=%s: want forward or shuffle:SEED\n", s);
        exit(2);
    }();
    return order;
}

bool shape_ok(dim3 g, dim3 b)
{
    unsigned long long threads = (unsigned long long)b.x * b.y * b.z;
    return g.x >= 1 && g.y >= 1 && g.z >= 1 && g.x <= 0x7fffffffu && g.y <= 65535 && g.z <= 65535 && b.x >= 1 &&
        b.y >= 1 && b.z >= 1 && b.x <= 1024 && b.y <= 1024 && b.z <= 64 && threads <= 1024;
}

} // namespace

const Kernel* find_kernel(const char* name)
{
    for (size_t i = 0; i < kernel_count; i++)
        if (strcmp(kernel_table[i].name, name) == 0)
            return &kernel_table[i];
    return nullptr;
}

bool launch(const Kernel& k, dim3 grid, dim3 block, void* const* params, std::string* error)
{
    if (!shape_ok(grid, block)) {
        char buf[160];
        snprintf(buf, sizeof buf, "%s: invalid launch shape: grid %u×%u×%u, block %u×%u×%u", k.name, grid.x, grid.y,
            grid.z, block.x, block.y, block.z);
        *error = buf;
        return false;
    }
    std::lock_guard<std::mutex> hold(launch_lock);
    static Order order = schedule_order(); // its generator advances from launch to launch
    static const Census census("kernels");
    census.count(k.name);
    unsigned long long blocks = (unsigned long long)grid.x * grid.y * grid.z;
    // The block order: the identity, or a Fisher-Yates shuffle of it.
    std::vector<unsigned long long> perm;
    if (order.shuffle) {
        perm.resize(blocks);
        for (unsigned long long i = 0; i < blocks; i++)
            perm[i] = i;
        for (unsigned long long i = blocks - 1; i > 0; i--)
            std::swap(perm[i], perm[order.below(i + 1)]);
    }
    BlockCoords c;
    c.dim = block;
    c.grid = grid;
    for (unsigned long long i = 0; i < blocks; i++) {
        unsigned long long j = order.shuffle ? perm[i] : i;
        c.idx = uint3{(unsigned)(j % grid.x), (unsigned)(j / grid.x % grid.y),
            (unsigned)(j / ((unsigned long long)grid.x * grid.y))};
        std::string why;
        if (!run_block(k, params, c, order, &why)) {
            *error = std::string(k.name) + ": " + why;
            return false;
        }
    }
    return true;
}

} // namespace qm_emu
