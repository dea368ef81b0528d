"""`python -m lmbasics.training --config ...`: the training run, for torchrun (chapter 7)."""

from lmbasics.cli import train_main

if __name__ == "__main__":
    raise SystemExit(train_main())
