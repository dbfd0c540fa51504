"""Training: the Trainer's loop, its checkpoints, and where the weights are written."""
