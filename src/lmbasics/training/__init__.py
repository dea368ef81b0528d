"""Training: everything between a model and a trained model (chapters 6 to 10).

Cross-entropy, the optimizers with their learning-rate schedule and gradient clipping (chapter 6);
data loading, checkpoints, the training configuration and loop, and decoding (chapter 7), which
chapters 8 to 10 run at other settings. `python -m lmbasics.training --config ...` is the training
entry point for torchrun.
"""
