"""The main job on an embedded default: prove the transfer on real data.

`headstart compare` with the packaged MiniLM on 1,000 real Rotten Tomatoes reviews: scratch, linear
probe and lp-ft against a TF-IDF baseline, 3 seeded splits, 8 / 32 / all labels per class. About nine
minutes on 2 CPU cores; prints the table and where the report is. (`headstart compare` alone also runs
freeze:K and full.)

    python examples/demo.py [--train-size 1000] [--seeds 3] [--epochs 3] [--out runs/demo]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from headstart import cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", default="1000")
    parser.add_argument("--seeds", default="3")
    parser.add_argument("--epochs", default="3")
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    args = parser.parse_args()
    sys.argv = ["headstart", "compare", "builtin:rotten-tomatoes", "--backbone", "minilm-l6", "--max-length", "64",
                "--strategies", "scratch,linear-probe,lp-ft", "--train-size", args.train_size, "--seeds", args.seeds, "--shots", "8,32,all",
                "--epochs", args.epochs, "--out", str(args.out), "--overwrite"]
    print(" ".join(sys.argv), flush=True)
    cli.main()


if __name__ == "__main__":
    main()
