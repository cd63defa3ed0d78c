"""PyTorch twins of qmulgpu's unlearning methods: reference
implementations written from docs/method.md (the project's method spec),
the methods' papers and their reference code, for the twin tests in
qmul/twin_test.go.

    python3 twin_unlearn.py DIR [DIR ...]

Each DIR holds scenario.json: the method, the case's overrides, the data
(a raw uint8 NHWC image file, labels, normalisation, augmentation), the
forget and retain sets, the initial model (safetensors, loaded into the
twin of bench/torch_models.py) and the random choices the Go run made —
minibatch orders, crops and flips, label draws — replayed here in the
order the method's definition consumes them.

The configuration (epochs, rate, schedule, momentum, weight decay,
minibatch sizes, augmentation and each method's own parameters) comes from
the sourced table of docs/methods.md, "Defaults and their sources", with
the case's overrides on top — never from the Go run's hyper-parameters.
The twin checks the replayed passes against that configuration (minibatch
sizes, augmentation on or off, the fixed orders SSD uses), and computes
masks, selections and labels itself. After the run it writes compared.json:
for every parameter and BatchNorm statistic, the norm of the twin's update
and of the difference between the Go run's result and the twin's.
"""
import copy
import json
import math
import os
import re
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
import torch_models  # noqa: E402

TABLE = os.path.join(HERE, "..", "..", "docs", "methods.md")
SECTION = "## Defaults and their sources"
EMA = 0.9  # smoothing of the --agr step and sample norm estimates


def fail(msg):
    sys.exit("twin: " + msg)


# ------------------------------------------------------------ the table

def parse_value(text):
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"\d+(,\d+)+", text):
        return [int(v) for v in text.split(",")]
    try:
        return float(text)
    except ValueError:
        return text


def read_table(path=TABLE):
    """{method: {parameter: value}} from the table's rows: method(s),
    parameter, value (in backticks), source, notes."""
    table, inside = {}, False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("## "):
                inside = line.strip() == SECTION
                continue
            if not inside or not line.startswith("|"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 3 or cells[0] == "method" or set(cells[0]) <= set("-: "):
                continue
            value = re.findall(r"`([^`]*)`", cells[2])
            if not value:
                continue  # a value depending on the data set: the cases set it
            for m in re.findall(r"`([^`]+)`", cells[0]):
                table.setdefault(m, {})[cells[1].strip("`")] = parse_value(value[0])
    if not table:
        fail("no rows under %r in %s" % (SECTION, path))
    return table


# ------------------------------------------------------------ the replay

class Batch:
    """One replayed minibatch: data set indices, and the crop corners and
    flips of an augmented pass."""

    def __init__(self, idx, crop=None, flip=None):
        self.idx = torch.tensor(idx, dtype=torch.long)
        self.crop = None if crop is None else torch.tensor(crop, dtype=torch.long).reshape(-1, 2)
        self.flip = None if flip is None else torch.tensor(flip, dtype=torch.long)

    def augmented(self):
        return self.crop is not None or self.flip is not None


class Replay:
    """The Go run's random choices, consumed in order."""

    def __init__(self, events):
        self.events, self.i = events or [], 0

    def take(self, kind, role):
        if self.i >= len(self.events):
            fail("wanted %s %s, the run recorded no more choices" % (kind, role))
        e = self.events[self.i]
        if e["kind"] != kind or e["role"] != role:
            fail("wanted %s %s, the run recorded %s %s" % (kind, role, e["kind"], e["role"]))
        self.i += 1
        if kind == "labels":
            return torch.tensor(e["labels"], dtype=torch.long)
        crops, flips = e.get("crops") or [], e.get("flips") or []
        return [Batch(b, crops[i] if crops else None, flips[i] if flips else None)
                for i, b in enumerate(e["batches"])]

    def finish(self):
        if self.i != len(self.events):
            fail("%d recorded choices left unused" % (len(self.events) - self.i))


# ------------------------------------------------------------- the twin

class Twin:
    def __init__(self, sc, table):
        self.sc = sc
        if sc["method"] not in table:
            fail("docs/methods.md has no rows for %s" % sc["method"])
        self.cfg = dict(table[sc["method"]])
        self.cfg.update(sc["overrides"])
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
        self.replay = Replay(sc["events"])
        self.mask = None
        self.notes = {}  # diagnostics for compared.json

    def need(self, name):
        if name not in self.cfg:
            fail("docs/methods.md gives %s no %s" % (self.sc["method"], name))
        return self.cfg[name]

    def optimizer(self):
        self.opt = torch.optim.SGD(self.params, lr=self.need("lr"), momentum=self.need("momentum"),
                                   weight_decay=self.need("wd"))
        kind = self.need("lr-schedule")
        if kind == "cosine":
            self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=self.need("epochs"))
        elif kind == "multistep":
            ms = self.need("lr-milestones")
            self.sched = torch.optim.lr_scheduler.MultiStepLR(self.opt, ms if isinstance(ms, list) else [ms], 0.1)
        elif kind == "constant":
            self.sched = None
        else:
            fail("unknown lr-schedule %r" % kind)

    def run(self):
        name = self.sc["method"].replace("-", "_").replace("+", "_plus")
        if name == "ssd":
            self.ssd()
            return
        self.optimizer()
        setup = getattr(self, "setup_" + name, None)
        if setup:
            setup()
        for e in range(self.need("epochs")):
            getattr(self, name)(e)
            if self.sched:
                self.sched.step()

    # ------------------------------------------------------------ basics

    def batches(self, role, size=None, members=None):
        """The replayed minibatches of a pass, checked against the
        configuration: minibatches of size (the last may be smaller)
        covering members exactly, augmented exactly when the table says
        the method augments."""
        bs = self.replay.take("batches", role)
        size = size or self.need("batch")
        if any(len(b.idx) != size for b in bs[:-1]) or (bs and len(bs[-1].idx) > size):
            fail("%s pass: minibatches of %s, the configuration's are %d" % (role, [len(b.idx) for b in bs], size))
        if members is not None and sorted(torch.cat([b.idx for b in bs]).tolist()) != sorted(members.tolist()):
            fail("%s pass: the minibatches do not cover the set" % role)
        can = self.sc["pad"] > 0 or self.sc["flip"]
        if can and any(b.augmented() != bool(self.need("augment")) for b in bs):
            fail("%s pass: augmented %s, the table's augment is %s" % (role, bs[0].augmented(), self.need("augment")))
        return bs

    def pix(self, b):
        """The minibatch's pixels in [0, 1], cropped from the zero-padded
        image and flipped as recorded."""
        p = self.pixels[b.idx]
        if not b.augmented():
            return p
        pad = self.sc["pad"]
        h, w = p.shape[2], p.shape[3]
        padded = F.pad(p, (pad, pad, pad, pad))
        out = torch.empty_like(p)
        for i in range(len(b.idx)):
            cy, cx = (int(b.crop[i, 0]), int(b.crop[i, 1])) if b.crop is not None else (pad, pad)
            img = padded[i, :, cy:cy + h, cx:cx + w]
            if b.flip is not None and b.flip[i]:
                img = img.flip(-1)
            out[i] = img
        return out

    def x(self, b):
        return (self.pix(b) - self.mean) / self.std

    def plain(self, idx):
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
                    p.grad.add_(p, alpha=self.need("wd")).mul_(self.mask[i])
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

    # ---------------------------------------------------------- baselines

    def ft(self, e):
        # ℓ1-sparse (Unlearn-Sparse's FT_iter): γ_e = w(1 − e/E).
        gamma = self.cfg.get("l1-weight", 0.0) * (1 - e / self.need("epochs"))
        for b in self.batches("retain", members=self.retain):
            self.opt.zero_grad(set_to_none=False)
            F.cross_entropy(self.net(self.x(b)), self.y[b.idx]).backward()
            if gamma > 0:
                with torch.no_grad():
                    for p in self.params:
                        p.grad.add_(torch.sign(p), alpha=gamma)
            self.update()

    def l1(self, e):
        self.need("l1-weight")
        self.ft(e)

    def ga(self, e):
        for b in self.batches("forget", members=self.forget):
            self.step(-F.cross_entropy(self.net(self.x(b)), self.y[b.idx]))

    def rl(self, e):
        if self.need("schedule") == "joint":
            y = self.y.clone()
            y[self.forget] = self.replay.take("labels", "forget")
            for b in self.batches("joint", members=torch.cat([self.forget, self.retain])):
                self.step(F.cross_entropy(self.net(self.x(b)), y[b.idx]))
            return
        for b in self.batches("forget", members=self.forget):
            labels = self.replay.take("labels", "batch")
            self.step(F.cross_entropy(self.net(self.x(b)), labels))
        for b in self.batches("retain", members=self.retain):
            self.step(F.cross_entropy(self.net(self.x(b)), self.y[b.idx]))

    def setup_salun(self):
        """SalUn's mask (generate_mask.py): at θ_o, evaluation mode, the
        gradients of −CE summed over the forget loader's minibatches; the
        weights of rank < ⌊ratio·N⌋ when all |g| are sorted in decreasing
        order train, the rest stay at θ_o."""
        self.net.eval()
        self.opt.zero_grad(set_to_none=False)
        for b in self.batches("saliency", members=self.forget):
            (-F.cross_entropy(self.net(self.x(b)), self.y[b.idx])).backward()
        self.net.train()
        mags = torch.cat([p.grad.detach().abs().flatten() for p in self.params])
        positions = torch.sort(-mags, stable=True).indices
        ranks = torch.argsort(positions)
        flat = (ranks < int(len(mags) * self.need("mask-ratio"))).float()
        self.mask, at = [], 0
        for p in self.params:
            self.mask.append(flat[at:at + p.numel()].reshape(p.shape))
            at += p.numel()
        self.opt.zero_grad(set_to_none=False)

    def salun(self, e):
        self.rl(e)

    def setup_bs(self):
        self.frozen = copy.deepcopy(self.net).eval()

    def bs(self, e):
        frozen, bound = self.frozen, self.need("bound")
        for b in self.batches("forget", members=self.forget):
            xp = self.pix(b).clone().requires_grad_(True)
            loss = F.cross_entropy(frozen((xp - self.mean) / self.std), self.y[b.idx])
            (g,) = torch.autograd.grad(loss, xp)
            adv = torch.round(255 * torch.clamp(xp.detach() + bound * torch.sign(g), 0, 1)) / 255
            with torch.no_grad():
                shrunk = frozen((adv - self.mean) / self.std).argmax(1)
            self.step(F.cross_entropy(self.net(self.x(b)), shrunk))

    def oeu(self, e):
        fb = self.batches("forget", members=self.forget)
        for i, b in enumerate(self.batches("retain", members=self.retain)):
            f = fb[i % len(fb)]
            p = F.softmax(self.net(self.x(f)), 1)
            entropy = -(p * torch.log(p.clamp_min(1e-30))).sum(1).mean()
            gf = torch.autograd.grad(-entropy, self.params)
            gr = torch.autograd.grad(F.cross_entropy(self.net(self.x(b)), self.y[b.idx]), self.params)
            dot = sum(float((a.double() * c.double()).sum()) for a, c in zip(gf, gr))
            rr = sum(float((c.double() ** 2).sum()) for c in gr)
            coef = dot / rr if rr > 0 else 0.0
            for prm, a, c in zip(self.params, gf, gr):
                prm.grad = (a - coef * c + c).detach()
            self.update()

    # ------------------------------------------------ SCRUB, SSD, NegGrad+

    def setup_scrub(self):
        self.teacher = copy.deepcopy(self.net).eval()

    def scrub(self, e):
        """SCRUB (the authors' large-scale notebook): epochs e < max-steps
        start with a max pass over D_f on −KL(teacher ‖ student); every
        epoch makes a min pass over D_r on α·KL + γ·CE; KL at temperature
        T times T², averaged over the minibatch (DistillKL)."""
        temp = self.need("temperature")

        def kl(s, t):
            return F.kl_div(F.log_softmax(s / temp, 1), F.softmax(t / temp, 1), reduction="batchmean") * temp * temp

        def teach(x):
            with torch.no_grad():
                return self.teacher(x)

        if e < self.need("max-steps"):
            for b in self.batches("forget", self.need("forget-batch"), self.forget):
                x = self.x(b)
                self.step(-kl(self.net(x), teach(x)))
        for b in self.batches("retain", members=self.retain):
            x = self.x(b)
            s = self.net(x)
            self.step(self.need("kd-weight") * kl(s, teach(x)) + self.need("ce-weight") * F.cross_entropy(s, self.y[b.idx]))

    def ssd(self):
        """SSD (the reference's random-forgetting script): diagonal Fisher
        importances, the mean over minibatches of the squared gradient of
        the mean CE in evaluation mode, on D = D_r then D_f and on D_f, in
        order, plain images; θ ← min(λ·I_D/I_f, 1)·θ where I_f > α·I_D."""
        self.net.eval()
        opt = torch.optim.SGD(self.params, lr=0.1)
        quantizers = self.need("dampen-quantizers")
        named = [(n, p) for n, p in self.net.named_parameters() if quantizers or ".quan_" not in n]
        bs = self.need("batch")

        def importance(role, idx):
            mine = [idx[i:i + bs] for i in range(0, len(idx), bs)]
            ours = self.replay.take("batches", role)
            if [b.idx.tolist() for b in ours] != [m.tolist() for m in mine]:
                fail("ssd %s pass: minibatches %s, the reference's fixed order gives %s"
                     % (role, [b.idx.tolist() for b in ours], [m.tolist() for m in mine]))
            imp = [torch.zeros_like(p, dtype=torch.float64) for _, p in named]
            for b in mine:
                opt.zero_grad(set_to_none=False)
                F.cross_entropy(self.net(self.plain(b)), self.y[b]).backward()
                for i, (_, p) in enumerate(named):
                    imp[i] += p.grad.double() ** 2
            return [v / len(mine) for v in imp]

        i_d = importance("train", torch.cat([self.retain, self.forget]))
        i_f = importance("forget", self.forget)
        alpha, lam = self.need("selection-weighting"), self.need("dampening-constant")
        selected = 0
        with torch.no_grad():
            for (_, p), d, f in zip(named, i_d, i_f):
                sel = f > alpha * d
                factor = torch.clamp(lam * d / f, max=1.0)
                p[sel] = (p.double()[sel] * factor[sel]).float()
                selected += int(sel.sum())
        self.notes["ssd_dampened_elements"] = selected

    def neggrad_plus(self, e):
        """NegGrad+ (the SCRUB authors' train_negrad): β·CE on each retain
        minibatch − (1−β)·CE on the next forget minibatch (cycling), one
        step on the sum."""
        fb = self.batches("forget", self.need("forget-batch"), self.forget)
        beta = self.need("retain-weight")
        for i, b in enumerate(self.batches("retain", members=self.retain)):
            f = fb[i % len(fb)]
            retain = F.cross_entropy(self.net(self.x(b)), self.y[b.idx])
            forget = F.cross_entropy(self.net(self.x(f)), self.y[f.idx])
            self.step(beta * retain - (1 - beta) * forget)

    # ------------------------------------------------ Q-MUL and its ablations

    def described_similar_labels(self):
        """ŷ = argmin_{j≠y} |p_j − p_y|, evaluation mode, D_f in order; the
        softmax in double precision, since on a confident model the gaps
        differ by less than float32 resolves around p_y ≈ 1."""
        self.net.eval()
        with torch.no_grad():
            p = F.softmax(self.net(self.plain(self.forget)).double(), 1)
        self.net.train()
        y = self.y[self.forget]
        gap = (p - p.gather(1, y[:, None])).abs()
        gap.scatter_(1, y[:, None], float("inf"))
        return gap.argmin(1)

    def released_similar_labels(self):
        """The released code's relabelling as docs/methods.md describes
        it: training mode over a shuffled (and, as the training passes,
        augmented) forget loader; the probability of the true class
        subtracted from the logits; the argmin taken over that vector with
        the true class removed and its position used as the class id; the
        labels, in the loader's order, given to D_f in dataset order."""
        self.net.train()
        out = []
        with torch.no_grad():
            for b in self.batches("similar-released", members=self.forget):
                z = self.net(self.x(b)).double()
                y = self.y[b.idx]
                p_y = F.softmax(z, 1).gather(1, y[:, None])
                diff = (z - p_y).abs()
                others = torch.ones_like(diff, dtype=torch.bool)
                others.scatter_(1, y[:, None], False)
                out.append(diff[others].reshape(len(y), -1).argmin(1))
        return torch.cat(out)

    def qmul(self, e):
        self.agr_method(e, random=False, reweight=True)

    def sl(self, e):
        self.agr_method(e, random=False, reweight=False)

    def rl_agr(self, e):
        self.agr_method(e, random=True, reweight=True)

    def relabel(self, random, joint):
        y = self.y.clone()
        if random and joint:
            y[self.forget] = self.replay.take("labels", "forget")
        elif not random:
            if self.need("similar-labels") == "released":
                y[self.forget] = self.released_similar_labels()
            else:
                y[self.forget] = self.described_similar_labels()
            ours = self.replay.take("labels", "similar")
            self.notes["similar_labels_differing"] = self.notes.get("similar_labels_differing", 0) + \
                int((ours != y[self.forget]).sum())
        return y

    def agr_method(self, e, random, reweight):
        joint = self.need("schedule") == "joint"
        per_batch = random and not joint  # RL's draws: per forget minibatch
        y = self.relabel(random, joint)
        mode = self.need("agr") if reweight else ""
        if e == 0:
            self.norm = [0.0, 0.0]
        wf = wr = 1.0

        def labels_of(b):
            return self.replay.take("labels", "batch") if per_batch else y[b.idx]

        if mode == "epoch":
            self.frozen_stats(True)
            means = []
            for role, forget in (("measure-forget", True), ("measure-retain", False)):
                norms = []
                for b in self.batches(role, members=self.forget if forget else self.retain):
                    lab = labels_of(b) if forget else y[b.idx]
                    self.opt.zero_grad(set_to_none=False)
                    F.cross_entropy(self.net(self.x(b)), lab).backward()
                    norms.append(self.grad_norm())
                means.append(sum(norms) / len(norms))
            self.frozen_stats(False)
            gf, gr = means
            wf, wr = gr / (gf + gr), gf / (gf + gr)
        elif mode in ("step", "sample") and e == 0:
            self.frozen_stats(True)
            for g, role in enumerate(("seed-forget", "seed-retain")):
                b = self.batches(role, members=self.forget if g == 0 else self.retain)[0]
                lab = labels_of(b) if g == 0 else y[b.idx]
                self.norm[g] = self.measure(mode, b, lab)
            self.frozen_stats(False)
        if joint:
            for b in self.batches("joint", members=torch.cat([self.forget, self.retain])):
                self.joint_step(mode, b, y, wf, wr)
            return
        for g, role in enumerate(("forget", "retain")):
            for b in self.batches(role, members=self.forget if g == 0 else self.retain):
                lab = labels_of(b) if g == 0 else y[b.idx]
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
        in_forget = torch.isin(b.idx, self.forget)
        if mode == "sample":
            wf, wr = self.weights()
        w = torch.where(in_forget, torch.tensor(wf), torch.tensor(wr)).float()
        n = len(b.idx)
        self.opt.zero_grad(set_to_none=False)
        if mode == "sample":
            with PerSample(self.net) as ps:
                (w * F.cross_entropy(self.net(self.x(b)), y[b.idx], reduction="none")).sum().div(n).backward()
                per = ps.norms()
            for g, sel in enumerate((in_forget, ~in_forget)):
                sel = sel & (w > 0)
                if sel.any():
                    # the norm of each ∇ℓ_i: undo the weight and the 1/|B|
                    v = float((per[sel] / w[sel] * n).mean())
                    self.norm[g] = EMA * self.norm[g] + (1 - EMA) * v
        else:
            (w * F.cross_entropy(self.net(self.x(b)), y[b.idx], reduction="none")).sum().div(n).backward()
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
    table = read_table()
    for d in sys.argv[1:]:
        with open(os.path.join(d, "scenario.json")) as f:
            sc = json.load(f)
        twin = Twin(sc, table)
        twin.run()
        twin.replay.finish()
        compare(twin, sc)


if __name__ == "__main__":
    main()
