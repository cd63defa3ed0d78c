// libcuda.cpp: the fake CUDA driver, built as libcuda.so.1. It exports the
// driver entry points cuda/driver.go resolves, implemented on the host:
//
//   - device memory is host memory: cuMemAlloc_v2 is malloc of exactly the
//     size asked for (so AddressSanitizer's redzone starts right after the
//     last byte), filled with 0xff bytes so that reads of memory nothing
//     wrote show up as NaN or -1;
//   - work runs when it is issued, so streams and contexts are tokens and
//     synchronising returns at once;
//   - cuModuleLoadData accepts the fatbin without reading it: the kernels
//     are compiled in (gen-kernels.sh), and cuLaunchKernel runs them on the
//     emulated device (launch.cpp);
//   - a failed launch is sticky, as on a GPU: every later call that would
//     touch the device returns CUDA_ERROR_LAUNCH_FAILED;
//   - cuDriverGetVersion reports QM_EMU_DRIVER_VERSION (default 13000,
//     CUDA 13.0), which the fake NVML and cuBLAS read too.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mutex>
#include <string>
#include <unordered_map>

#include "emu.h"

#define API extern "C" __attribute__((visibility("default")))

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef void* CUcontext;
typedef void* CUmodule;
typedef const void* CUfunction;
typedef void* CUstream;

namespace {

enum : CUresult {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_IMAGE = 200,
    CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_LAUNCH_FAILED = 719,
};

// The device's size: what cuDeviceTotalMem and cuMemGetInfo report and
// cuMemAlloc enforces (QM_EMU_MEMORY_MIB, default 8 GiB).
size_t device_bytes()
{
    static const size_t n = [] {
        const char* s = getenv("QM_EMU_MEMORY_MIB");
        return (s && *s ? (size_t)atoll(s) : (size_t)8192) << 20;
    }();
    return n;
}

std::mutex memory_lock;
std::unordered_map<CUdeviceptr, size_t> allocations;
size_t allocated;

CUresult sticky; // the first failed launch's code, returned from then on
char context_token, module_token, stream_token;

} // namespace

#define RETURN_IF_STICKY()                                                                                            \
    do {                                                                                                              \
        if (sticky)                                                                                                   \
            return sticky;                                                                                            \
    } while (0)

API CUresult cuInit(unsigned int) { return CUDA_SUCCESS; }

// The CUDA version the fake driver runs: QM_EMU_DRIVER_VERSION
// (1000·major + 10·minor, as cuDriverGetVersion gives it), default 13000.
API CUresult cuDriverGetVersion(int* v)
{
    if (!v)
        return CUDA_ERROR_INVALID_VALUE;
    const char* s = getenv("QM_EMU_DRIVER_VERSION");
    *v = s && *s ? atoi(s) : 13000;
    return CUDA_SUCCESS;
}

API CUresult cuDeviceGetCount(int* n)
{
    *n = 1;
    return CUDA_SUCCESS;
}

API CUresult cuDeviceGet(CUdevice* d, int ordinal)
{
    if (ordinal != 0)
        return CUDA_ERROR_INVALID_DEVICE;
    *d = 0;
    return CUDA_SUCCESS;
}

API CUresult cuDeviceGetName(char* name, int len, CUdevice)
{
    snprintf(name, (size_t)len, "emulated device (kernels/*.cu on the CPU)");
    return CUDA_SUCCESS;
}

API CUresult cuDeviceGetAttribute(int* v, int attr, CUdevice)
{
    switch (attr) {
    case 16: // CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: sizes grid-stride launches
        *v = getenv("QM_EMU_SMS") ? atoi(getenv("QM_EMU_SMS")) : 2;
        return CUDA_SUCCESS;
    case 75: // compute capability major
        *v = 8;
        return CUDA_SUCCESS;
    case 76: // minor
        *v = 0;
        return CUDA_SUCCESS;
    }
    return CUDA_ERROR_INVALID_VALUE;
}

API CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice)
{
    *bytes = device_bytes();
    return CUDA_SUCCESS;
}

API CUresult cuDevicePrimaryCtxRetain(CUcontext* c, CUdevice)
{
    *c = &context_token;
    return CUDA_SUCCESS;
}
API CUresult cuDevicePrimaryCtxRelease_v2(CUdevice) { return CUDA_SUCCESS; }
API CUresult cuCtxSetCurrent(CUcontext) { return CUDA_SUCCESS; }
API CUresult cuCtxSynchronize(void)
{
    RETURN_IF_STICKY();
    return CUDA_SUCCESS;
}

API CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes)
{
    RETURN_IF_STICKY();
    if (bytes == 0)
        return CUDA_ERROR_INVALID_VALUE;
    std::lock_guard<std::mutex> hold(memory_lock);
    if (bytes > device_bytes() - allocated)
        return CUDA_ERROR_OUT_OF_MEMORY;
    // malloc aligns to 16 bytes (CUDA: 256); no kernel here needs more.
    void* m = malloc(bytes);
    if (!m)
        return CUDA_ERROR_OUT_OF_MEMORY;
    memset(m, 0xff, bytes);
    *p = (CUdeviceptr)(uintptr_t)m;
    allocations[*p] = bytes;
    allocated += bytes;
    return CUDA_SUCCESS;
}

API CUresult cuMemFree_v2(CUdeviceptr p)
{
    std::lock_guard<std::mutex> hold(memory_lock);
    auto it = allocations.find(p);
    if (it == allocations.end())
        return CUDA_ERROR_INVALID_VALUE;
    allocated -= it->second;
    allocations.erase(it);
    free((void*)(uintptr_t)p);
    return CUDA_SUCCESS;
}

API CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total)
{
    std::lock_guard<std::mutex> hold(memory_lock);
    *free_bytes = device_bytes() - allocated;
    *total = device_bytes();
    return CUDA_SUCCESS;
}

API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, CUstream)
{
    RETURN_IF_STICKY();
    memcpy((void*)(uintptr_t)dst, src, n);
    return CUDA_SUCCESS;
}

API CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, CUstream)
{
    RETURN_IF_STICKY();
    memcpy(dst, (const void*)(uintptr_t)src, n);
    return CUDA_SUCCESS;
}

API CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream)
{
    RETURN_IF_STICKY();
    memmove((void*)(uintptr_t)dst, (const void*)(uintptr_t)src, n);
    return CUDA_SUCCESS;
}

API CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char v, size_t n, CUstream)
{
    RETURN_IF_STICKY();
    memset((void*)(uintptr_t)dst, v, n);
    return CUDA_SUCCESS;
}

API CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned int v, size_t n, CUstream)
{
    RETURN_IF_STICKY();
    unsigned int* p = (unsigned int*)(uintptr_t)dst;
    for (size_t i = 0; i < n; i++)
        p[i] = v;
    return CUDA_SUCCESS;
}

API CUresult cuModuleLoadData(CUmodule* m, const void* image)
{
    RETURN_IF_STICKY();
    if (!image)
        return CUDA_ERROR_INVALID_IMAGE;
    *m = &module_token;
    return CUDA_SUCCESS;
}

API CUresult cuModuleUnload(CUmodule) { return CUDA_SUCCESS; }

API CUresult cuModuleGetFunction(CUfunction* f, CUmodule, const char* name)
{
    RETURN_IF_STICKY();
    const qm_emu::Kernel* k = qm_emu::find_kernel(name);
    if (!k)
        return CUDA_ERROR_NOT_FOUND;
    *f = k;
    return CUDA_SUCCESS;
}

API CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
    unsigned bz, unsigned shared_bytes, CUstream, void** params, void** extra)
{
    RETURN_IF_STICKY();
    if (shared_bytes != 0 || extra != nullptr)
        return CUDA_ERROR_INVALID_VALUE; // dynamic shared memory and packed arguments: not used here
    std::string error;
    if (qm_emu::launch(*static_cast<const qm_emu::Kernel*>(f), dim3(gx, gy, gz), dim3(bx, by, bz), params, &error))
        return CUDA_SUCCESS;
    fprintf(stderr, "emulated device: %s\n", error.c_str());
    if (error.find("invalid launch shape") != std::string::npos)
        return CUDA_ERROR_INVALID_VALUE;
    sticky = CUDA_ERROR_LAUNCH_FAILED;
    return sticky;
}

API CUresult cuStreamCreate(CUstream* s, unsigned int)
{
    *s = &stream_token;
    return CUDA_SUCCESS;
}

API CUresult cuStreamSynchronize(CUstream)
{
    RETURN_IF_STICKY();
    return CUDA_SUCCESS;
}

API CUresult cuStreamDestroy_v2(CUstream) { return CUDA_SUCCESS; }

namespace {
// The names and texts of the driver's common codes, as cuda.h gives them.
struct ErrorText {
    CUresult code;
    const char *name, *text;
};
const ErrorText error_texts[] = {
    {0, "CUDA_SUCCESS", "no error"},
    {1, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {101, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {200, "CUDA_ERROR_INVALID_IMAGE", "device kernel image is invalid"},
    {201, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {400, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {700, "CUDA_ERROR_ILLEGAL_ADDRESS", "an illegal memory access was encountered"},
    {719, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
};
const ErrorText* find_error(CUresult r)
{
    for (const ErrorText& e : error_texts)
        if (e.code == r)
            return &e;
    return nullptr;
}
} // namespace

API CUresult cuGetErrorName(CUresult r, const char** s)
{
    const ErrorText* e = find_error(r);
    *s = e ? e->name : nullptr;
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

API CUresult cuGetErrorString(CUresult r, const char** s)
{
    const ErrorText* e = find_error(r);
    *s = e ? e->text : nullptr;
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}
