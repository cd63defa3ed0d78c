"""Times PyTorch training steps (forward, backward, SGD update) of the same
models, quantizers and step as `qmulgpu bench`, and prints JSON.

    python3 bench/torch_bench.py --model resnet18 --batch 64 --threads 2 [--quant lsq]

On a GPU the baseline is set up to be fair (torch_models.setup): cuDNN
picks its algorithms by measuring (cudnn.benchmark, as qmulgpu measures
cuDNN's candidates per shape), TF32 is allowed in matrix products and
convolutions as qmulgpu allows it by default (--tf32 0 turns both off; run
qmulgpu with QMUL_TF32=0 then), and nothing waits for the GPU inside the
timed steps. The JSON states those settings.
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup-steps", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--quant", default="none", choices=["none", "lsq"])
    p.add_argument("--wbits", type=int, default=4)
    p.add_argument("--abits", type=int, default=4)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--input", help="HxWxC (default: 28x28x1 for smallcnn, 32x32x3 otherwise)")
    p.add_argument("--tf32", type=int, default=1, choices=[0, 1], help="TF32 in GPU products and convolutions")
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    h, w, c = torch_models.input_shape(a.model, a.input)
    quant = (a.wbits, a.abits) if a.quant == "lsq" else None
    dev = torch.device(a.device)
    settings = torch_models.setup(dev, bool(a.tf32))
    net = torch_models.build(a.model, c, 10, h, w, a.width, quant).to(dev).train()
    torch.manual_seed(1)
    x = torch.randn(a.batch, c, h, w, device=dev)
    y = torch.randint(0, 10, (a.batch,), device=dev)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        opt.zero_grad(set_to_none=False)
        F.cross_entropy(net(x), y).backward()
        opt.step()

    for _ in range(a.warmup_steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    cpu = time.process_time()
    t = time.perf_counter()
    for _ in range(a.steps):
        step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    secs = time.perf_counter() - t
    cpu = time.process_time() - cpu
    print(json.dumps(dict({
        "framework": "pytorch " + torch.__version__, "model": a.model, "batch": a.batch, "quant": a.quant,
        "input_hwc": [h, w, c], "threads": torch.get_num_threads(), "steps": a.steps, "seconds": secs,
        "cpu_seconds": cpu,
        "images_per_sec": a.batch * a.steps / secs, "ms_per_step": 1000 * secs / a.steps,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }, **settings)))


if __name__ == "__main__":
    main()
