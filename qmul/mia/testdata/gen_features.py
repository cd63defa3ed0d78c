#!/usr/bin/python3
"""Writes features_sklearn.json for TestFeaturesEfficacySklearn.

Softmax outputs of a 10-class model (float32) with labels for shadow members,
shadow non-members and a target set, and for each attack feature the
MIA-efficacy scikit-learn's SVC(C=3, gamma="auto", kernel="rbf") gives when
trained on the features of the members (label 1) then the non-members
(label 0). The features are computed here, from their definitions in
docs/results.md, not from the Go code. Run it from the repository root as

    /usr/bin/python3 qmul/mia/testdata/gen_features.py
"""

import json
import os

import numpy as np
import sklearn
from sklearn.svm import SVC

CLASSES = 10
LOG_FLOOR = 1e-30
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "features_sklearn.json")


def softmax32(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def outputs(rng, n, margin, wrong):
    """n softmax outputs whose true class gets an exponential logit bonus of
    mean margin; a fraction wrong of them favour another class instead."""
    labels = rng.integers(0, CLASSES, n)
    logits = rng.normal(0, 1, (n, CLASSES))
    favoured = np.where(rng.random(n) < wrong, (labels + 1 + rng.integers(0, CLASSES - 1, n)) % CLASSES, labels)
    logits[np.arange(n), favoured] += rng.exponential(margin, n)
    return softmax32(logits), labels


def safe_log(q):
    return np.log(np.maximum(q, LOG_FLOOR))


def features(probs, labels):
    p = probs.astype(np.float64)
    rows = np.arange(len(labels))
    p_y = p[rows, labels]
    others = np.ones_like(p, dtype=bool)
    others[rows, labels] = False
    return {
        "confidence": p_y[:, None],
        "correctness": (np.argmax(probs, axis=1) == labels).astype(np.float64)[:, None],
        "entropy": (-(p * safe_log(p)).sum(axis=1))[:, None],
        "m_entropy": (-(1 - p_y) * safe_log(p_y)
                      - np.where(others, p * safe_log(1 - p), 0).sum(axis=1))[:, None],
        "prob": p,
    }


def main():
    rng = np.random.default_rng(7)
    sets = {
        "members": outputs(rng, 400, 8.0, 0.05),
        "non_members": outputs(rng, 400, 4.0, 0.3),
        "target": outputs(rng, 300, 6.0, 0.15),
    }
    feats = {k: features(*v) for k, v in sets.items()}
    efficacy = {}
    for name in feats["target"]:
        x = np.concatenate([feats["members"][name], feats["non_members"][name]])
        y = np.concatenate([np.ones(400), np.zeros(400)])
        clf = SVC(C=3, gamma="auto", kernel="rbf").fit(x, y)
        efficacy[name] = 100 * float(np.mean(clf.predict(feats["target"][name]) == 0))
        print(f"{name}: MIA-efficacy {efficacy[name]:.1f}")
    fixture = {"sklearn": sklearn.__version__, "classes": CLASSES, "efficacy": efficacy}
    for k, (probs, labels) in sets.items():
        fixture[k] = {"probs": [float(repr(v)) for v in probs.ravel()], "labels": labels.tolist()}
    with open(OUT, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
