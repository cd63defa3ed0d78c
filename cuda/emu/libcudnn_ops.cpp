// libcudnn_ops.cpp: a fake cuDNN 9 sub-library, built as
// libcudnn_ops.so.9. It computes nothing; libcudnn_cnn.so.9 needs it, as
// the real cnn sub-library needs the real ops one, so the loader must find
// it too.
#define API extern "C" __attribute__((visibility("default")))

API int qm_emu_cudnn_ops(void) { return 9; }
