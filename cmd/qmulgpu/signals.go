package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/qmulgpu/qmulgpu/engine/train"
)

// lineBreaker is a progress display that may have a line open.
type lineBreaker interface {
	// Break ends the open line, if any.
	Break()
}

// onSignal makes SIGINT and SIGTERM end the process with one line on
// stderr — the signal, then what abandon (when not nil) says was kept and
// how to go on —
// after ending the progress display's open line, with the shell's status
// for the signal (130, 143). The returned function stops listening.
func onSignal(p train.Progress, abandon func() string) (stop func()) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			if lb, ok := p.(lineBreaker); ok {
				lb.Break()
			}
			if abandon != nil {
				fmt.Fprintf(os.Stderr, "qmulgpu: stopped by %s; %s\n", signalName(sig), abandon())
			} else {
				fmt.Fprintf(os.Stderr, "qmulgpu: stopped by %s\n", signalName(sig))
			}
			os.Exit(128 + int(sig.(syscall.Signal)))
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

func signalName(sig os.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}
