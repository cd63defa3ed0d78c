#!/usr/bin/python3
"""Writes the scikit-learn reference fixtures sklearn_*.json for sklearn_test.go.

Each fixture is a deterministic binary problem (label 1 = member, label 0 =
non-member) fitted with sklearn.svm.SVC(C, gamma, kernel="rbf") at the
default tolerance 1e-3 and again at a tight tolerance, with the fitted dual
coefficients, support indices, intercept, and the decision function and
predictions on held-out points (floats rounded to 12 significant digits).
The confidence problems also have a target (forget) set, the MIA-efficacy
scikit-learn's attacker gives it and its prediction for every target. Run it from the repository root as

    /usr/bin/python3 qmul/mia/testdata/gen_sklearn.py

Inputs are float32 values (written in their shortest float32 form), like
the features the evaluator computes from float32 softmax outputs; both
scikit-learn and the Go tests fit the float64 values read back from the JSON
text.
"""

import json
import os

import numpy as np
import sklearn
from sklearn.svm import SVC

TIGHT_TOL = 1e-10
OUT = os.path.dirname(os.path.abspath(__file__))


def f32(a):
    """Rounds to float32 and returns the float64 values of their shortest repr."""
    a = np.asarray(a, dtype=np.float32)
    return np.array([float(repr(v)) for v in a.ravel()]).reshape(a.shape)


def confidences(rng, n, p_high, lo, hi):
    """Softmax confidences: 1 - 10^-e, e uniform in [lo, hi), with probability
    p_high (rounding to exactly 1 for e above about 7.2), else uniform in
    [0.1, 1)."""
    high = rng.random(n) < p_high
    e = rng.uniform(lo, hi, n)
    return f32(np.where(high, 1 - 10.0 ** -e, rng.uniform(0.1, 1.0, n))).reshape(-1, 1)


def confidence_1d():
    rng = np.random.default_rng(1)
    members = confidences(rng, 400, 0.97, 2, 8)
    non_members = confidences(rng, 400, 0.85, 0.5, 6)
    test = np.concatenate([confidences(rng, 100, 0.97, 2, 8),
                           confidences(rng, 100, 0.85, 0.5, 6)])
    # A forget set after partial unlearning: between the two distributions.
    target = confidences(rng, 1000, 0.92, 1, 7)
    return members, non_members, test, target


def saturated_1d():
    # A model that is certain of every sample: all confidences are exactly 1,
    # every kernel value is 1 and every decision value exactly 0, which
    # scikit-learn classifies as a member.
    ones = np.ones((300, 1))
    return ones, ones, np.ones((50, 1)), np.ones((200, 1))


def near_saturated_1d():
    # Confidences one to a few float32 units in the last place below 1: the
    # kernel values libsvm trains on all round to 1 in float32, and the
    # decision values, of order 1e-14, have the sign their float64 rounding
    # gives them.
    rng = np.random.default_rng(4)

    def below_one(n, weights):
        k = rng.choice(len(weights), n, p=np.array(weights) / sum(weights))
        return f32(1 - k * 2.0 ** -24).reshape(-1, 1)

    members = below_one(400, [0.8 ** k for k in range(16)])
    non_members = below_one(400, [0.9 ** k for k in range(16)])
    test = below_one(100, [1] * 16)
    target = below_one(1000, [0.85 ** k for k in range(16)])
    return members, non_members, test, target


def blobs_2d():
    rng = np.random.default_rng(2)
    members = f32(rng.normal([0.0, 0.0], 1.0, (150, 2)))
    non_members = f32(rng.normal([1.5, 1.0], 1.2, (150, 2)))
    test = f32(rng.uniform(-3, 4, (200, 2)))
    return members, non_members, test, None


def softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def prob_10():
    # Whole 10-class probability vectors; members are more confident in
    # their label.
    rng = np.random.default_rng(3)

    def probs(n, margin):
        logits = rng.normal(0, 1, (n, 10))
        logits[np.arange(n), rng.integers(0, 10, n)] += rng.exponential(margin, n)
        return f32(softmax(logits))

    return probs(150, 6.0), probs(150, 3.0), probs(100, 4.5), None


def fit(x, y, c, gamma, tol):
    clf = SVC(C=c, gamma=gamma or "auto", kernel="rbf", tol=tol)
    clf.fit(x, y)
    assert list(clf.classes_) == [0, 1]
    return clf


def short(a):
    """Returns the values of a rounded to 12 significant digits."""
    return [float(f"{v:.12g}") for v in np.ravel(a)]


def result(clf, test):
    return {
        "support": clf.support_.tolist(),
        "dual_coef": short(clf.dual_coef_[0]),
        "intercept": float(clf.intercept_[0]),
        "n_iter": int(clf.n_iter_[0]),
        "decision": short(clf.decision_function(test)),
        "predict": clf.predict(test).astype(int).tolist(),
    }


def main():
    # Each problem is fitted with the listed (C, gamma) pairs; gamma 0 is
    # "auto", 1/n_features.
    problems = {
        "confidence_1d": (confidence_1d, [(3.0, 0.0)]),
        "saturated_1d": (saturated_1d, [(3.0, 0.0)]),
        "near_saturated_1d": (near_saturated_1d, [(3.0, 0.0)]),
        # An explicit gamma and a C small enough for many bounded support
        # vectors.
        "blobs_2d": (blobs_2d, [(3.0, 0.0), (0.5, 2.0)]),
        "prob_10": (prob_10, [(3.0, 0.0)]),
    }
    for name, (make, params) in problems.items():
        members, non_members, test, target = make()
        x = np.concatenate([members, non_members])
        y = np.concatenate([np.ones(len(members), int), np.zeros(len(non_members), int)])
        fixture = {
            "name": name,
            "sklearn": sklearn.__version__,
            "x": x.tolist(),
            "y": y.tolist(),
            "test": test.tolist(),
            "tight_tol": TIGHT_TOL,
            "fits": [],
        }
        for c, gamma in params:
            clf = fit(x, y, c, gamma, 1e-3)
            fixture["fits"].append({
                "C": c,
                "gamma": gamma,
                "default": result(clf, test),
                "tight": result(fit(x, y, c, gamma, TIGHT_TOL), test),
            })
            print(f"{name} C={c} gamma={gamma}: {len(x)} samples, "
                  f"{len(clf.support_)} support vectors, {clf.n_iter_[0]} iterations")
        if target is not None:
            clf = fit(x, y, 3.0, 0.0, 1e-3)
            fixture["target"] = target.tolist()
            fixture["efficacy"] = 100 * float(np.mean(clf.predict(target) == 0))
            fixture["target_predict"] = clf.predict(target).astype(int).tolist()
            # On the degenerate problems the attacker's predictions are a
            # matter of rounding, which the Go attacker must reproduce.
            fixture["exact"] = name in ("saturated_1d", "near_saturated_1d")
            print(f"{name}: MIA-efficacy {fixture['efficacy']}")
        with open(os.path.join(OUT, f"sklearn_{name}.json"), "w") as f:
            json.dump(fixture, f, separators=(",", ":"))
            f.write("\n")


if __name__ == "__main__":
    main()
