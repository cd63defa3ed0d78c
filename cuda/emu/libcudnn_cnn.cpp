// libcudnn_cnn.cpp: a fake cuDNN 9 sub-library, built as
// libcudnn_cnn.so.9 and linked against libcudnn_ops.so.9. The fake
// libcudnn.so.9 opens it by bare name at its first convolution call, as
// the real cuDNN 9 opens its convolution sub-library, and fails with
// CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED when the loader cannot find it.
#define API extern "C" __attribute__((visibility("default")))

extern "C" int qm_emu_cudnn_ops(void);

API int qm_emu_cudnn_cnn(void) { return qm_emu_cudnn_ops(); }
