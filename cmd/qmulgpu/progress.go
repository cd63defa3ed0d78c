package main

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/qmulgpu/qmulgpu/engine/train"
)

// newProgress reports training progress on stderr: a bar per epoch on a
// terminal, plain lines otherwise (or nothing when quiet).
func newProgress(quiet bool) train.Progress {
	if quiet {
		return nil
	}
	if term.IsTerminal(int(os.Stderr.Fd())) {
		return &barProgress{w: os.Stderr}
	}
	return &lineProgress{w: os.Stderr}
}

type barProgress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
	// open is set while a bar is drawn on an unfinished line.
	open atomic.Bool
}

// Break ends the bar's line (the process is being stopped).
func (p *barProgress) Break() {
	if p.open.Swap(false) {
		fmt.Fprintln(p.w)
	}
}

func (p *barProgress) EpochStart(epoch, epochs, steps int) {
	if steps == 0 {
		steps = -1 // unknown length: a spinner
	}
	p.bar = progressbar.NewOptions(steps,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(fmt.Sprintf("epoch %d/%d", epoch, epochs)),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(24),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionShowDescriptionAtLineEnd(),
	)
	p.open.Store(true)
}

func (p *barProgress) StepDone(step int, loss, acc, ips float64) {
	p.bar.Describe(fmt.Sprintf("loss %.4f acc %.2f%% %.0f img/s", loss, acc, ips))
	p.bar.Set(step)
}

func (p *barProgress) EpochEnd(s train.EpochStats) {
	p.bar.Finish()
	p.open.Store(false)
	fmt.Fprintln(p.w)
	fmt.Fprintln(p.w, epochLine(s))
}

type lineProgress struct {
	w     io.Writer
	steps int
	epoch string
}

func (p *lineProgress) EpochStart(epoch, epochs, steps int) {
	p.steps = steps
	p.epoch = fmt.Sprintf("epoch %d/%d", epoch, epochs)
}

func (p *lineProgress) StepDone(step int, loss, acc, ips float64) {
	// A line every quarter of an epoch (when its length is known).
	if q := p.steps / 4; q > 0 && step%q == 0 && step != p.steps {
		fmt.Fprintf(p.w, "%s step %d/%d: loss %.4f acc %.2f%% %.0f img/s\n", p.epoch, step, p.steps, loss, acc, ips)
	}
}

func (p *lineProgress) EpochEnd(s train.EpochStats) { fmt.Fprintln(p.w, epochLine(s)) }

func epochLine(s train.EpochStats) string {
	line := fmt.Sprintf("epoch %d/%d: lr %.4g loss %.4f train %.2f%%", s.Epoch, s.Epochs, s.LR, s.TrainLoss, s.TrainAcc)
	if s.ValAcc != 0 {
		line += fmt.Sprintf(" val %.2f%%", s.ValAcc)
	}
	if s.TestAcc != 0 {
		line += fmt.Sprintf(" test %.2f%%", s.TestAcc)
	}
	return line + fmt.Sprintf(" (%.1fs, %.0f img/s)", s.Seconds, s.ImagesPerSec)
}
