//go:build cuda

package cuda

import "github.com/qmulgpu/qmulgpu/engine/device"

func init() { device.Register(provider{}) }
