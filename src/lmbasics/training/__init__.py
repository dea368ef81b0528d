"""Training: everything between a model and a trained model (chapters 6 to 11).

Cross-entropy (and `minimal`, its teaching version), the optimizers with their learning-rate
schedule and gradient clipping (chapter 6); data loading, checkpoints, the training configuration
and loop, and decoding (chapter 7), which chapters 8 to 10 run at other settings; chapter 11's
switches (Muon, the warmup-stable-decay schedule, z-loss, TensorBoard logs).
`python -m lmbasics.training --config ...` is the training entry point for torchrun.
"""
