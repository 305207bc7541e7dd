#!/usr/bin/env python3
"""Write a small random ECAPA-TDNN model directory (hub layout) for trying the ECAPA code path offline.

Usage: python scripts/make_test_ecapa.py DIR [--seed N]
The model has random weights: it exercises loading and plumbing, not accuracy.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from voiceprints.embedding.ecapa_testing import build_small_ecapa


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    path = build_small_ecapa(args.directory, seed=args.seed)
    print(f"small ECAPA-TDNN written to {path}")


if __name__ == "__main__":
    main()
