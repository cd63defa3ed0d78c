// launch.cpp: a kernel launch on the emulated device: the shape checks,
// the block order, the lock that makes launches one at a time, and the
// launch census (QM_EMU_CENSUS).
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <mutex>
#include <vector>

#include "emu.h"
#include "scheduler.h"

namespace qm_emu {

namespace {

// Census counts launches per kernel. With QM_EMU_CENSUS=DIR, the counts
// live in DIR/PID.counts, a file mapped into memory (one 64-bit count per
// kernel, in the order of DIR/PID.names), so that they are complete
// however the process ends: a Go program exits without running C++
// destructors. make test-emu sums them over every process of the suite.
struct Census {
    uint64_t* launches = nullptr;

    Census()
    {
        const char* dir = getenv("QM_EMU_CENSUS");
        if (dir && *dir)
            launches = map_file(dir);
        if (!launches)
            launches = new uint64_t[kernel_count]();
    }

    static uint64_t* map_file(const std::string& dir)
    {
        std::string base = dir + "/" + std::to_string(getpid());
        FILE* names = fopen((base + ".names").c_str(), "w");
        if (!names) {
            perror((base + ".names").c_str());
            return nullptr;
        }
        for (size_t i = 0; i < kernel_count; i++)
            fprintf(names, "%s\n", kernel_table[i].name);
        fclose(names);
        size_t bytes = kernel_count * sizeof(uint64_t);
        int fd = open((base + ".counts").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || ftruncate(fd, (off_t)bytes) != 0) {
            perror((base + ".counts").c_str());
            return nullptr;
        }
        void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        return m == MAP_FAILED ? nullptr : (uint64_t*)m;
    }
};

Census& census()
{
    static Census c;
    return c;
}

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
    census().launches[(size_t)(&k - kernel_table)]++;
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
