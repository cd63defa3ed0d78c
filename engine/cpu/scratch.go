package cpu

// Scratch buffers for im2col and friends. Convolutions run one at a time, so
// a handful of buffers grown to the largest size asked for serve a whole
// training step without garbage.

// getScratch returns a slice of n elements with undefined contents.
func getScratch[T float](b *Backend, n int) []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	var z T
	_, is32 := any(z).(float32)
	best := -1
	for i, m := range b.scratch {
		if (m.f32 != nil) != is32 {
			continue
		}
		if c := scratchCap(m); c >= n && (best < 0 || c < scratchCap(b.scratch[best])) {
			best = i
		}
	}
	if best < 0 {
		// Reuse the largest buffer of the type by growing it.
		for i, m := range b.scratch {
			if (m.f32 != nil) == is32 && (best < 0 || scratchCap(m) > scratchCap(b.scratch[best])) {
				best = i
			}
		}
		if best >= 0 {
			b.scratch[best] = b.scratch[len(b.scratch)-1]
			b.scratch = b.scratch[:len(b.scratch)-1]
		}
		if is32 {
			return any(make([]float32, n)).([]T)
		}
		return any(make([]float64, n)).([]T)
	}
	m := b.scratch[best]
	b.scratch[best] = b.scratch[len(b.scratch)-1]
	b.scratch = b.scratch[:len(b.scratch)-1]
	if is32 {
		return any(m.f32[:n]).([]T)
	}
	return any(m.f64[:n]).([]T)
}

// putScratch returns a buffer obtained from getScratch.
func putScratch[T float](b *Backend, s []T) {
	m := &hostMemory{}
	switch v := any(s).(type) {
	case []float32:
		m.f32 = v[:cap(v)]
	case []float64:
		m.f64 = v[:cap(v)]
	}
	b.mu.Lock()
	b.scratch = append(b.scratch, m)
	b.mu.Unlock()
}

func scratchCap(m *hostMemory) int {
	if m.f32 != nil {
		return cap(m.f32)
	}
	return cap(m.f64)
}
