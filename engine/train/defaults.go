package train

import "github.com/qmulgpu/qmulgpu/engine/optim"

// The recipe `qmulgpu train` uses where no flag says otherwise: the
// reference code's (method.md section 6: SGD, momentum 0.9, weight decay
// 5e-4, cosine, 182 epochs, batch 256), with the peak learning rate of the
// architecture (DefaultLR).
const (
	DefaultEpochs      = 182
	DefaultBatch       = 256
	DefaultMomentum    = 0.9
	DefaultWeightDecay = 5e-4
	DefaultSchedule    = "cosine"
)

// DefaultLR is the peak learning rate of a default run of an
// architecture. ResNet-18 and MobileNetV2 take the reference code's 0.1.
// smallcnn takes 0.02: its classifier reads the whole 128×7×7 feature map
// (6,272 non-negative inputs per class, no global pooling), so at 0.1, or
// even 0.05, the first SGD steps with momentum drive the logits apart and
// the loss climbs from ln 10 ≈ 2.3 to 5–18 within the first epoch
// (Fashion-MNIST, batch 256: at 0.1 one epoch on 1,000 images ends at 3%
// test accuracy, at 0.03 a step on 5,000 images still rises above the
// initial loss, at 0.02 none does and three epochs reach 84%). A warm-up
// also tames it, but only once it spans about 60 steps, which a small
// subset never reaches in an epoch.
func DefaultLR(arch string) float64 {
	if arch == "smallcnn" {
		return 0.02
	}
	return 0.1
}

// DefaultRecipe is the default recipe of an architecture for the given
// number of epochs (augmentation and seed left for the caller).
func DefaultRecipe(arch string, epochs int) Recipe {
	return Recipe{Epochs: epochs, Batch: DefaultBatch, Momentum: DefaultMomentum, WeightDecay: DefaultWeightDecay, Seed: 1,
		Schedule: optim.Schedule{Kind: DefaultSchedule, Base: DefaultLR(arch), Epochs: epochs}}
}
