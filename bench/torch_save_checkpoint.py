"""Writes PyTorch checkpoints of qmulgpu's model twins the way PyTorch code
bases write them, with the twin's predictions on random images, so that
tests can check `qmulgpu import` against PyTorch.

    python3 bench/torch_save_checkpoint.py CASES.json

CASES.json is a list of objects:

    {"arch": "smallcnn", "quant": null or [wbits, abits], "c": 1, "h": 28,
     "w": 28, "classes": 10, "n": 64, "format": "zip" or "legacy",
     "wrap": "bare" or "reference", "mean": [...], "std": [...],
     "out": "DIR"}

Each model is trained for a few SGD steps on random data (so BatchNorm
statistics and LSQ steps are not their initial values), then DIR receives
model.pth.tar, x.f32 (n images, NHWC float32) and probs.f32 (the model's
softmax in evaluation mode). "reference" wraps the state_dict as the Q-MUL /
SalUn reference code saves it: DataParallel's "module." prefixes, the input
normalisation module's mean and std buffers, LSQ steps without an
"initialized" flag, inside a dict with the epoch, optimiser state and best
accuracy.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402


def save(case):
    torch.manual_seed(7)
    quant = tuple(case["quant"]) if case["quant"] else None
    net = torch_models.build(case["arch"], case["c"], case["classes"], case["h"], case["w"], quant=quant)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    net.train()
    for _ in range(3):
        x = torch.randn(16, case["c"], case["h"], case["w"])
        y = torch.randint(0, case["classes"], (16,))
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    net.eval()
    x = torch.randn(case["n"], case["c"], case["h"], case["w"])
    with torch.no_grad():
        probs = F.softmax(net(x), dim=1)
    sd = net.state_dict()
    obj = sd
    if case["wrap"] == "reference":
        ref = {"module.normalize.mean": torch.tensor(case["mean"]), "module.normalize.std": torch.tensor(case["std"])}
        for k, v in sd.items():
            if not k.endswith(".initialized"):
                ref["module." + k] = v
        obj = {"state_dict": ref, "epoch": 5, "best_sa": 91.5, "optimizer": opt.state_dict()}
    out = case["out"]
    os.makedirs(out, exist_ok=True)
    torch.save(obj, os.path.join(out, "model.pth.tar"), _use_new_zipfile_serialization=case["format"] == "zip")
    x.permute(0, 2, 3, 1).contiguous().numpy().tofile(os.path.join(out, "x.f32"))
    probs.numpy().tofile(os.path.join(out, "probs.f32"))


def main():
    torch.set_num_threads(1)
    with open(sys.argv[1]) as f:
        for case in json.load(f):
            save(case)


if __name__ == "__main__":
    main()
