#!/usr/bin/env python3
"""compare-metrics.py WANT GOT: checks that two unlearning runs' metrics.json
agree, GOT (e.g. on the emulated device) against WANT (the CPU backend).

The runs share data, model, hyperparameters and seeds, so they differ only
by float32 rounding (summation order, library math), which a quantized model
can turn into a few samples on the other side of a decision boundary. The
bounds below are in units of samples of the smallest set involved:

  train_loss, AGR norms and weights   relative 1e-3
  train_acc, fa, ra, ta (percent)     2 percentage points
  mia and its features (percent)      5 points (the forget set is small)

Everything that describes the run (data, model, quant, hyper, samples) must
be identical. Prints one line per difference over its bound and exits 1 if
there is any."""
import json
import sys

SAME = ["method", "forget", "samples", "data", "model", "quant", "quant_config", "hyper"]
REL = {"train_loss": 1e-3, "norm_forget": 1e-3, "norm_retain": 1e-3, "weight_forget": 1e-3, "weight_retain": 1e-3}
POINTS = {"train_acc": 2.0, "fa": 2.0, "ra": 2.0, "ta": 2.0, "mia": 5.0}


def main(want_path, got_path):
    want, got = json.load(open(want_path)), json.load(open(got_path))
    bad = []
    for k in SAME:
        if want.get(k) != got.get(k):
            bad.append(f"{k}: {got.get(k)!r}, want {want.get(k)!r}")

    def close(label, key, w, g):
        if key in REL:
            if not abs(g - w) <= REL[key] * max(1e-12, abs(w)):
                bad.append(f"{label}: {g}, want {w} (relative bound {REL[key]})")
        elif key in POINTS and not abs(g - w) <= POINTS[key]:
            bad.append(f"{label}: {g}, want {w} (bound {POINTS[key]} points)")

    for k in ("fa", "ra", "ta", "mia"):
        close(k, k, want[k], got[k])
    for k, w in want.get("mia_features", {}).items():
        close(f"mia_features.{k}", "mia", w, got.get("mia_features", {}).get(k, float("nan")))
    if len(want["epochs"]) != len(got["epochs"]):
        bad.append(f"{len(got['epochs'])} epochs, want {len(want['epochs'])}")
    for e, (we, ge) in enumerate(zip(want["epochs"], got["epochs"])):
        for k in list(REL) + ["train_acc"]:
            if k in we:
                close(f"epoch {e + 1} {k}", k, we[k], ge.get(k, float("nan")))
    for line in bad:
        print(f"{got_path}: {line}")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: compare-metrics.py WANT.json GOT.json")
    sys.exit(main(sys.argv[1], sys.argv[2]))
