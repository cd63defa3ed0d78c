"""Times one unlearning epoch in PyTorch — Q-MUL with the paper's epoch
reweighting, or RL — on the same model, quantizer and data sizes as
`qmulgpu unlearn --epochs 1`, for side-by-side comparisons. Data are random
images held on the device (the timing does not depend on their content).
The GPU settings are those of torch_bench.py (torch_models.setup: cuDNN
benchmark mode, TF32 as --tf32 says), and the only host syncs inside the
epoch are the reweighting's two norm averages.

    python3 bench/torch_unlearn_epoch.py --model resnet18 --quant lsq --device cuda \\
        --forget 4500 --retain 45000 --batch 256 --method qmul
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402


def batches(n, batch, gen, device):
    perm = torch.randperm(n, generator=gen).to(device)
    return [perm[i:i + batch] for i in range(0, n, batch)]


def similar_labels(net, x, y, batch):
    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            p = F.softmax(net(x[i:i + batch]), 1)
            py = p.gather(1, y[i:i + batch, None])
            gap = (p - py).abs()
            gap.scatter_(1, y[i:i + batch, None], float("inf"))
            out.append(gap.argmin(1))
    net.train()
    return torch.cat(out)


def grad_norm_mean(net, params, x, y, idx_batches):
    # BatchNorm statistics frozen while measuring, as qmulgpu does.
    moms = {m: m.momentum for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    for m in moms:
        m.momentum = 0.0
    total = torch.zeros((), device=x.device)
    for idx in idx_batches:
        loss = F.cross_entropy(net(x[idx]), y[idx])
        grads = torch.autograd.grad(loss, params)
        total += sum(g.norm() for g in grads)
    for m, v in moms.items():
        m.momentum = v
    return total.item() / len(idx_batches)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="resnet18")
    p.add_argument("--quant", default="lsq", choices=["none", "lsq"])
    p.add_argument("--method", default="qmul", choices=["qmul", "rl"])
    p.add_argument("--forget", type=int, default=4500)
    p.add_argument("--retain", type=int, default=45000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--input", help="HxWxC (default: 28x28x1 for smallcnn, 32x32x3 otherwise)")
    p.add_argument("--tf32", type=int, default=1, choices=[0, 1], help="TF32 in GPU products and convolutions")
    a = p.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    settings = torch_models.setup(dev, bool(a.tf32))
    h, w, c = torch_models.input_shape(a.model, a.input)
    quant = (4, 4) if a.quant == "lsq" else None
    net = torch_models.build(a.model, c, 10, h, w, 1.0, quant).to(dev).train()
    gen = torch.Generator().manual_seed(1)
    xf = torch.randn(a.forget, c, h, w, generator=gen).to(dev)
    yf = torch.randint(0, 10, (a.forget,), generator=gen).to(dev)
    xr = torch.randn(a.retain, c, h, w, generator=gen).to(dev)
    yr = torch.randint(0, 10, (a.retain,), generator=gen).to(dev)
    net(xf[:2])  # LSQ initialisation
    params = [q for q in net.parameters() if q.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    sync()
    t = time.perf_counter()
    if a.method == "qmul":
        yhat = similar_labels(net, xf, yf, 1024)
        fb, rb = batches(a.forget, a.batch, gen, dev), batches(a.retain, a.batch, gen, dev)
        gf = grad_norm_mean(net, params, xf, yhat, fb)
        gr = grad_norm_mean(net, params, xr, yr, rb)
        wf, wr = gr / (gf + gr), gf / (gf + gr)
        for xs, ys, wt, bs in ((xf, yhat, wf, batches(a.forget, a.batch, gen, dev)), (xr, yr, wr, batches(a.retain, a.batch, gen, dev))):
            for idx in bs:
                opt.zero_grad(set_to_none=False)
                (wt * F.cross_entropy(net(xs[idx]), ys[idx])).backward()
                opt.step()
    else:
        yrand = torch.randint(0, 10, (a.forget,), generator=gen).to(dev)
        x, y = torch.cat([xf, xr]), torch.cat([yrand, yr])
        for idx in batches(x.shape[0], a.batch, gen, dev):
            opt.zero_grad(set_to_none=False)
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    sync()
    secs = time.perf_counter() - t
    print(json.dumps(dict({"framework": "pytorch " + torch.__version__, "method": a.method, "model": a.model,
                           "quant": a.quant, "input_hwc": [h, w, c], "forget": a.forget, "retain": a.retain,
                           "batch": a.batch, "device": str(dev), "threads": torch.get_num_threads(),
                           "epoch_seconds": secs}, **settings)))


if __name__ == "__main__":
    main()
