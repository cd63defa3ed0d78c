// race.cpp: the shared-memory race checker (see race.h) and code-address
// descriptions for its reports.
#include "race.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <string>

#include "checks.h"
#include "device.h"
#include "shared.h"

namespace qm_emu {
namespace race {

namespace {
uint32_t interval = 1;      // the block's current barrier interval
uint32_t warp_epoch[32];    // warp ops passed, per warp of the block (never reset)

// ordered says whether the access recorded for thread u (at warp epoch
// u_epoch) happened before a warp op that also ordered thread t.
bool ordered(int u, uint32_t u_epoch, unsigned t)
{
    return (unsigned)u >> 5 == t >> 5 && warp_epoch[t >> 5] > u_epoch;
}

std::string thread_name(unsigned linear)
{
    const dim3& d = current_block->dim;
    char buf[64];
    snprintf(buf, sizeof buf, "thread (%u,%u,%u)", linear % d.x, linear / d.x % d.y, linear / (d.x * d.y));
    return buf;
}

[[noreturn]] void report(const SharedRegion& r, uintptr_t addr, bool write, int other, bool other_wrote,
    const void* pc)
{
    std::string what = "shared-memory race on " + std::string(r.name) + " (declared at " + r.site + "), byte " +
        std::to_string(addr - r.base) + ": " + (write ? "writes" : "reads") + " at " + describe_code(pc) +
        " the word that " + (other == -2 ? std::string("several other threads") : thread_name((unsigned)other)) +
        (other_wrote ? " wrote" : " read") + " since the last barrier";
    static std::string message; // trap keeps the pointer until the launch ends
    message = what;
    trap(message.c_str(), "");
}
} // namespace

void block_started() { interval++; }
void barrier_passed() { interval++; }
void warp_passed(unsigned w) { warp_epoch[w & 31]++; }

void access(uintptr_t addr, size_t bytes, bool write, const void* pc)
{
    if (!current_thread || in_atomic || !checks().race)
        return;
    SharedRegion* r = find_shared(addr);
    if (!r)
        return;
    unsigned t = current_thread->linear;
    uint32_t my_epoch = warp_epoch[t >> 5];
    size_t first = (addr - r->base) / 4, last = (addr + bytes - 1 - r->base) / 4;
    for (size_t i = first; i <= last && i * 4 < r->bytes; i++) {
        WordState& w = r->words[i];
        if (w.interval != interval)
            w = WordState{interval, -1, -1, 0, 0};
        if (w.writer >= 0 && w.writer != (int)t && !ordered(w.writer, w.writer_warp_epoch, t))
            report(*r, addr, write, w.writer, true, pc);
        if (write) {
            if (w.reader == -2 || (w.reader >= 0 && w.reader != (int)t && !ordered(w.reader, w.reader_warp_epoch, t)))
                report(*r, addr, write, w.reader, false, pc);
            w.writer = (int16_t)t;
            w.writer_warp_epoch = my_epoch;
        } else if (w.reader == -1 || w.reader == (int)t || ordered(w.reader, w.reader_warp_epoch, t)) {
            w.reader = (int16_t)t;
            w.reader_warp_epoch = my_epoch;
        } else {
            w.reader = -2;
        }
    }
}

} // namespace race

const char* describe_code(const void* pc)
{
    static std::string text;
    char buf[256];
    snprintf(buf, sizeof buf, "%p", pc);
    text = buf;
    Dl_info info;
    if (!dladdr(pc, &info) || !info.dli_fname)
        return text.c_str();
    // pc is a return address: the access is the instruction before it.
    uintptr_t offset = (uintptr_t)pc - (uintptr_t)info.dli_fbase - 1;
    char hex[32];
    snprintf(hex, sizeof hex, "0x%zx", (size_t)offset);
    std::string cmd = "addr2line -C -f -e '" + std::string(info.dli_fname) + "' " + hex + " 2>/dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p)
        return text.c_str();
    char func[256] = "", line[512] = "";
    if (fgets(func, sizeof func, p) && fgets(line, sizeof line, p)) {
        func[strcspn(func, "\n")] = 0;
        line[strcspn(line, "\n (")] = 0;
        text = std::string(line) + " (" + func + ")";
    }
    pclose(p);
    return text.c_str();
}

} // namespace qm_emu
