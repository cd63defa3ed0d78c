// device.h: what kernels/*.cu need to compile as host C++ for the emulated
// device. gen-kernels.sh includes it before the kernel sources.
//
// Execution model (scheduler.cpp): a launch runs its blocks one after
// another on the calling OS thread; every CUDA thread of a block is a fiber
// with its own stack. A fiber runs until it reaches a scheduling point —
// __syncthreads, __syncwarp or a warp shuffle — or returns; the scheduler
// then runs the next fiber. When no fiber can run, it releases the barrier
// everyone waits at, or reports why none can be released (a divergent
// __syncthreads, a shuffle naming an exited lane).
//
// Shared memory: gen-kernels.sh rewrites every `__shared__ T name[..];`
// into QM_EMU_SHARED(T, name, [..]), a reference to a heap block of the
// same size (shared.cpp). Blocks run one at a time, so every block can use
// the same storage; being heap memory, it is covered by AddressSanitizer
// (redzones) and by the race checker in the checked build.
#ifndef QM_EMU_DEVICE_H
#define QM_EMU_DEVICE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmath>
#include <type_traits>
#include <utility>

// ---- keywords --------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __restrict__ __restrict
#define __constant__ static
// A __shared__ that gen-kernels.sh did not rewrite fails to compile here.
#define __shared__ qm_emu_shared_declaration_not_rewritten_by_gen_kernels_sh

#define QM_EMU_STR2(x) #x
#define QM_EMU_STR(x) QM_EMU_STR2(x)
// QM_EMU_SITE is "file:line" of the code that uses it.
#define QM_EMU_SITE __FILE__ ":" QM_EMU_STR(__LINE__)

namespace qm_emu {

struct uint3 {
    unsigned int x, y, z;
};
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

// ThreadCoords and BlockCoords are what device code reads of the running
// thread and block (scheduler.cpp keeps them current).
struct ThreadCoords {
    uint3 idx;
    unsigned linear; // x + bdim.x·(y + bdim.y·z): the lane is linear % 32
};
struct BlockCoords {
    uint3 idx;
    dim3 dim, grid;
};
extern thread_local const ThreadCoords* current_thread;
extern thread_local const BlockCoords* current_block;

// Scheduling points (scheduler.cpp); site is "file:line" for messages.
void sync_block(const char* site);
void sync_warp(unsigned mask, const char* site);
// A shuffle: publish this lane's 8-byte value, wait for the lanes of mask,
// and return lane src's value (src outside 0..31: the caller's own).
uint64_t exchange(unsigned mask, uint64_t mine, int src, const char* site);
[[noreturn]] void trap(const char* what, const char* site);

// shared_alloc returns the storage of one __shared__ declaration, the same
// for every block (shared.cpp).
void* shared_alloc(size_t bytes, const char* name, const char* site);

inline unsigned lane() { return current_thread->linear & 31u; }

} // namespace qm_emu

using qm_emu::dim3;
using qm_emu::uint3;

#define threadIdx (::qm_emu::current_thread->idx)
#define blockIdx (::qm_emu::current_block->idx)
#define blockDim (::qm_emu::current_block->dim)
#define gridDim (::qm_emu::current_block->grid)
static constexpr int warpSize = 32;

#define QM_EMU_SHARED(T, name, dims)                                                                                  \
    static T(&name) dims = *static_cast<T(*) dims>(::qm_emu::shared_alloc(sizeof(T dims), #name, QM_EMU_SITE))

// ---- synchronisation -------------------------------------------------------
#define __syncthreads() ::qm_emu::sync_block(QM_EMU_SITE)
#define __syncwarp(...) ::qm_emu::sync_warp(::qm_emu::full_mask_unless(__VA_ARGS__), QM_EMU_SITE)
#define __threadfence() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define __threadfence_block() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define __trap() ::qm_emu::trap("__trap()", QM_EMU_SITE)

namespace qm_emu {
inline unsigned full_mask_unless() { return 0xffffffffu; }
inline unsigned full_mask_unless(unsigned m) { return m; }

// shuffle moves a value of up to 8 bytes from lane src to the caller.
template <class T>
T shuffle(unsigned mask, T v, int src, const char* site)
{
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffles move 8 bytes at most");
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof(T));
    bits = exchange(mask, bits, src, site);
    T r;
    memcpy(&r, &bits, sizeof(T));
    return r;
}

// The source lanes of the four shuffles, as the CUDA programming guide
// defines them for a width that divides 32; -1 means "own value".
inline int xor_source(unsigned l, int m, int width)
{
    int s = (int)(l ^ (unsigned)m);
    return s / width > (int)l / width ? -1 : s;
}
inline int down_source(unsigned l, unsigned d, int width)
{
    return (int)(l % (unsigned)width + d) >= width ? -1 : (int)(l + d);
}
inline int up_source(unsigned l, unsigned d, int width)
{
    return (int)(l % (unsigned)width) - (int)d < 0 ? -1 : (int)l - (int)d;
}
inline int idx_source(unsigned l, int s, int width)
{
    return (int)(l / (unsigned)width * (unsigned)width) + ((s % width) + width) % width;
}
} // namespace qm_emu

#define __shfl_xor_sync(mask, v, m, ...) ::qm_emu::shuffle(mask, v, ::qm_emu::xor_source(::qm_emu::lane(), m, ::qm_emu::width_or_32(__VA_ARGS__)), QM_EMU_SITE)
#define __shfl_down_sync(mask, v, d, ...) ::qm_emu::shuffle(mask, v, ::qm_emu::down_source(::qm_emu::lane(), d, ::qm_emu::width_or_32(__VA_ARGS__)), QM_EMU_SITE)
#define __shfl_up_sync(mask, v, d, ...) ::qm_emu::shuffle(mask, v, ::qm_emu::up_source(::qm_emu::lane(), d, ::qm_emu::width_or_32(__VA_ARGS__)), QM_EMU_SITE)
#define __shfl_sync(mask, v, s, ...) ::qm_emu::shuffle(mask, v, ::qm_emu::idx_source(::qm_emu::lane(), s, ::qm_emu::width_or_32(__VA_ARGS__)), QM_EMU_SITE)
namespace qm_emu {
inline int width_or_32() { return 32; }
inline int width_or_32(int w) { return w; }
} // namespace qm_emu

// ---- atomics ---------------------------------------------------------------
// Blocks run one at a time and fibers switch only at scheduling points, so
// a read-modify-write is atomic as written. AtomicSection tells the race
// checker (race.cpp) that the accesses inside are atomics, which do not
// race with each other.
namespace qm_emu {
extern thread_local bool in_atomic;
struct AtomicSection {
    AtomicSection() { in_atomic = true; }
    ~AtomicSection() { in_atomic = false; }
};
} // namespace qm_emu

template <class T>
inline T atomicCAS(T* p, T compare, T val)
{
    ::qm_emu::AtomicSection s;
    T old = *p;
    if (old == compare)
        *p = val;
    return old;
}
template <class T>
inline T atomicAdd(T* p, T v)
{
    ::qm_emu::AtomicSection s;
    T old = *p;
    *p = old + v;
    return old;
}
template <class T>
inline T atomicExch(T* p, T v)
{
    ::qm_emu::AtomicSection s;
    T old = *p;
    *p = v;
    return old;
}
template <class T>
inline T atomicMax(T* p, T v)
{
    ::qm_emu::AtomicSection s;
    T old = *p;
    *p = old > v ? old : v;
    return old;
}
template <class T>
inline T atomicMin(T* p, T v)
{
    ::qm_emu::AtomicSection s;
    T old = *p;
    *p = old < v ? old : v;
    return old;
}

// ---- device functions ------------------------------------------------------
// <math.h> gives expf, logf, tanhf, sqrtf, fmaxf, rintf, ... with CUDA's
// names; CUDA's transcendental functions are within 1-2 ulp of glibc's,
// not bit-identical.
using std::isinf;
using std::isnan;
template <class T>
inline T __ldg(const T* p)
{
    return *p;
}
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline int __float2int_rn(float x) { return (int)rintf(x); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }

// ---- kernel table ----------------------------------------------------------
namespace qm_emu {
// An Invoker calls a kernel with its arguments read from a cuLaunchKernel
// parameter array (one pointer per parameter, to the parameter's value).
using Invoker = void (*)(void* const* params);

template <class... A, size_t... I>
inline void call_with(void (*kernel)(A...), void* const* params, std::index_sequence<I...>)
{
    kernel(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(params[I])...);
}
template <class... A>
constexpr size_t parameter_count(void (*)(A...))
{
    return sizeof...(A);
}
template <auto Kernel>
void invoke(void* const* params)
{
    call_with(Kernel, params, std::make_index_sequence<parameter_count(Kernel)>{});
}

struct Kernel {
    const char* name;
    Invoker invoke;
};
// kernel_table is defined by the generated translation unit, from the
// table kernelgen writes (cuda/emu/kernels.inc).
extern const Kernel kernel_table[];
extern const size_t kernel_count;
} // namespace qm_emu

// QM_EMU_KERNEL(name, type) is the table entry of the kernel name, whose
// function type kernelgen read as type, e.g. void(const float*, int): the
// static_cast does not compile unless the kernel has exactly that type,
// so the emulator's table, the Go launchers and the kernels agree.
#define QM_EMU_KERNEL(name, type) {#name, &::qm_emu::invoke<static_cast<std::add_pointer_t<type>>(&name)>},

#endif // QM_EMU_DEVICE_H
