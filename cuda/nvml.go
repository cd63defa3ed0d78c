//go:build cuda

package cuda

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/qmulgpu/qmulgpu/engine"
	"github.com/qmulgpu/qmulgpu/engine/device"
)

// provider is the device.Provider of the cuda build: discovery through
// NVML, backends through the CUDA driver.
type provider struct {
	// nvmlPath is the NVML library to load; empty means go-nvml's default,
	// libnvidia-ml.so.1.
	nvmlPath string
}

// Discover implements device.Provider: it lists the GPUs NVML sees. No
// driver, no NVML library or no GPU gives a one-line error saying which.
func (p provider) Discover() ([]device.GPU, error) {
	var opts []nvml.LibraryOption
	if p.nvmlPath != "" {
		opts = append(opts, nvml.WithLibraryPath(p.nvmlPath))
	}
	lib := nvml.New(opts...)
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil, nvmlInitError(ret, p.nvmlPath)
	}
	defer lib.Shutdown()
	if path := pathOfLoaded(nvmlSoname(p.nvmlPath)); path != "" {
		record("nvml", []device.Library{{Name: "NVML", Path: path, FoundIn: "loader path"}})
	}
	return listGPUs(lib)
}

// nvmlSoname is the NVML library go-nvml loads.
func nvmlSoname(path string) string {
	if path == "" {
		return "libnvidia-ml.so.1"
	}
	return path
}

// Open implements device.Provider.
func (p provider) Open(index int, opts device.Options) (engine.Backend, error) {
	return Open(index, opts)
}

// Libraries implements device.Provider.
func (provider) Libraries() []device.Library { return libraries() }

// nvmlInitError explains a failed nvmlInit.
func nvmlInitError(ret nvml.Return, path string) error {
	path = nvmlSoname(path)
	switch ret {
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return fmt.Errorf("no NVIDIA driver: cannot load %s", path)
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return fmt.Errorf("NVIDIA driver not loaded (no GPU, or its kernel module is missing)")
	case nvml.ERROR_NO_PERMISSION:
		return fmt.Errorf("no permission to use the NVIDIA driver")
	}
	return fmt.Errorf("nvmlInit: %v", ret)
}

// listGPUs describes every device of an initialised NVML.
func listGPUs(lib nvml.Interface) ([]device.GPU, error) {
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("nvmlDeviceGetCount: %v", ret)
	}
	if n == 0 {
		return nil, fmt.Errorf("no NVIDIA GPU found")
	}
	driver, ret := lib.SystemGetDriverVersion()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("nvmlSystemGetDriverVersion: %v", ret)
	}
	cudaVersion, ret := lib.SystemGetCudaDriverVersion()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("nvmlSystemGetCudaDriverVersion: %v", ret)
	}
	gpus := make([]device.GPU, n)
	for i := range gpus {
		d, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("nvmlDeviceGetHandleByIndex(%d): %v", i, ret)
		}
		name, ret := d.GetName()
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("nvmlDeviceGetName(%d): %v", i, ret)
		}
		mem, ret := d.GetMemoryInfo()
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("nvmlDeviceGetMemoryInfo(%d): %v", i, ret)
		}
		major, minor, ret := d.GetCudaComputeCapability()
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("nvmlDeviceGetCudaComputeCapability(%d): %v", i, ret)
		}
		gpus[i] = device.GPU{Index: i, Name: name, MemoryTotal: mem.Total, MemoryFree: mem.Free,
			ComputeCapability: fmt.Sprintf("%d.%d", major, minor), Driver: driver, CUDA: cudaVersionString(cudaVersion)}
	}
	return gpus, nil
}

// cudaVersionString formats NVML's CUDA driver version (1000·major +
// 10·minor) as "major.minor".
func cudaVersionString(v int) string {
	return fmt.Sprintf("%d.%d", v/1000, v%1000/10)
}

// ConvStatus says which path --conv auto gives GPU convolutions: cuDNN
// when the library loads and passes the version check, or im2col + cuBLAS
// SGEMM and why not. A cuDNN that loads can still fail on the device;
// Backend.ConvPath then says so.
func (provider) ConvStatus() string {
	s, err := CudnnStatus()
	if err != nil {
		return "im2col + cuBLAS SGEMM (" + err.Error() + ")"
	}
	return s
}
