//go:build cuda

// binding.h: the few CUDA driver and cuBLAS types the binding needs,
// declared here instead of taken from cuda.h so that the cuda build needs
// no CUDA headers and only the ABI of the entry points it resolves. Each
// handle is an opaque pointer, as in cuda.h and cublas_api.h.
#ifndef QMUL_BINDING_H
#define QMUL_BINDING_H

#include <stddef.h>
#include <stdint.h>

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st* CUcontext;
typedef struct CUmod_st* CUmodule;
typedef struct CUfunc_st* CUfunction;
typedef struct CUstream_st* CUstream;

typedef int cublasStatus_t;
typedef struct cublasContext* cublasHandle_t;

// cuDNN's legacy convolution API (cudnn.h of cuDNN 8, cudnn_ops.h and
// cudnn_cnn.h of cuDNN 9; the same signatures in both). Enum parameters are
// ints, as in the C ABI.
typedef int cudnnStatus_t;
typedef struct cudnnContext* cudnnHandle_t;
typedef struct cudnnTensorStruct* cudnnTensorDescriptor_t;
typedef struct cudnnFilterStruct* cudnnFilterDescriptor_t;
typedef struct cudnnConvolutionStruct* cudnnConvolutionDescriptor_t;

// qm_cudnnAlgoPerf is the layout shared by cudnnConvolutionFwdAlgoPerf_t,
// cudnnConvolutionBwdDataAlgoPerf_t and cudnnConvolutionBwdFilterAlgoPerf_t
// (48 bytes on LP64: memory is 8-byte aligned at offset 16).
typedef struct {
    int algo;
    cudnnStatus_t status;
    float time;
    size_t memory;
    int determinism;
    int mathType;
    int reserved[3];
} qm_cudnnAlgoPerf;

// A shim that makes its context current before its main call, or
// synchronises its stream after it, sets one of these bits in the result it
// returns when that extra call is the one that failed, so that the Go side
// can name the failing entry point. CUresult codes stay far below them.
#define QM_FAILED_SET_CURRENT (1 << 30)
#define QM_FAILED_SYNC (1 << 29)

// QM_SET_CURRENT makes ctx current on the calling thread through the
// cuCtxSetCurrent pointer set, returning from the shim when that fails.
// Each shim runs within one cgo call, so on one OS thread throughout.
#define QM_SET_CURRENT(set, ctx)                                   \
    do {                                                           \
        CUresult qm_r_ = ((CUresult(*)(CUcontext))(set))(ctx);     \
        if (qm_r_ != 0)                                            \
            return QM_FAILED_SET_CURRENT | qm_r_;                  \
    } while (0)

#endif
