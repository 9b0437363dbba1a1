"""One module holding the model, its objectives and the weighting: one forward pass per step.

Putting every view of the batch inside a single ``forward`` is what lets DistributedDataParallel see
the whole step (it syncs gradients of the model heads and of learned task weights alike).
"""

from __future__ import annotations

import torch
from torch import nn

from auxir.objectives.base import Objective
from auxir.training.gradients import component_gradients, gradient_stats
from auxir.training.weighting import ComponentSchedule


class MultiTask(nn.Module):
    def __init__(
        self,
        model: nn.Module,
        objectives: dict[str, Objective],
        schedules: dict[str, ComponentSchedule],
        weighting: nn.Module,
    ):
        super().__init__()
        self.model = model
        self.objectives = objectives
        self.schedules = schedules
        self.weighting = weighting
        self.probe = False  # set by the trainer on steps whose gradient statistics it logs
        self.grad_stats: dict[str, float] = {}

    def forward(self, batch, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        components = {
            name: objective(self.model, batch)
            for name, objective in self.objectives.items()
            if self.schedules[name].active(step)
        }
        if not components:
            raise ValueError(f"no objective is active at step {step}; check start_step/stop_step")
        # grad_ratio weighting measures the same gradients every step and logs them itself.
        measured = getattr(self.weighting, "logs_gradients", False)
        if self.probe and not measured and len(components) > 1 and hasattr(self.model, "shared_parameters"):
            self.grad_stats = gradient_stats(component_gradients(components, self.model.shared_parameters()))
        return self.weighting(components, step), components
