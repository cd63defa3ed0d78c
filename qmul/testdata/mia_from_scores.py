"""Recomputes MIA-efficacy from a qmulgpu scores CSV with scikit-learn, the
way the SalUn code does: for each attack feature an SVC(C=3, gamma="auto",
kernel="rbf") is trained on the features of the shadow members (label 1)
and non-members (label 0), and the efficacy is 100 x the fraction of forget
samples it predicts non-member. The features are computed here from the
softmax probabilities prob_0, prob_1, ... of the CSV, as docs/results.md
defines them; the result is printed as one JSON object, feature -> efficacy.

    python3 mia_from_scores.py scores.csv
"""
import csv
import json
import sys

import numpy as np
from sklearn.svm import SVC

LOG_FLOOR = 1e-30


def safe_log(q):
    return np.log(np.maximum(q, LOG_FLOOR))


def features(probs, labels):
    """Returns feature name -> (n, width) array for float32 probabilities."""
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
    sets = {"member": ([], []), "non-member": ([], []), "target": ([], [])}
    with open(sys.argv[1]) as f:
        reader = csv.DictReader(f)
        prob_cols = [c for c in reader.fieldnames if c.startswith("prob_")]
        for row in reader:
            if row["mia_role"] in sets:
                probs, labels = sets[row["mia_role"]]
                probs.append([np.float32(row[c]) for c in prob_cols])
                labels.append(int(row["label"]))
    feats = {role: features(np.array(p, dtype=np.float32), np.array(l))
             for role, (p, l) in sets.items()}
    out = {}
    for name in feats["target"]:
        members, non_members = feats["member"][name], feats["non-member"][name]
        x = np.concatenate([members, non_members])
        y = np.concatenate([np.ones(len(members)), np.zeros(len(non_members))])
        clf = SVC(C=3, gamma="auto", kernel="rbf").fit(x, y)
        out[name] = 100 * float(np.mean(clf.predict(feats["target"][name]) == 0))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
