package keraslike

import (
	"errors"
	"fmt"
	"math"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// GPUReading is one GPU's state as NVML reports it, the figures
// nvidia-smi prints. A figure the GPU does not report (power on some
// boards) is NaN.
type GPUReading struct {
	Index              int
	Name               string
	UtilizationPercent float64
	MemoryUsedBytes    int64
	MemoryTotalBytes   int64
	TemperatureC       float64
	PowerWatts         float64
}

// GPUs reads the NVIDIA GPUs of the machine through NVML, which is loaded
// at run time (dlopen of libnvidia-ml.so.1, installed with the driver):
// the same binary runs on machines without a GPU, where there are simply
// no GPUs to read.
type GPUs struct {
	lib  nvml.Interface
	devs []nvml.Device
	name []string
	// Unavailable says why there are no GPUs (no NVML library, no driver
	// running); nil when NVML answered, even with no GPU.
	Unavailable error
}

// OpenGPUs loads NVML from library ("" is the driver's libnvidia-ml.so.1)
// and lists the GPUs. It never fails: without NVML the result has no GPUs
// and says why in Unavailable.
func OpenGPUs(library string) *GPUs {
	g := &GPUs{}
	var opts []nvml.LibraryOption
	if library != "" {
		opts = append(opts, nvml.WithLibraryPath(library))
	}
	lib := nvml.New(opts...)
	if ret := lib.Init(); ret != nvml.SUCCESS {
		if ret == nvml.ERROR_LIBRARY_NOT_FOUND {
			name := library
			if name == "" {
				name = "libnvidia-ml.so.1"
			}
			g.Unavailable = fmt.Errorf("NVML: %s not found (no NVIDIA driver)", name)
		} else {
			g.Unavailable = fmt.Errorf("NVML: init: %s", lib.ErrorString(ret))
		}
		return g
	}
	g.lib = lib
	n, ret := lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		g.Unavailable = fmt.Errorf("NVML: device count: %s", lib.ErrorString(ret))
		return g
	}
	for i := 0; i < n; i++ {
		d, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			// A GPU NVML cannot open (lost, or not ours under MIG) leaves a
			// hole in the indices rather than failing the others.
			continue
		}
		name, _ := d.GetName()
		g.devs = append(g.devs, d)
		g.name = append(g.name, name)
	}
	return g
}

// Count is the number of GPUs read.
func (g *GPUs) Count() int {
	if g == nil {
		return 0
	}
	return len(g.devs)
}

// Read takes one reading of every GPU, in index order.
func (g *GPUs) Read() []GPUReading {
	if g.Count() == 0 {
		return nil
	}
	out := make([]GPUReading, len(g.devs))
	for i, d := range g.devs {
		r := GPUReading{Index: i, Name: g.name[i], UtilizationPercent: math.NaN(), TemperatureC: math.NaN(), PowerWatts: math.NaN(),
			MemoryUsedBytes: -1, MemoryTotalBytes: -1}
		if u, ret := d.GetUtilizationRates(); ret == nvml.SUCCESS {
			r.UtilizationPercent = float64(u.Gpu)
		}
		if m, ret := d.GetMemoryInfo(); ret == nvml.SUCCESS {
			r.MemoryUsedBytes, r.MemoryTotalBytes = int64(m.Used), int64(m.Total)
		}
		if c, ret := d.GetTemperature(nvml.TEMPERATURE_GPU); ret == nvml.SUCCESS {
			r.TemperatureC = float64(c)
		}
		if mw, ret := d.GetPowerUsage(); ret == nvml.SUCCESS {
			r.PowerWatts = float64(mw) / 1000
		}
		out[i] = r
	}
	return out
}

// Close shuts NVML down; the GPUs are not read after.
func (g *GPUs) Close() error {
	if g == nil || g.lib == nil {
		return nil
	}
	lib := g.lib
	g.lib, g.devs, g.name = nil, nil, nil
	if ret := lib.Shutdown(); ret != nvml.SUCCESS {
		return errors.New("NVML: shutdown: " + lib.ErrorString(ret))
	}
	return nil
}
