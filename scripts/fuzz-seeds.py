"""Writes the seed-* files of the fuzz targets' corpora (testdata/fuzz/) from
files real tools make: torch.save (python3-torch) in both formats,
scipy.io.savemat with and without compression, the first images of Debian's
Fashion-MNIST, small PNG and JPEG files Debian ships, and the formats'
documented layouts. Run from the repository root:

    python3 scripts/fuzz-seeds.py

Running it again changes a few bytes of the MAT seeds (savemat writes the
time into the header) and of the legacy torch.save seeds (a random key);
restore those with git checkout unless the seed itself changed.

The targets' code adds more seeds of its own (f.Add); failing inputs that
fuzzing found sit beside these under their hash names and are never
removed.
"""
import gzip
import io
import json
import os
import struct
import sys
import zipfile

import numpy as np
import scipy.io
import torch


def literal(v):
    """A value in go test fuzz v1's encoding."""
    if isinstance(v, bool):
        return "bool(%s)" % ("true" if v else "false")
    if isinstance(v, int):
        return "byte('\\x%02x')" % v
    if isinstance(v, str):
        v, kind = v.encode(), "string"
    else:
        kind = "[]byte"
    return '%s("%s")' % (kind, "".join(chr(c) if 32 <= c < 127 and chr(c) not in '"\\' else "\\x%02x" % c for c in v))


def write(pkg, target, name, *values):
    d = os.path.join(pkg, "testdata", "fuzz", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "w") as f:
        f.write("go test fuzz v1\n")
        for v in values:
            f.write(literal(v) + "\n")


def torch_bytes(obj, zip_format):
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=zip_format)
    return buf.getvalue()


def data_pkl(archive):
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        return next(z.read(n) for n in z.namelist() if n.endswith("/data.pkl"))


def torch_seeds():
    torch.manual_seed(1)
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, bias=False), torch.nn.BatchNorm2d(2))
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m(torch.randn(2, 1, 5, 5)).sum().backward()
    opt.step()
    sd = m.state_dict()
    # As the Q-MUL / SalUn reference code saves a model.
    ref = {"module.normalize.mean": torch.tensor([0.2860]), "module.normalize.std": torch.tensor([0.3530])}
    ref.update({"module." + k: v for k, v in sd.items()})
    wrapped = {"state_dict": ref, "epoch": 5, "best_sa": 91.5, "optimizer": opt.state_dict()}
    dtypes = {"w": torch.randn(3).half(), "b": torch.randn(2).bfloat16(), "d": torch.randn(2).double(),
              "t": torch.arange(6.).reshape(2, 3).t()}
    pkg = "engine/torchimport"
    for name, obj in (("bare", sd), ("reference", wrapped), ("dtypes", dtypes)):
        z = torch_bytes(obj, True)
        write(pkg, "FuzzParseZip", "torch-" + name, z)
        write(pkg, "FuzzParseLegacy", "torch-" + name, torch_bytes(obj, False))
        write(pkg, "FuzzUnpickle", "torch-%s-data.pkl" % name, data_pkl(z))


def mat_bytes(variables, compress):
    buf = io.BytesIO()
    scipy.io.savemat(buf, variables, do_compression=compress)
    return buf.getvalue()


def first_zlib_stream(mat):
    size = struct.unpack_from("<I", mat, 132)[0]
    return mat[136:136 + size]


def data_seeds():
    pkg = "data"
    x = (np.arange(32 * 32 * 3 * 2) % 251).astype(np.uint8).reshape(32, 32, 3, 2)
    svhn = {"X": x, "y": np.array([[10], [3]], dtype=np.float64)}
    mixed = {"a": np.array([[1.5, -2]], dtype=np.float32), "b": np.array([[7]], dtype=np.int16),
             "c": np.array([[3]], dtype=np.uint64)}
    write(pkg, "FuzzParseMAT", "scipy-svhn", mat_bytes(svhn, False))
    write(pkg, "FuzzParseMAT", "scipy-mixed", mat_bytes(mixed, False))
    write(pkg, "FuzzParseMATCompressed", "scipy-svhn-X", first_zlib_stream(mat_bytes(svhn, True)))
    write(pkg, "FuzzParseMATCompressed", "scipy-mixed-a", first_zlib_stream(mat_bytes(mixed, True)))
    write(pkg, "FuzzSVHN", "scipy", mat_bytes(svhn, False))
    write(pkg, "FuzzSVHN", "scipy-compressed", mat_bytes(svhn, True))

    root = "/usr/share/datasets/fashion-mnist/"
    img = gzip.open(root + "t10k-images-idx3-ubyte.gz").read()
    lbl = gzip.open(root + "t10k-labels-idx1-ubyte.gz").read()
    n = 2
    images = img[:4] + struct.pack(">I", n) + img[8:16] + img[16:16 + n * 784]
    labels = lbl[:4] + struct.pack(">I", n) + lbl[8:8 + n]
    write(pkg, "FuzzParseIDX", "fashion-mnist-2", images, labels)
    write(pkg, "FuzzParseIDX", "fashion-mnist-2-gz", gzip.compress(images, mtime=0), gzip.compress(labels, mtime=0))

    pixels = bytes(i * 7 % 256 for i in range(3072))
    write(pkg, "FuzzParseCIFAR", "cifar10-record", bytes([6]) + pixels, False)
    write(pkg, "FuzzParseCIFAR", "cifar100-record", bytes([11, 6]) + pixels, True)
    for name, path in (("git-favicon.png", "/usr/share/gitweb/static/git-favicon.png"),
                       ("git-logo.png", "/usr/share/gitweb/static/git-logo.png"),
                       ("stripe.jpg", "/usr/share/doc/nodejs/thin-white-stripe.jpg")):
        with open(path, "rb") as f:
            write(pkg, "FuzzDecodeImage", name, f.read())
    write(pkg, "FuzzTinyImageNetAnnotations", "val-annotations",
          b"val_0.JPEG\tn01443537\t0\t32\t44\t62\nval_1.JPEG\tn02124075\t52\t55\t57\t59\nval_2.JPEG\tn01629819\t4\t0\t60\t55\n")
    write(pkg, "FuzzClassNames", "batches.meta.txt", b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n")


def small_seeds():
    for i, spec in enumerate(("random:10%", "class:0", "indices:/data/forget.txt")):
        write("qmul", "FuzzParseForget", str(i), spec)
    write("qmul", "FuzzParseIndices", "lines", b"# the forget set\n0\n5\n9\n")
    write("qmul", "FuzzParseIndices", "json", b"[3, 1, 2]\n")
    metrics = {"method": "retrain", "fa": 91.2, "ra": 99.6, "ta": 90.8, "mia": 12.5,
               "mia_features": {"confidence": 12.5, "entropy": 11.9}, "rte_s": 48.3, "hyper": {"epochs": 15, "lr": 0.05}}
    write("qmul", "FuzzParseMetrics", "metrics.json", json.dumps(metrics, indent=2).encode())
    with open("qmul/sweep/testdata/tiny.yaml", "rb") as f:
        write("qmul/sweep", "FuzzParseConfig", "tiny.yaml", f.read())
    # A safetensors file as the format's documentation lays it out.
    header = json.dumps({"__metadata__": {"format": "pt"},
                         "conv.weight": {"dtype": "F32", "shape": [2, 1, 1, 1], "data_offsets": [0, 8]},
                         "bn.num_batches_tracked": {"dtype": "I64", "shape": [], "data_offsets": [8, 16]}}).encode()
    header += b" " * (-len(header) % 8)
    data = struct.pack("<ffq", 0.5, -1.0, 7)
    write("engine/safetensors", "FuzzParse", "small", struct.pack("<Q", len(header)) + header + data)
    # Method parameters as cell.json and metrics.json hold them.
    write("qmul", "FuzzParamsJSON", "qmul", b'{"agr":"epoch","augment":true,"lr_milestones":[91,136],"lr_schedule":"cosine",'
          b'"schedule":"sequential","similar_labels":"described"}')
    write("qmul", "FuzzParamsJSON", "scrub", b'{"augment":false,"ce_weight":0.99,"forget_batch":512,"kd_weight":0.001,'
          b'"lr_milestones":[3,5,9],"lr_schedule":"multistep","max_steps":2,"temperature":4}')
    # A checkpoint's origin: the job train writes, and the keys import writes.
    job = json.dumps({"data": {"dataset": "fashion-mnist", "dir": "/usr/share/datasets/fashion-mnist", "val_frac": 0.1,
                               "split_seed": 1, "size": 0},
                      "model": {"arch": "smallcnn", "classes": 10, "h": 28, "w": 28, "c": 1},
                      "recipe": {"epochs": 15, "batch": 128}})
    quant = '{"scheme":"lsq","wbits":4,"abits":4,"float":["stem","downsample","classifier"]}'
    write("qmul", "FuzzReadOrigin", "train-job", job, "", "", "", quant)
    write("qmul", "FuzzReadOrigin", "import", "", "svhn", "0.1", "7", quant)
    # CUDA_VISIBLE_DEVICES as CUDA's documentation writes it, on 4 GPUs.
    write("engine/device", "FuzzWorkers", "indices", "2,3", 4)
    write("engine/device", "FuzzWorkers", "uuids", "GPU-8a2f,MIG-1", 4)
    write("qat", "FuzzOpen", "float-lsq", False, "qmulgpu-model/1", '{"arch":"smallcnn","classes":2,"h":8,"w":8,"c":1}',
          '{"scheme":"lsq","wbits":4,"abits":4,"float":["stem","downsample","classifier"]}', "", 4, b"\x00\x00\x80\x3f")


if __name__ == "__main__":
    if not os.path.exists("go.mod"):
        sys.exit("run from the repository root")
    torch_seeds()
    data_seeds()
    small_seeds()
