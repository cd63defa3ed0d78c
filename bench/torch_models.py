"""PyTorch twins of qmulgpu's models and quantizers, used as the reference
for side-by-side benchmarks and for cross-checking checkpoints.

Module and parameter names follow qmulgpu's checkpoints (torchvision's
ResNet-18 and MobileNetV2 names, CIFAR stems for small inputs), so a
qmulgpu model.safetensors loads with load_state_dict(strict=True).
"""
import json
import math
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- quantizers

def _grad_scale(x, scale):
    return (x - x * scale).detach() + x * scale


def _round_pass(x):
    return (x.round() - x).detach() + x


class LSQ(nn.Module):
    """LSQ fake quantizer, as method.md section 2 and qmulgpu's qat.LSQ."""

    def __init__(self, bits, signed, channels=1):
        super().__init__()
        if signed:
            self.qn, self.qp = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        else:
            self.qn, self.qp = 0, 2 ** bits - 1
        self.s = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.int64))
        # A host-side copy of "initialized is set": testing the buffer
        # itself would wait for the GPU in every forward pass. Loading a
        # state dict clears it, so the next forward reads the buffer once.
        self._ready = False

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._ready = False

    def forward(self, x):
        per_channel = self.s.numel() > 1
        if not self._ready:
            if int(self.initialized) == 0:
                with torch.no_grad():
                    if per_channel:
                        m = x.detach().abs().reshape(x.shape[0], -1).mean(1)
                    else:
                        m = x.detach().abs().mean().reshape(1)
                    self.s.copy_((2 * m / math.sqrt(self.qp)).clamp_min(1e-6))
                    self.initialized.fill_(1)
            self._ready = True
        g = 1.0 / math.sqrt(x.numel() / self.s.numel() * self.qp)
        s = _grad_scale(self.s, g)
        if per_channel:
            s = s.reshape(-1, *([1] * (x.dim() - 1)))
        return _round_pass(torch.clamp(x / s, self.qn, self.qp)) * s


class QConv2d(nn.Conv2d):
    def __init__(self, *args, wbits=4, abits=4, signed_input=False, **kw):
        super().__init__(*args, **kw)
        self.quan_w_fn = LSQ(wbits, True)
        self.quan_a_fn = LSQ(abits, signed_input)

    def forward(self, x):
        return self._conv_forward(self.quan_a_fn(x), self.quan_w_fn(self.weight), self.bias)


def conv(cin, cout, k, stride, pad, groups=1, quant=None, signed_input=False):
    """A convolution without bias, quantized with LSQ when quant=(w, a)."""
    if quant is None:
        return nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=False)
    return QConv2d(cin, cout, k, stride, pad, groups=groups, bias=False,
                   wbits=quant[0], abits=quant[1], signed_input=signed_input)


# -------------------------------------------------------------------- models

class SmallCNN(nn.Module):
    def __init__(self, cin=1, classes=10, h=28, w=28, quant=None):
        super().__init__()
        self.conv1 = conv(cin, 32, 3, 1, 1)  # the stem stays float
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = conv(32, 64, 3, 2, 1, quant=quant)
        self.bn2 = nn.BatchNorm2d(64)
        self.conv3 = conv(64, 128, 3, 2, 1, quant=quant)
        self.bn3 = nn.BatchNorm2d(128)
        self.fc = nn.Linear(128 * ((h + 3) // 4) * ((w + 3) // 4), classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        return self.fc(torch.flatten(x, 1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, quant):
        super().__init__()
        self.conv1 = conv(cin, cout, 3, stride, 1, quant=quant)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = conv(cout, cout, 3, 1, 1, quant=quant)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x if self.downsample is None else self.downsample(x)
        return F.relu(out + sc)


class ResNet18(nn.Module):
    def __init__(self, cin=3, classes=10, h=32, w=32, quant=None):
        super().__init__()
        self.imagenet = min(h, w) >= 64
        if self.imagenet:
            self.conv1 = nn.Conv2d(cin, 64, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(cin, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, cout in enumerate([64, 128, 256, 512]):
            stride = 1 if i == 0 else 2
            layer = nn.Sequential(BasicBlock(cin, cout, stride, quant), BasicBlock(cout, cout, 1, quant))
            setattr(self, "layer%d" % (i + 1), layer)
            cin = cout
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        if self.imagenet:
            x = self.maxpool(x)
        for i in range(1, 5):
            x = getattr(self, "layer%d" % i)(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _divisible(v):
    n = max(8, int(v + 4) // 8 * 8)
    return n + 8 if n < 0.9 * v else n


class ConvBNReLU6(nn.Sequential):
    def __init__(self, cin, cout, k, stride, groups=1, quant=None, signed_input=False):
        super().__init__(conv(cin, cout, k, stride, (k - 1) // 2, groups, quant, signed_input),
                         nn.BatchNorm2d(cout), nn.ReLU6())


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, t, quant, signed_input):
        super().__init__()
        hidden = cin * t
        layers = []
        if t != 1:
            layers.append(ConvBNReLU6(cin, hidden, 1, 1, quant=quant, signed_input=signed_input))
        layers.append(ConvBNReLU6(hidden, hidden, 3, stride, hidden, quant, signed_input and t == 1))
        layers += [conv(hidden, cout, 1, 1, 0, quant=quant), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.res = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.res else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, cin=3, classes=10, h=32, w=32, width=1.0, quant=None):
        super().__init__()
        settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
                    [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
        small = min(h, w) < 64
        if small:
            settings[1][3] = 1
        c = _divisible(32 * width)
        last = _divisible(1280 * max(1.0, width))
        feats = [ConvBNReLU6(cin, c, 3, 1 if small else 2)]
        for t, ch, n, s in settings:
            out = _divisible(ch * width)
            for i in range(n):
                feats.append(InvertedResidual(c, out, s if i == 0 else 1, t, quant, len(feats) > 1))
                c = out
        feats.append(ConvBNReLU6(c, last, 1, 1, quant=quant, signed_input=True))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Identity(), nn.Linear(last, classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


def input_shape(arch, spec=None):
    """The (h, w, c) of an "HxWxC" spec, or qmulgpu bench's default for arch."""
    if spec:
        h, w, c = (int(v) for v in spec.split("x"))
        return h, w, c
    return (28, 28, 1) if arch == "smallcnn" else (32, 32, 3)


def setup(device, tf32):
    """Sets PyTorch up for a fair GPU baseline and returns the settings, to
    be stated with the results: cuDNN chooses its algorithms by measuring
    them (qmulgpu measures cuDNN's candidates per shape too), and TF32 is
    allowed in matrix products and convolutions exactly when tf32 is true
    (qmulgpu's default is on; QMUL_TF32=0 turns it off)."""
    if device.type != "cuda":
        return {"conv": "PyTorch on the CPU", "tf32": False, "cudnn_benchmark": False}
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    conv = "cuDNN %s" % torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else "no cuDNN"
    return {"conv": conv, "tf32": tf32, "cudnn_benchmark": True}


def build(arch, cin, classes, h, w, width=1.0, quant=None):
    if arch == "smallcnn":
        return SmallCNN(cin, classes, h, w, quant)
    if arch == "resnet18":
        return ResNet18(cin, classes, h, w, quant)
    if arch == "mobilenetv2":
        return MobileNetV2(cin, classes, h, w, width, quant)
    raise ValueError("unknown model " + arch)


# ------------------------------------------------------------- safetensors

_DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def read_safetensors(path):
    """Reads a safetensors file with numpy alone; returns (tensors, metadata)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        arr = np.frombuffer(raw[base + b:base + end], dtype=_DTYPES[e["dtype"]])
        out[name] = torch.from_numpy(arr.reshape(e["shape"]).copy())
    return out, meta
