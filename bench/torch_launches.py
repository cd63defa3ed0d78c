"""Counts the operations PyTorch eager dispatches in one training step, as
a GPU would launch them: in the operator tree of a profiled step, each ATen
operator that does work itself, i.e. one none of whose descendants does
(views, shape queries and allocations do none). Run on the CPU; on a GPU each counted
operator launches at least one kernel (cuDNN and cuBLAS calls often
several).

    python3 bench/torch_launches.py --model resnet18 [--quant lsq] [--batch 32]
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.dirname(__file__))
import torch_models  # noqa: E402

# Operators that only describe memory (views, shapes, allocation) and
# launch no kernel on a GPU.
NO_KERNEL = {
    "aten::view", "aten::_reshape_alias", "aten::reshape", "aten::as_strided", "aten::t", "aten::transpose",
    "aten::permute", "aten::expand", "aten::detach", "aten::empty", "aten::empty_strided", "aten::empty_like",
    "aten::resize_", "aten::slice", "aten::select", "aten::unsqueeze", "aten::squeeze", "aten::alias",
    "aten::contiguous", "aten::size", "aten::stride", "aten::numel", "aten::flatten", "aten::lift_fresh",
    "aten::set_", "aten::_unsafe_view", "aten::unflatten", "detach", "aten::result_type", "aten::item",
    "aten::_local_scalar_dense", "aten::is_nonzero", "aten::as_strided_", "aten::resolve_conj",
    "aten::resolve_neg",
}


def kernels(e, counts):
    """Adds to counts the operators under (and including) event e that would
    launch a kernel, and returns how many there are."""
    if e.name in NO_KERNEL:
        return 0
    below = sum(kernels(c, counts) for c in e.cpu_children)
    # aten::to converts through its child aten::_to_copy, or returns its
    # input unchanged.
    if below == 0 and e.name.startswith("aten::") and e.name != "aten::to":
        counts[e.name] = counts.get(e.name, 0) + 1
        return 1
    return below


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--quant", default="none", choices=["none", "lsq"])
    p.add_argument("--batch", type=int, default=32)
    a = p.parse_args()
    h, w, c = (28, 28, 1) if a.model == "smallcnn" else (32, 32, 3)
    quant = (4, 4) if a.quant == "lsq" else None
    net = torch_models.build(a.model, c, 10, h, w, 1.0, quant).train()
    torch.manual_seed(1)
    x = torch.randn(a.batch, c, h, w)
    y = torch.randint(0, 10, (a.batch,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def step():
        opt.zero_grad(set_to_none=False)
        F.cross_entropy(net(x), y).backward()
        opt.step()

    for _ in range(2):  # LSQ initialises its steps on the first batch; momentum buffers appear
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    counts = {}
    for e in prof.events():
        if e.cpu_parent is None:
            kernels(e, counts)
    print(json.dumps({"framework": "pytorch " + torch.__version__, "model": a.model, "quant": a.quant,
                      "batch": a.batch, "ops_per_step": sum(counts.values()),
                      "by_op": dict(sorted(counts.items(), key=lambda kv: -kv[1]))}))


if __name__ == "__main__":
    main()
