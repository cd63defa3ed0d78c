"""Loads a qmulgpu checkpoint into the PyTorch twin of its model and writes
the logits of an input batch, so that tests can compare frameworks.

    python3 bench/crosscheck.py CKPT INPUT.f32 N H W C OUTPUT.f32

INPUT.f32 holds N·H·W·C float32 values in NHWC order (qmulgpu's layout);
OUTPUT.f32 receives N·classes float32 logits. The model is rebuilt from the
checkpoint's metadata and loaded with load_state_dict(strict=True).
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402


def main():
    ckpt, inp, n, h, w, c, out = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7]), sys.argv[7]
    tensors, meta = torch_models.read_safetensors(ckpt)
    cfg = json.loads(meta["model"])
    q = json.loads(meta.get("quant", '{"scheme":"none"}'))
    quant = None
    if q["scheme"] == "lsq":
        quant = (q["wbits"], q["abits"])
    elif q["scheme"] != "none":
        sys.exit("crosscheck: only float and lsq models have a PyTorch twin")
    net = torch_models.build(cfg["arch"], cfg["c"], cfg["classes"], cfg["h"], cfg["w"], cfg.get("width", 1.0), quant)
    net.load_state_dict(tensors, strict=True)
    net.eval()
    x = np.fromfile(inp, dtype=np.float32).reshape(n, h, w, c).transpose(0, 3, 1, 2)
    with torch.no_grad():
        logits = net(torch.from_numpy(np.ascontiguousarray(x)))
    logits.numpy().astype(np.float32).tofile(out)


if __name__ == "__main__":
    main()
