"""`python -m lmbasics.training --config ...`: the training run, for torchrun (chapter 7)."""

from lmbasics.training.trainer import main

if __name__ == "__main__":
    raise SystemExit(main())
