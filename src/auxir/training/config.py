"""Training-loop settings (one dataclass; mirrored in recipes and on the command line)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Where the loss records go besides train_log.jsonl; auto = TensorBoard when it is installed, else nowhere.
ReportTo = Literal["auto", "tensorboard", "wandb", "none"]


@dataclass
class TrainingConfig:
    output_dir: str = "outputs/run"
    seed: int = 0
    batch_size: int = 8  # groups per optimizer step and process (before accumulation)
    grad_accumulation: int = 1
    learning_rate: float = 3e-5
    # Parameters that start random (score layer, token head, ...): their own learning rate (None: the same).
    new_parameters_learning_rate: float | None = None
    # Head warm-up: for this many first steps only the new parameters learn; the encoder stays frozen.
    head_warmup_steps: int = 0
    weight_decay: float = 0.01
    optimizer: Literal["adamw", "adam"] = "adamw"
    warmup_ratio: float = 0.1
    epochs: float = 1.0
    max_steps: int | None = None  # overrides epochs when set
    max_grad_norm: float | None = 1.0
    # bfloat16 autocast in training and in the cross-encoder's reranking; auto = on a CUDA device only.
    bf16: Literal["auto", "true", "false"] = "auto"
    device: str = "auto"
    log_every: int = 10
    eval_every: int | None = None  # steps between validations; None = at the end of each epoch
    save_every: int | None = None  # steps between checkpoints; None = at the end of each epoch
    keep_best: bool = True
    early_stopping_patience: int | None = None  # stop after this many validations without a new best
    grad_stats_every: int = 0  # log each component's gradient norm on the shared layer and their cosines
    resume: bool = False
    progress: bool = True  # progress bars (training, validation) on stderr
    report_to: ReportTo = "auto"

    def uses_bf16(self, device_type: str) -> bool:
        """Whether training and ranking autocast to bfloat16 on a device of this type ("cuda", "cpu")."""
        return self.bf16 == "true" or (self.bf16 == "auto" and device_type == "cuda")
