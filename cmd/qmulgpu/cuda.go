//go:build cuda

package main

// The cuda build registers the GPU backend; without a usable GPU it falls
// back to the CPU with one line.
import _ "github.com/qmulgpu/qmulgpu/cuda"
