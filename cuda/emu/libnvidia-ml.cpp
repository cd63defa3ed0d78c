// libnvidia-ml.cpp: the fake NVML, built as libnvidia-ml.so.1: the calls
// cuda/nvml.go makes (through go-nvml) to discover devices, describing the
// one emulated device of libcuda.cpp.
#include <stdio.h>
#include <stdlib.h>

#define API extern "C" __attribute__((visibility("default")))

typedef int nvmlReturn_t;
typedef void* nvmlDevice_t;
struct nvmlMemory_t {
    unsigned long long total, free, used;
};

namespace {
enum : nvmlReturn_t { NVML_SUCCESS = 0, NVML_ERROR_INVALID_ARGUMENT = 2 };
char device_token;
} // namespace

API nvmlReturn_t nvmlInit_v2(void) { return NVML_SUCCESS; }
API nvmlReturn_t nvmlInit(void) { return NVML_SUCCESS; }
API nvmlReturn_t nvmlShutdown(void) { return NVML_SUCCESS; }

API nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* n)
{
    *n = 1;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t* d)
{
    if (i != 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    *d = &device_token;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlSystemGetDriverVersion(char* v, unsigned int len)
{
    snprintf(v, len, "emulated");
    return NVML_SUCCESS;
}

// The driver's CUDA version, as the fake driver reports it
// (QM_EMU_DRIVER_VERSION, default 13000).
API nvmlReturn_t nvmlSystemGetCudaDriverVersion(int* v)
{
    const char* s = getenv("QM_EMU_DRIVER_VERSION");
    *v = s && *s ? atoi(s) : 13000;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t, char* name, unsigned int len)
{
    snprintf(name, len, "emulated device (kernels/*.cu on the CPU)");
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t, nvmlMemory_t* m)
{
    m->total = 8ull << 30;
    m->free = m->total;
    m->used = 0;
    return NVML_SUCCESS;
}

API nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t, int* major, int* minor)
{
    *major = 8;
    *minor = 0;
    return NVML_SUCCESS;
}

API const char* nvmlErrorString(nvmlReturn_t r) { return r == NVML_SUCCESS ? "Success" : "emulated NVML error"; }
