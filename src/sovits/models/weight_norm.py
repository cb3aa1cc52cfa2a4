"""Weight normalisation with the original's state-dict layout, and folding for inference.

so-vits-svc used the old `torch.nn.utils.weight_norm`, whose parameters are named
`weight_g` (magnitude) and `weight_v` (direction). That API is deprecated, so sovits
keeps the same parameter names with its own small implementation. `fold_weight_norm`
computes every normalised weight once, so inference stops recomputing norms per call.
"""

from __future__ import annotations

from typing import Any, TypeVar

import torch
from torch import nn

ModuleT = TypeVar("ModuleT", bound=nn.Module)


class _WeightNormHook:
    """Forward pre-hook that rebuilds `weight` from `weight_g` and `weight_v`."""

    def __init__(self, dim: int):
        self.dim = dim
        self.folded = False

    def compute(self, module: nn.Module) -> torch.Tensor:
        # torch._weight_norm is the exact kernel the original's weight_norm calls.
        weight_v = module.get_parameter("weight_v")
        weight_g = module.get_parameter("weight_g")
        return torch._weight_norm(weight_v, weight_g, self.dim)

    def __call__(self, module: nn.Module, inputs: Any) -> None:
        if not self.folded:
            module.weight = self.compute(module)


def _hook_of(module: nn.Module) -> _WeightNormHook | None:
    hook = getattr(module, "_sovits_weight_norm", None)
    return hook if isinstance(hook, _WeightNormHook) else None


def weight_norm(module: ModuleT, dim: int = 0) -> ModuleT:
    """Reparametrise `module.weight` as g * v / ||v|| (norm over every dim but `dim`).

    Keys in the state dict become `weight_g` and `weight_v`, as in so-vits-svc files.
    """
    if _hook_of(module) is not None:
        raise RuntimeError(f"weight norm already applied to {module}")
    weight = module.get_parameter("weight")
    del module._parameters["weight"]
    module.weight_g = nn.Parameter(torch.norm_except_dim(weight, 2, dim).detach())
    module.weight_v = nn.Parameter(weight.detach())
    hook = _WeightNormHook(dim)
    module._sovits_weight_norm = hook  # type: ignore[assignment]
    # A plain (leaf) tensor until the first forward, so the module can be deep-copied.
    with torch.no_grad():
        module.weight = hook.compute(module)
    nn.Module.register_forward_pre_hook(module, hook)
    return module


def has_weight_norm(module: nn.Module) -> bool:
    """True if `module` was wrapped by `weight_norm`."""
    return _hook_of(module) is not None


def fold_weight_norm(model: nn.Module) -> nn.Module:
    """Compute every weight-normed weight once and freeze it for inference.

    The `weight_g`/`weight_v` parameters stay (so the state dict is unchanged);
    the folded weight is a non-persistent buffer that follows `.to()` and `.half()`.
    Call `unfold_weight_norm` before training or loading new weights.
    """
    for module in model.modules():
        hook = _hook_of(module)
        if hook is None or hook.folded:
            continue
        with torch.no_grad():
            folded = hook.compute(module).detach().clone()
        if "weight" in module.__dict__:
            del module.__dict__["weight"]
        module.register_buffer("weight", folded, persistent=False)
        hook.folded = True
    return model


def unfold_weight_norm(model: nn.Module) -> nn.Module:
    """Undo `fold_weight_norm`: weights are recomputed from g and v on every call again."""
    for module in model.modules():
        hook = _hook_of(module)
        if hook is None or not hook.folded:
            continue
        del module._buffers["weight"]
        hook.folded = False
        module.weight = hook.compute(module)
    return model
