package torch

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hiddenlab/hiddenlab/torch/internal/capi"
)

// DType is a tensor element type.
type DType int32

// Element types. Their values are the shim's hl_dtype codes.
const (
	Float32  DType = 0
	Float64  DType = 1
	BFloat16 DType = 2
	Float16  DType = 3
	Int64    DType = 4
	Int32    DType = 5
	Uint8    DType = 6
	Bool     DType = 7
	Int8     DType = 8
	Int16    DType = 9
)

var dtypeNames = [...]string{"float32", "float64", "bfloat16", "float16", "int64", "int32", "uint8", "bool", "int8", "int16"}
var dtypeSizes = [...]int{4, 8, 2, 2, 8, 4, 1, 1, 1, 2}

func (d DType) valid() bool { return d >= 0 && int(d) < len(dtypeNames) }

// String is the PyTorch name of d ("float32", "bfloat16", ...).
func (d DType) String() string {
	if !d.valid() {
		return "dtype(" + strconv.Itoa(int(d)) + ")"
	}
	return dtypeNames[d]
}

// Size is the element size in bytes.
func (d DType) Size() int {
	if !d.valid() {
		return 0
	}
	return dtypeSizes[d]
}

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool { return d == Float32 || d == Float64 || d == BFloat16 || d == Float16 }

// ParseDType reads a PyTorch dtype name ("float32", "bf16", "int64", ...).
func ParseDType(s string) (DType, error) {
	switch strings.ToLower(strings.TrimPrefix(s, "torch.")) {
	case "float32", "float", "f32", "fp32":
		return Float32, nil
	case "float64", "double", "f64", "fp64":
		return Float64, nil
	case "bfloat16", "bf16":
		return BFloat16, nil
	case "float16", "half", "f16", "fp16":
		return Float16, nil
	case "int64", "long", "i64":
		return Int64, nil
	case "int32", "int", "i32":
		return Int32, nil
	case "uint8", "u8":
		return Uint8, nil
	case "bool":
		return Bool, nil
	case "int8", "i8":
		return Int8, nil
	case "int16", "i16":
		return Int16, nil
	}
	return 0, fmt.Errorf("unknown dtype %q (want float32, float64, bfloat16, float16, int64, int32, uint8, bool, int8 or int16)", s)
}

// DeviceType is CPU or CUDA.
type DeviceType int32

// Device types, as the shim's hl_device_type.
const (
	DeviceCPU  DeviceType = 0
	DeviceCUDA DeviceType = 1
)

// Device is where a tensor lives.
type Device struct {
	Type  DeviceType
	Index int
}

// CPU is the host device.
var CPU = Device{Type: DeviceCPU}

// CUDA returns the CUDA device with the given ordinal. Using it with a shim
// built without CUDA fails with an error of kind KindNoCUDA.
func CUDA(index int) Device { return Device{Type: DeviceCUDA, Index: index} }

// String is "cpu" or "cuda:N".
func (d Device) String() string {
	if d.Type == DeviceCUDA {
		return "cuda:" + strconv.Itoa(d.Index)
	}
	return "cpu"
}

// ParseDevice reads "cpu", "cuda" or "cuda:N".
func ParseDevice(s string) (Device, error) {
	switch {
	case s == "cpu":
		return CPU, nil
	case s == "cuda":
		return CUDA(0), nil
	case strings.HasPrefix(s, "cuda:"):
		n, err := strconv.Atoi(s[len("cuda:"):])
		if err != nil || n < 0 {
			return CPU, fmt.Errorf("bad CUDA ordinal in device %q", s)
		}
		return CUDA(n), nil
	}
	return CPU, fmt.Errorf("unknown device %q (want cpu, cuda or cuda:N)", s)
}

// Option configures tensor creation: a DType, a Device, or RequiresGrad.
type Option interface{ apply(*capi.Options) }

func (d DType) apply(o *capi.Options)  { o.DType = int32(d) }
func (d Device) apply(o *capi.Options) { o.DeviceType, o.DeviceIndex = int32(d.Type), int32(d.Index) }

type requiresGrad bool

func (r requiresGrad) apply(o *capi.Options) { o.RequiresGrad = bool(r) }

// RequiresGrad makes a created tensor an autograd leaf that records gradients.
const RequiresGrad = requiresGrad(true)

func options(opts []Option) capi.Options {
	var o capi.Options // float32 on the CPU
	for _, op := range opts {
		op.apply(&o)
	}
	return o
}
