"""Draw the Banking77 sample in this folder from the full dataset (see README.md here).

Usage: python tests/data/banking77/build_sample.py [--source ../shared/datasets/banking77]

Deterministic (seed 77): the same source gives the same files byte for byte.
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO))

from harness.data.text import normalise  # noqa: E402  (the leakage check's own normaliser)

TRAIN_PER_LABEL = 10
TEST_PER_LABEL = 2


def read(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [(row["text"], row["category"]) for row in csv.DictReader(f)]


def write(path: Path, rows: list[tuple[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)  # the source's dialect: minimal quoting, CRLF line ends
        out.writerow(["text", "category"])
        out.writerows(rows)


def by_label(indices: list[int], rows: list[tuple[str, str]]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i in indices:
        groups[rows[i][1]].append(i)
    return groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO.parent / "shared" / "datasets" / "banking77")
    args = parser.parse_args()
    train, test = read(args.source / "train.csv"), read(args.source / "test.csv")
    rng = random.Random(77)

    # Test rows whose normalised text is also a training row: the leakage check calls these identical.
    train_by_norm: dict[str, list[int]] = defaultdict(list)
    for i, (text, _) in enumerate(train):
        train_by_norm[normalise(text)].append(i)
    leaked = [j for j, (text, _) in enumerate(test) if normalise(text) in train_by_norm]
    partners = {i for j in leaked for i in train_by_norm[normalise(test[j][0])]}

    test_pick = {0, *leaked}  # row 0 stays first, as in the source
    clean_test = [j for j in range(len(test)) if j not in test_pick]
    for _, idx in sorted(by_label(clean_test, test).items()):
        test_pick.update(rng.sample(idx, TEST_PER_LABEL))
    train_pick = set(partners)
    rest = [i for i in range(len(train)) if i not in partners]
    for _, idx in sorted(by_label(rest, train).items()):
        train_pick.update(rng.sample(idx, TRAIN_PER_LABEL))

    write(HERE / "test.csv", [test[j] for j in sorted(test_pick)])
    write(HERE / "train.csv", [train[i] for i in sorted(train_pick)])
    shutil.copyfile(args.source / "categories.json", HERE / "categories.json")
    print(f"test {len(test_pick)} rows ({len(leaked)} identical to a train row after normalising), "
          f"train {len(train_pick)} rows ({len(partners)} of them those duplicates)")


if __name__ == "__main__":
    main()
