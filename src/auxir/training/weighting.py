"""How named loss components become one loss: fixed weights with start/stop steps, or learned uncertainty.

Both strategies read each component's weight and active window from its ``ObjectiveConfig``; the
training loop only sums what the strategy returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn


@dataclass
class WeightingConfig:
    strategy: Literal["fixed", "uncertainty"] = "fixed"
    learning_rate: float = 1e-2  # for the uncertainty parameters (their own optimizer group)
    init_sigma2: float = 1.0


@dataclass
class ComponentSchedule:
    weight: float = 1.0
    start_step: int = 0
    stop_step: int | None = None  # exclusive; None = until the end

    def active(self, step: int) -> bool:
        return step >= self.start_step and (self.stop_step is None or step < self.stop_step)


class FixedWeighting(nn.Module):
    """``L = Σ wᵢ·Lᵢ`` over the components active at this step."""

    def __init__(self, schedules: dict[str, ComponentSchedule]):
        super().__init__()
        self.schedules = schedules

    def forward(self, components: dict[str, torch.Tensor], step: int) -> torch.Tensor:
        terms = [self.schedules[name].weight * loss for name, loss in components.items()]
        return torch.stack(terms).sum()

    def log_values(self) -> dict[str, float]:
        return {}


class UncertaintyWeighting(nn.Module):
    """GDMTL eq. 6 (Liu et al., WWW 2021; after Kendall et al. 2018, in the regularised form of
    Liebel & Körner 2018): ``L = Σ Lᵢ / (2σᵢ²) + log(1 + σᵢ²)``, with σᵢ² learned per component.

    σᵢ² is kept positive as ``exp(sᵢ)``. The fixed ``weight`` of a component multiplies its loss
    before weighting, so a recipe can still scale a component.
    """

    def __init__(self, schedules: dict[str, ComponentSchedule], init_sigma2: float = 1.0):
        super().__init__()
        self.schedules = schedules
        self.names = list(schedules)
        self.log_sigma2 = nn.Parameter(
            torch.full((len(self.names),), float(torch.log(torch.tensor(init_sigma2))))
        )

    def forward(self, components: dict[str, torch.Tensor], step: int) -> torch.Tensor:
        total = []
        for name, loss in components.items():
            s = self.log_sigma2[self.names.index(name)]
            sigma2 = s.exp()
            total.append(self.schedules[name].weight * loss / (2 * sigma2) + torch.log1p(sigma2))
        return torch.stack(total).sum()

    def log_values(self) -> dict[str, float]:
        return {f"sigma2/{n}": float(v) for n, v in zip(self.names, self.log_sigma2.detach().exp().tolist())}


def build_weighting(config: WeightingConfig, schedules: dict[str, ComponentSchedule]) -> nn.Module:
    if config.strategy == "fixed":
        return FixedWeighting(schedules)
    if config.strategy == "uncertainty":
        return UncertaintyWeighting(schedules, config.init_sigma2)
    raise ValueError(f"unknown weighting strategy {config.strategy!r}; valid: fixed, uncertainty")
