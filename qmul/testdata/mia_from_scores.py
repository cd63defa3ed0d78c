"""Recomputes MIA-efficacy from a qmulgpu scores CSV with scikit-learn, the
way the SalUn code does: an SVC(C=3, gamma="auto", kernel="rbf") trained on
the confidence of shadow members (label 1) and non-members (label 0),
reported as 100 × the fraction of forget samples predicted non-member.

    python3 mia_from_scores.py scores.csv
"""
import csv
import sys

import numpy as np
from sklearn.svm import SVC


def main():
    members, non_members, target = [], [], []
    with open(sys.argv[1]) as f:
        for row in csv.DictReader(f):
            conf = float(row["confidence"])
            role = row["mia_role"]
            if role == "member":
                members.append(conf)
            elif role == "non-member":
                non_members.append(conf)
            elif role == "target":
                target.append(conf)
    x = np.array(members + non_members).reshape(-1, 1)
    y = np.concatenate([np.ones(len(members)), np.zeros(len(non_members))])
    clf = SVC(C=3, gamma="auto", kernel="rbf").fit(x, y)
    pred = clf.predict(np.array(target).reshape(-1, 1))
    print(100 * (1 - pred.mean()))


if __name__ == "__main__":
    main()
