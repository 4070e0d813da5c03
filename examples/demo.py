"""The main job on an embedded default: fine-tune the packaged MiniLM on 2,000 real Rotten Tomatoes
reviews (lp-ft), train the same architecture from scratch on the same split, and say what transfer gave.

    python examples/demo.py [--train-size 2000] [--epochs 3] [--out runs/demo]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import headstart


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-size", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    args = parser.parse_args()

    common = dict(train_size=args.train_size, epochs=args.epochs, max_length=64, seed=0, overwrite=True)
    runs = {}
    for strategy in ("lp-ft", "scratch"):
        print(f"== minilm-l6, {strategy}, {args.train_size} reviews of builtin:rotten-tomatoes", flush=True)
        runs[strategy] = headstart.fit("builtin:rotten-tomatoes", backbone="minilm-l6", strategy=strategy,
                                       out=args.out / strategy, **common)
        m = runs[strategy].metrics
        print(f"   test accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f} on {m['n']} reviews, "
              f"{m['train_seconds']:.0f} s -> {args.out / strategy}", flush=True)
    pre, scratch = runs["lp-ft"].metrics, runs["scratch"].metrics
    print(f"pretrained vs scratch: accuracy {pre['accuracy']:.3f} vs {scratch['accuracy']:.3f} "
          f"({100 * (pre['accuracy'] - scratch['accuracy']):+.1f} points), macro-F1 {pre['macro_f1']:.3f} vs "
          f"{scratch['macro_f1']:.3f}, same split, same epochs")


if __name__ == "__main__":
    main()
