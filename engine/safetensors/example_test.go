package safetensors_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/qmulgpu/qmulgpu/engine/safetensors"
)

func Example() {
	f := &safetensors.File{
		Metadata: map[string]string{"epoch": "3"},
		Tensors: []safetensors.Tensor{{
			Name:  "fc.weight",
			DType: "F32",
			Shape: []int{2, 2},
			Data:  safetensors.FromFloat32s([]float32{1, 2, 3, 4}),
		}},
	}
	var buf bytes.Buffer
	if err := safetensors.Encode(&buf, f); err != nil {
		log.Fatal(err)
	}

	got, err := safetensors.Parse(buf.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	w, ok := got.Get("fc.weight")
	if !ok {
		log.Fatal("no fc.weight")
	}
	values, err := safetensors.Float32s(w.Data)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Metadata["epoch"], w.DType, w.Shape, values)
	// Output: 3 F32 [2 2] [1 2 3 4]
}
