"""PyTorch twins of qmulgpu's unlearning methods: reference
implementations written from docs/method.md (the project's method spec)
and the methods' papers, for the twin tests in qmul/twin_test.go.

    python3 twin_unlearn.py DIR [DIR ...]

Each DIR holds scenario.json: the method and its hyper-parameters, the data
(a raw uint8 NHWC image file, labels, normalisation), the forget and retain
sets, the initial model (safetensors, loaded into the twin of
bench/torch_models.py) and the random choices the Go run made — minibatch
orders and label draws, replayed here in the order the method's definition
consumes them. The twin runs one epoch, then writes compared.json: for
every parameter and BatchNorm statistic, the norm of the twin's update and
of the difference between the Go run's result and the twin's.
"""
import copy
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
import torch_models  # noqa: E402

EMA = 0.9  # smoothing of the --agr step and sample norm estimates


class Replay:
    """The Go run's random choices, consumed in order."""

    def __init__(self, events):
        self.events, self.i = events or [], 0

    def take(self, kind, role):
        if self.i >= len(self.events):
            sys.exit("twin: wanted %s %s, the run recorded no more choices" % (kind, role))
        e = self.events[self.i]
        if e["kind"] != kind or e["role"] != role:
            sys.exit("twin: wanted %s %s, the run recorded %s %s" % (kind, role, e["kind"], e["role"]))
        self.i += 1
        if kind == "batches":
            return [torch.tensor(b, dtype=torch.long) for b in e["batches"]]
        return torch.tensor(e["labels"], dtype=torch.long)

    def finish(self):
        if self.i != len(self.events):
            sys.exit("twin: %d recorded choices left unused" % (len(self.events) - self.i))


class Twin:
    def __init__(self, sc):
        self.sc, self.h = sc, sc["hyper"]
        quant = (4, 4) if sc["quant"] == "lsq" else None
        self.net = torch_models.build("smallcnn", sc["c"], sc["classes"], sc["h"], sc["w"], 1.0, quant)
        tensors, _ = torch_models.read_safetensors(sc["initial"])
        self.net.load_state_dict(tensors, strict=True)
        self.net.train()
        raw = np.fromfile(sc["images"], dtype=np.uint8).reshape(sc["n"], sc["h"], sc["w"], sc["c"])
        self.pixels = torch.from_numpy(raw.astype(np.float32) / 255).permute(0, 3, 1, 2).contiguous()
        self.mean = torch.tensor(sc["mean"]).reshape(1, -1, 1, 1)
        self.std = torch.tensor(sc["std"]).reshape(1, -1, 1, 1)
        self.y = torch.tensor(sc["labels"], dtype=torch.long)
        self.forget = torch.tensor(sc["forget"], dtype=torch.long)
        self.retain = torch.tensor(sc["retain"], dtype=torch.long)
        self.params = list(self.net.parameters())
        self.opt = torch.optim.SGD(self.params, lr=self.h["lr"], momentum=self.h["momentum"],
                                   weight_decay=self.h["weight_decay"])
        self.replay = Replay(sc["events"])
        self.mask = None
        self.notes = {}  # diagnostics for compared.json

    # ---------------------------------------------------------------- basics

    def x(self, idx):
        return (self.pixels[idx] - self.mean) / self.std

    def step(self, loss, scale=1.0):
        """One SGD update on loss; scale multiplies the loss's gradient but
        not the weight decay (a weighted loss)."""
        self.opt.zero_grad(set_to_none=False)
        loss.backward()
        self.update(scale)

    def update(self, scale=1.0):
        with torch.no_grad():
            for i, p in enumerate(self.params):
                p.grad.mul_(scale)
                if self.mask is not None:
                    # SalUn: masked-out weights get no gradient, no decay
                    # and no momentum: they stay at θ_o.
                    p.grad.add_(p, alpha=self.h["weight_decay"]).mul_(self.mask[i])
        if self.mask is not None:
            wd = self.opt.param_groups[0]["weight_decay"]
            self.opt.param_groups[0]["weight_decay"] = 0.0
            self.opt.step()
            self.opt.param_groups[0]["weight_decay"] = wd
        else:
            self.opt.step()

    def grad_norm(self):
        """Σ over parameter tensors of each tensor's L2 norm (method.md 3.2)."""
        return sum(float(p.grad.norm()) for p in self.params)

    def frozen_stats(self, on):
        for m in self.net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                if on:
                    m._saved_momentum, m.momentum = m.momentum, 0.0
                else:
                    m.momentum = m._saved_momentum

    # ---------------------------------------------------------------- methods

    def ft(self, alpha=0.0):
        gamma = alpha  # γ_t = α(1 − t/T) at the first epoch t = 0
        for b in self.replay.take("batches", "retain"):
            self.opt.zero_grad(set_to_none=False)
            F.cross_entropy(self.net(self.x(b)), self.y[b]).backward()
            if gamma > 0:
                with torch.no_grad():
                    for p in self.params:
                        p.grad.add_(torch.sign(p), alpha=gamma)
            self.update()

    def l1(self):
        self.ft(self.h["alpha"])

    def ga(self):
        for b in self.replay.take("batches", "forget"):
            self.step(-F.cross_entropy(self.net(self.x(b)), self.y[b]))

    def rl(self):
        if self.h["schedule"] == "joint":
            y = self.y.clone()
            y[self.forget] = self.replay.take("labels", "forget")
            for b in self.replay.take("batches", "joint"):
                self.step(F.cross_entropy(self.net(self.x(b)), y[b]))
            return
        for b in self.replay.take("batches", "forget"):
            labels = self.replay.take("labels", "batch")
            self.step(F.cross_entropy(self.net(self.x(b)), labels))
        for b in self.replay.take("batches", "retain"):
            self.step(F.cross_entropy(self.net(self.x(b)), self.y[b]))

    def salun(self):
        # Saliency at θ_o: |∇(−CE on D_f)|, D_f in order, evaluation mode.
        self.net.eval()
        self.opt.zero_grad(set_to_none=False)
        bs = self.h["batch"]
        for i in range(0, len(self.forget), bs):
            b = self.forget[i:i + bs]
            (-F.cross_entropy(self.net(self.x(b)), self.y[b])).backward()
        self.net.train()
        mags = torch.cat([p.grad.detach().abs().flatten() for p in self.params])
        keep = int(round((1 - self.h["sparsity"]) * mags.numel()))
        # m = 1(|g| ≥ the keep-th largest |g|): ties at the threshold kept.
        threshold = torch.sort(mags, descending=True).values[keep - 1]
        flat = (mags >= threshold).float()
        self.mask, at = [], 0
        for p in self.params:
            self.mask.append(flat[at:at + p.numel()].reshape(p.shape))
            at += p.numel()
        self.opt.zero_grad(set_to_none=False)
        self.rl()

    def bs(self):
        frozen = copy.deepcopy(self.net).eval()
        for b in self.replay.take("batches", "forget"):
            xp = self.pixels[b].clone().requires_grad_(True)
            loss = F.cross_entropy(frozen((xp - self.mean) / self.std), self.y[b])
            (g,) = torch.autograd.grad(loss, xp)
            adv = torch.round(255 * torch.clamp(xp.detach() + self.h["bound"] * torch.sign(g), 0, 1)) / 255
            with torch.no_grad():
                shrunk = frozen((adv - self.mean) / self.std).argmax(1)
            self.step(F.cross_entropy(self.net(self.x(b)), shrunk))

    def oeu(self):
        fb = self.replay.take("batches", "forget")
        for i, b in enumerate(self.replay.take("batches", "retain")):
            f = fb[i % len(fb)]
            p = F.softmax(self.net(self.x(f)), 1)
            entropy = -(p * torch.log(p.clamp_min(1e-30))).sum(1).mean()
            gf = torch.autograd.grad(-entropy, self.params)
            gr = torch.autograd.grad(F.cross_entropy(self.net(self.x(b)), self.y[b]), self.params)
            dot = sum(float((a.double() * c.double()).sum()) for a, c in zip(gf, gr))
            rr = sum(float((c.double() ** 2).sum()) for c in gr)
            coef = dot / rr if rr > 0 else 0.0
            for prm, a, c in zip(self.params, gf, gr):
                prm.grad = (a - coef * c + c).detach()
            self.update()

    # ------------------------------------------------ SCRUB, SSD, NegGrad+

    def scrub(self):
        """SCRUB (Kurmanji et al. 2023), epoch 0: a max pass over D_f on
        −KL(teacher ‖ student), then a min pass over D_r on
        α·KL + γ·CE; KL at temperature T times T²."""
        teacher = copy.deepcopy(self.net).eval()
        temp = self.h["temperature"]

        def kl(s, t):
            return F.kl_div(F.log_softmax(s / temp, 1), F.softmax(t / temp, 1), reduction="batchmean") * temp * temp

        def teach(x):
            with torch.no_grad():
                return teacher(x)

        if self.h["max_steps"] > 0:
            for b in self.replay.take("batches", "forget"):
                x = self.x(b)
                self.step(-kl(self.net(x), teach(x)))
        for b in self.replay.take("batches", "retain"):
            x = self.x(b)
            s = self.net(x)
            self.step(self.h["alpha"] * kl(s, teach(x)) + self.h["gamma"] * F.cross_entropy(s, self.y[b]))

    def ssd(self):
        """SSD (Foster et al. 2024): diagonal Fisher importances on D and
        D_f (mean over minibatches of the squared gradient of the mean CE,
        evaluation mode); θ ← min(λ·I_D/I_f, 1)·θ where I_f > α·I_D. The
        quantizers' steps are not dampened."""
        self.net.eval()
        named = [(n, p) for n, p in self.net.named_parameters() if ".quan_" not in n]

        def importance(role):
            imp = [torch.zeros_like(p, dtype=torch.float64) for _, p in named]
            batches = self.replay.take("batches", role)
            for b in batches:
                self.opt.zero_grad(set_to_none=False)
                F.cross_entropy(self.net(self.x(b)), self.y[b]).backward()
                for i, (_, p) in enumerate(named):
                    imp[i] += p.grad.double() ** 2
            return [v / len(batches) for v in imp]

        i_d = importance("train")
        i_f = importance("forget")
        selected = 0
        with torch.no_grad():
            for (_, p), d, f in zip(named, i_d, i_f):
                sel = f > self.h["alpha"] * d
                factor = torch.clamp(self.h["lambda"] * d / f, max=1.0)
                p[sel] = (p.double()[sel] * factor[sel]).float()
                selected += int(sel.sum())
        self.notes["ssd_dampened_elements"] = selected

    def neggrad_plus(self):
        """NegGrad+: β·CE on each retain minibatch − (1−β)·CE on the next
        forget minibatch (cycling), one step on the sum."""
        fb = self.replay.take("batches", "forget")
        beta = self.h["beta"]
        for i, b in enumerate(self.replay.take("batches", "retain")):
            f = fb[i % len(fb)]
            retain = F.cross_entropy(self.net(self.x(b)), self.y[b])
            forget = F.cross_entropy(self.net(self.x(f)), self.y[f])
            self.step(beta * retain - (1 - beta) * forget)

    # ------------------------------------------------ Q-MUL and its ablations

    def similar_labels(self):
        """ŷ = argmin_{j≠y} |p_j − p_y|, evaluation mode, D_f in order; the
        softmax in double precision, since on a confident model the gaps
        differ by less than float32 resolves around p_y ≈ 1."""
        self.net.eval()
        with torch.no_grad():
            p = F.softmax(self.net(self.x(self.forget)).double(), 1)
        self.net.train()
        y = self.y[self.forget]
        gap = (p - p.gather(1, y[:, None])).abs()
        gap.scatter_(1, y[:, None], float("inf"))
        return gap.argmin(1)

    def qmul(self):
        self.agr_method(random=False, reweight=True)

    def sl(self):
        self.agr_method(random=False, reweight=False)

    def rl_agr(self):
        self.agr_method(random=True, reweight=True)

    def agr_method(self, random, reweight):
        joint = self.h["schedule"] == "joint"
        per_batch = random and not joint  # RL's draws: per forget minibatch
        y = self.y.clone()
        if random and joint:
            y[self.forget] = self.replay.take("labels", "forget")
        elif not random:
            y[self.forget] = self.similar_labels()
            ours = self.replay.take("labels", "similar")
            self.notes["similar_labels_differing"] = int((ours != y[self.forget]).sum())
        mode = self.h.get("agr", "") if reweight else ""
        self.norm = [0.0, 0.0]
        wf = wr = 1.0

        def labels_of(b):
            return self.replay.take("labels", "batch") if per_batch else y[b]

        if mode == "epoch":
            self.frozen_stats(True)
            means = []
            for role, forget in (("measure-forget", True), ("measure-retain", False)):
                norms = []
                for b in self.replay.take("batches", role):
                    lab = labels_of(b) if forget else y[b]
                    self.opt.zero_grad(set_to_none=False)
                    F.cross_entropy(self.net(self.x(b)), lab).backward()
                    norms.append(self.grad_norm())
                means.append(sum(norms) / len(norms))
            self.frozen_stats(False)
            gf, gr = means
            wf, wr = gr / (gf + gr), gf / (gf + gr)
        elif mode in ("step", "sample"):
            self.frozen_stats(True)
            for g, role in enumerate(("seed-forget", "seed-retain")):
                b = self.replay.take("batches", role)[0]
                lab = labels_of(b) if g == 0 else y[b]
                self.norm[g] = self.measure(mode, b, lab)
            self.frozen_stats(False)
        if joint:
            for b in self.replay.take("batches", "joint"):
                self.joint_step(mode, b, y, wf, wr)
            return
        for g, role in enumerate(("forget", "retain")):
            for b in self.replay.take("batches", role):
                lab = labels_of(b) if g == 0 else y[b]
                if mode in ("step", "sample"):
                    v = self.measure(mode, b, lab)
                    self.norm[g] = EMA * self.norm[g] + (1 - EMA) * v
                    w = self.weights()[g]
                    self.update(w)
                else:
                    self.step(F.cross_entropy(self.net(self.x(b)), lab), (wf, wr)[g])

    def weights(self):
        nf, nr = self.norm
        if nf + nr == 0:
            return 0.5, 0.5
        return nr / (nf + nr), nf / (nf + nr)

    def measure(self, mode, b, lab):
        """Backward of the mean CE (gradients left in place); returns the
        minibatch gradient norm (step) or the sum of the per-sample
        gradient norms of that loss (sample)."""
        self.opt.zero_grad(set_to_none=False)
        if mode == "step":
            F.cross_entropy(self.net(self.x(b)), lab).backward()
            return self.grad_norm()
        with PerSample(self.net) as ps:
            F.cross_entropy(self.net(self.x(b)), lab).backward()
            return float(ps.norms().sum())

    def joint_step(self, mode, b, y, wf, wr):
        in_forget = torch.isin(b, self.forget)
        if mode == "sample":
            wf, wr = self.weights()
        w = torch.where(in_forget, torch.tensor(wf), torch.tensor(wr)).float()
        n = len(b)
        self.opt.zero_grad(set_to_none=False)
        if mode == "sample":
            with PerSample(self.net) as ps:
                (w * F.cross_entropy(self.net(self.x(b)), y[b], reduction="none")).sum().div(n).backward()
                per = ps.norms()
            for g, sel in enumerate((in_forget, ~in_forget)):
                sel = sel & (w > 0)
                if sel.any():
                    # the norm of each ∇ℓ_i: undo the weight and the 1/|B|
                    v = float((per[sel] / w[sel] * n).mean())
                    self.norm[g] = EMA * self.norm[g] + (1 - EMA) * v
        else:
            (w * F.cross_entropy(self.net(self.x(b)), y[b], reduction="none")).sum().div(n).backward()
        self.update()


class PerSample:
    """Per-sample gradient norms of one backward pass, from the layers'
    inputs and output gradients: for a convolution or linear layer the
    gradient of sample n is Σ_positions δ_n ⊗ a_n (the unfolded, quantized
    input); for BatchNorm γ and β, Σ_positions δ_n·x̂_n and Σ_positions δ_n.
    Σ over those tensors of each one's L2 norm, per sample (quantizer steps
    are not included, as docs/design.md states for --agr sample)."""

    def __init__(self, net):
        self.net, self.saved, self.handles = net, [], []

    def __enter__(self):
        for m in self.net.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.BatchNorm2d)):
                self.handles.append(m.register_forward_hook(self.hook))
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            h.remove()

    def hook(self, m, inp, out):
        x = inp[0].detach()
        if isinstance(m, torch_models.QConv2d):
            with torch.no_grad():
                x = m.quan_a_fn(x)
        out.retain_grad()
        self.saved.append((m, x, out))

    def norms(self):
        total = None
        for m, x, out in self.saved:
            d = out.grad
            n = d.shape[0]
            if isinstance(m, torch.nn.Conv2d):
                cols = F.unfold(x, m.kernel_size, m.dilation, m.padding, m.stride)  # [N, C·R·S, L]
                g = torch.einsum("nkl,ncl->nkc", d.reshape(n, d.shape[1], -1), cols)
                v = g.reshape(n, -1).norm(dim=1)
            elif isinstance(m, torch.nn.Linear):
                v = d.norm(dim=1) * x.norm(dim=1) + d.norm(dim=1)
            else:
                mu = x.mean(dim=(0, 2, 3), keepdim=True)
                var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
                xhat = (x - mu) / torch.sqrt(var + m.eps)
                v = (d * xhat).sum(dim=(2, 3)).norm(dim=1) + d.sum(dim=(2, 3)).norm(dim=1)
            total = v if total is None else total + v
        return total.detach()


def compare(twin, sc):
    ours, _ = torch_models.read_safetensors(sc["ours"])
    init, _ = torch_models.read_safetensors(sc["initial"])
    out = []
    params = {n for n, _ in twin.net.named_parameters()}
    for name, t in twin.net.state_dict().items():
        if not t.is_floating_point():
            continue
        upd = t.double() - init[name].double()
        diff = ours[name].double() - t.double()
        out.append({"name": name, "param": name in params, "update_norm": float(upd.norm()),
                    "diff_norm": float(diff.norm())})
    with open(sc["compared"], "w") as f:
        json.dump({"params": out, "notes": twin.notes}, f)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    for d in sys.argv[1:]:
        with open(os.path.join(d, "scenario.json")) as f:
            sc = json.load(f)
        twin = Twin(sc)
        getattr(twin, sc["method"].replace("-", "_").replace("+", "_plus"))()
        twin.replay.finish()
        compare(twin, sc)


if __name__ == "__main__":
    main()
