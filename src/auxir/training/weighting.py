"""How named loss components become one loss: fixed weights with start/stop steps, learned uncertainty,
or gradient-ratio balancing.

Every strategy reads each component's weight and active window from its ``ObjectiveConfig``; the
training loop only sums what the strategy returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from auxir.training.gradients import component_gradients, gradient_stats


@dataclass
class WeightingConfig:
    strategy: Literal["fixed", "uncertainty", "grad_ratio"] = "fixed"
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


class GradRatioWeighting(nn.Module):
    """Each auxiliary gradient held at a set ratio of the ranking gradient, on the shared layer.

    ``L = w_r·L_r + Σ cᵢ·Lᵢ`` with ``cᵢ = wᵢ · ‖∇L_r‖ / ‖∇Lᵢ‖`` (gradients w.r.t. the last encoder layer,
    the coefficient a constant of the step), so a component's recipe ``weight`` reads as "its gradient
    is this fraction of the ranking gradient" (0.2: a fifth). The idea is GradNorm's (Chen et al., ICML
    2018) without its learned weights: the ratio is set, not trained. Norms are averaged over DDP
    processes first, so every process uses the same coefficients.
    """

    logs_gradients = True  # its log_values hold grad_norm/* and grad_cos/* of every step

    def __init__(self, schedules: dict[str, ComponentSchedule], reference: str, params: list[nn.Parameter]):
        super().__init__()
        if reference not in schedules:
            raise ValueError(
                f"grad_ratio weighting: reference objective {reference!r} is not in {list(schedules)}"
            )
        self.schedules, self.reference = schedules, reference
        self._params = params  # a plain list: the model owns these parameters
        self._last: dict[str, float] = {}

    def forward(self, components: dict[str, torch.Tensor], step: int) -> torch.Tensor:
        if self.reference not in components or len(components) == 1:
            return torch.stack([self.schedules[n].weight * loss for n, loss in components.items()]).sum()
        grads = component_gradients(components, self._params)
        reference_norm = grads[self.reference].norm()
        terms, last = [], gradient_stats(grads)
        for name, loss in components.items():
            if name == self.reference:
                coefficient = torch.tensor(self.schedules[name].weight, device=loss.device)
            else:
                coefficient = (
                    self.schedules[name].weight * reference_norm / grads[name].norm().clamp(min=1e-12)
                )
                last[f"coef/{name}"] = float(coefficient)
            terms.append(coefficient.detach().to(loss.dtype) * loss)
        self._last = last
        return torch.stack(terms).sum()

    def log_values(self) -> dict[str, float]:
        return dict(self._last)


def build_weighting(
    config: WeightingConfig,
    schedules: dict[str, ComponentSchedule],
    reference: str | None = None,
    shared_parameters: list[nn.Parameter] | None = None,
) -> nn.Module:
    if config.strategy == "fixed":
        return FixedWeighting(schedules)
    if config.strategy == "uncertainty":
        return UncertaintyWeighting(schedules, config.init_sigma2)
    if config.strategy == "grad_ratio":
        if reference is None or not shared_parameters:
            raise ValueError(
                "grad_ratio weighting needs a ranking objective and a model with shared_parameters()"
            )
        return GradRatioWeighting(schedules, reference, shared_parameters)
    raise ValueError(f"unknown weighting strategy {config.strategy!r}; valid: fixed, uncertainty, grad_ratio")
