// scheduler.cpp: one block's threads as fibers.
//
// run_block prepares one fiber per thread and repeats scheduling rounds: in
// a round it resumes every runnable fiber once (in the Order), and each
// runs until it reaches a scheduling point or returns. A fiber at a
// scheduling point is parked (waiting at the block barrier or at a warp
// op). When a round ends with nothing runnable, the scheduler releases
// what can be released:
//
//   - a warp op whose mask's lanes have all arrived: the lanes exchange
//     their values (shuffles) and become runnable;
//   - otherwise the block barrier, when every thread that has not exited
//     waits at it;
//   - otherwise nothing can ever be released: a deadlock, reported with
//     where the threads wait.
//
// Warp ops are released before the barrier because a thread can only be at
// one place: lanes parked at a warp op keep the barrier from being
// complete. The checkers of checks.h run at these release decisions.
#include "scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vector>

#include "checks.h"
#include "fiber.h"
#include "race.h"

namespace qm_emu {

thread_local const ThreadCoords* current_thread;
thread_local const BlockCoords* current_block;
thread_local bool in_atomic;

uint64_t Order::below(uint64_t n)
{
    // splitmix64
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (z ^ (z >> 31)) % n;
}

namespace {

constexpr unsigned max_threads = 1024;

enum class State : uint8_t { runnable, at_barrier, at_warp_op, exited };

struct Thread {
    ThreadCoords coords;
    State state;
    unsigned mask;    // at_warp_op: the op's mask
    int source;       // at_warp_op: the lane whose value it reads (-1: its own)
    const char* site; // where it is parked
    uint64_t value;   // at_warp_op: the value it offers; after release, what it reads
    Fiber fiber;
    char* stack;
};

// The block being run. Launches are serialised (launch.cpp), so one
// instance with max_threads stacks serves the process.
struct Block {
    const Kernel* kernel;
    void* const* params;
    BlockCoords coords;
    unsigned n;
    Thread threads[max_threads];
    Fiber scheduler;
    Thread* running;
    bool failed;
    std::string error;
    size_t stack_size;
};

Block& the_block()
{
    static Block* b = [] {
        Block* b = new Block();
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
#if defined(__SANITIZE_ADDRESS__)
        size_t kib = 256; // AddressSanitizer's redzones make frames larger
#else
        size_t kib = 64;
#endif
        if (const char* s = getenv("QM_EMU_STACK_KIB"))
            kib = (size_t)atoi(s);
        b->stack_size = (kib * 1024 + page - 1) / page * page;
        // Each stack has an inaccessible guard page below it, so that a
        // stack overflow faults instead of corrupting the next stack.
        size_t stride = b->stack_size + page;
        char* all = (char*)mmap(nullptr, stride * max_threads, PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (all == MAP_FAILED) {
            perror("qm_emu: mmap of fiber stacks");
            abort();
        }
        for (unsigned i = 0; i < max_threads; i++) {
            mprotect(all + i * stride, page, PROT_NONE);
            b->threads[i].stack = all + i * stride + page;
        }
        return b;
    }();
    return *b;
}

std::string thread_name(const Thread& t)
{
    char buf[64];
    snprintf(buf, sizeof buf, "thread (%u,%u,%u)", t.coords.idx.x, t.coords.idx.y, t.coords.idx.z);
    return buf;
}

void fail(Block& b, const std::string& msg)
{
    if (b.failed)
        return;
    char buf[64];
    snprintf(buf, sizeof buf, "block (%u,%u,%u): ", b.coords.idx.x, b.coords.idx.y, b.coords.idx.z);
    b.failed = true;
    b.error = buf + msg;
}

// park suspends the running thread until the scheduler resumes it.
void park(State s, const char* site)
{
    Block& b = the_block();
    Thread& t = *b.running;
    t.state = s;
    t.site = site;
    fiber_switch(t.fiber, b.scheduler, s == State::exited);
}

// thread_main is the entry of every fiber.
void thread_main()
{
    Block& b = the_block();
    fiber_entered(b.scheduler);
    b.kernel->invoke(b.params);
    park(State::exited, "");
    abort(); // an exited fiber is never resumed
}

void resume(Block& b, Thread& t)
{
    b.running = &t;
    current_thread = &t.coords;
    fiber_switch(b.scheduler, t.fiber, false);
    current_thread = nullptr;
    b.running = nullptr;
}

// release_warp_op releases warp w's op if all its lanes have arrived, and
// says whether it did.
bool release_warp_op(Block& b, unsigned w)
{
    const bool check = checks().shuffle;
    Thread* lanes = b.threads + w * 32;
    unsigned present = b.n - w * 32 < 32 ? b.n - w * 32 : 32;
    const Thread* first = nullptr;
    for (unsigned l = 0; l < present && !first; l++)
        if (lanes[l].state == State::at_warp_op)
            first = &lanes[l];
    if (!first)
        return false;
    unsigned mask = first->mask, arrived = 0;
    for (unsigned l = 0; l < 32; l++) {
        if (!(mask >> l & 1u))
            continue;
        if (l >= present || lanes[l].state == State::exited) {
            if (check) {
                fail(b, "warp op at " + std::string(first->site) + " (mask 0x" + [&] {
                    char h[16];
                    snprintf(h, sizeof h, "%08x", mask);
                    return std::string(h);
                }() + ") names lane " + std::to_string(l) + (l >= present ? ", which the block does not have" : ", which has exited"));
                return false;
            }
            continue; // unchecked: an absent lane counts as arrived
        }
        if (lanes[l].state != State::at_warp_op)
            return false; // at the block barrier: may be a deadlock, decided later
        if (check && (lanes[l].mask != mask || strcmp(lanes[l].site, first->site) != 0)) {
            fail(b, "lanes of one warp at different warp ops: " + thread_name(*first) + " at " + first->site + ", " +
                    thread_name(lanes[l]) + " at " + lanes[l].site);
            return false;
        }
        arrived |= 1u << l;
    }
    // Every lane reads its source's offered value; offers are read before
    // any result is written, since both live in the same field.
    uint64_t offered[32];
    for (unsigned l = 0; l < 32; l++)
        if (arrived >> l & 1u)
            offered[l] = lanes[l].value;
    for (unsigned l = 0; l < 32; l++) {
        if (!(arrived >> l & 1u))
            continue;
        Thread& t = lanes[l];
        int src = t.source;
        if (src >= 0 && src < 32) {
            if (!(arrived >> src & 1u)) {
                if (check) {
                    fail(b, thread_name(t) + ": shuffle at " + t.site + " reads lane " + std::to_string(src) +
                            ", which its mask does not name");
                    return false;
                }
            } else {
                t.value = offered[src];
            }
        }
        t.state = State::runnable;
    }
    race::warp_passed(w);
    return true;
}

// release_barrier releases the block barrier if every live thread waits at
// it, and says whether it did.
bool release_barrier(Block& b)
{
    const bool check = checks().barrier;
    const Thread* first = nullptr;
    const Thread* gone = nullptr;
    for (unsigned i = 0; i < b.n; i++) {
        const Thread& t = b.threads[i];
        if (t.state == State::exited) {
            gone = gone ? gone : &t;
            continue;
        }
        if (t.state != State::at_barrier)
            return false;
        if (!first)
            first = &t;
        else if (check && strcmp(t.site, first->site) != 0) {
            fail(b, "divergent __syncthreads: " + thread_name(*first) + " waits at " + first->site + ", " +
                    thread_name(t) + " at " + t.site);
            return false;
        }
    }
    if (!first)
        return false;
    if (check && gone) {
        fail(b, "divergent __syncthreads: " + thread_name(*first) + " waits at " + first->site + " but " +
                thread_name(*gone) + " has exited");
        return false;
    }
    for (unsigned i = 0; i < b.n; i++)
        if (b.threads[i].state == State::at_barrier)
            b.threads[i].state = State::runnable;
    race::barrier_passed();
    return true;
}

std::string describe_waits(const Block& b)
{
    std::string msg;
    std::vector<std::string> seen;
    for (unsigned i = 0; i < b.n; i++) {
        const Thread& t = b.threads[i];
        if (t.state != State::at_barrier && t.state != State::at_warp_op)
            continue;
        std::string where = (t.state == State::at_barrier ? " at __syncthreads " : " at warp op ") + std::string(t.site);
        bool dup = false;
        for (const std::string& s : seen)
            dup |= s == where;
        if (!dup) {
            seen.push_back(where);
            msg += "; " + thread_name(t) + where;
        }
    }
    return msg;
}

} // namespace

void sync_block(const char* site)
{
    if (!current_thread)
        trap("__syncthreads outside a kernel", site);
    park(State::at_barrier, site);
}

void sync_warp(unsigned mask, const char* site)
{
    exchange(mask, 0, -1, site);
}

uint64_t exchange(unsigned mask, uint64_t mine, int src, const char* site)
{
    if (!current_thread)
        trap("warp op outside a kernel", site);
    Thread& t = *the_block().running;
    if (!(mask >> lane() & 1u))
        trap("warp op whose mask does not name the calling lane", site);
    t.mask = mask;
    t.value = mine;
    t.source = src;
    park(State::at_warp_op, site);
    return t.value;
}

void trap(const char* what, const char* site)
{
    Block& b = the_block();
    if (!b.running) {
        fprintf(stderr, "qm_emu: %s at %s outside a kernel\n", what, site);
        abort();
    }
    fail(b, thread_name(*b.running) + ": " + what + (*site ? std::string(" at ") + site : std::string()));
    park(State::exited, site);
    abort();
}

bool run_block(const Kernel& k, void* const* params, const BlockCoords& coords, Order& order, std::string* error)
{
    Block& b = the_block();
    b.kernel = &k;
    b.params = params;
    b.coords = coords;
    b.n = coords.dim.x * coords.dim.y * coords.dim.z;
    b.failed = false;
    b.error.clear();
    for (unsigned i = 0; i < b.n; i++) {
        Thread& t = b.threads[i];
        t.coords.idx = uint3{i % coords.dim.x, i / coords.dim.x % coords.dim.y, i / (coords.dim.x * coords.dim.y)};
        t.coords.linear = i;
        t.state = State::runnable;
        t.site = "";
        fiber_prepare(t.fiber, t.stack, b.stack_size, thread_main);
    }
    current_block = &b.coords;
    race::block_started();
    unsigned live = b.n;
    std::vector<unsigned> turn(b.n);
    for (unsigned i = 0; i < b.n; i++)
        turn[i] = i;
    while (live > 0 && !b.failed) {
        if (order.shuffle)
            for (unsigned i = b.n - 1; i > 0; i--)
                std::swap(turn[i], turn[order.below(i + 1)]);
        for (unsigned i = 0; i < b.n && !b.failed; i++) {
            Thread& t = b.threads[turn[i]];
            if (t.state != State::runnable)
                continue;
            resume(b, t);
            if (t.state == State::exited)
                live--;
        }
        if (b.failed || live == 0)
            break;
        bool released = false;
        for (unsigned w = 0; w * 32 < b.n && !b.failed; w++)
            released |= release_warp_op(b, w);
        if (released || b.failed)
            continue;
        if (!release_barrier(b) && !b.failed)
            fail(b, "deadlock: no barrier can be released" + describe_waits(b));
    }
    current_block = nullptr;
    if (b.failed)
        *error = b.error;
    return !b.failed;
}

} // namespace qm_emu
