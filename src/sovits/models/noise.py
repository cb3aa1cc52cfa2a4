"""Where inference gets its random numbers.

The original re-seeds the global torch RNG inside `infer`. sovits instead passes a
NoiseSource through the models, so callers choose a seed or generator and the global
RNG is never touched. Tests substitute recorded or all-zero draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


class NoiseSource:
    """Draws standard normal and uniform [0, 1) tensors from one torch.Generator.

    With a CPU generator seeded with s, the draws equal those of the original's
    `torch.manual_seed(s)` followed by the same sequence of randn/rand calls.
    """

    def __init__(self, generator: torch.Generator | None = None, *, seed: int | None = None):
        if generator is None:
            generator = torch.Generator()
            if seed is not None:
                generator.manual_seed(seed)
            else:
                generator.seed()
        self.generator = generator

    @classmethod
    def from_seed(cls, seed: int, device: torch.device | str = "cpu") -> NoiseSource:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        return cls(generator)

    def _generator_for(self, device: torch.device) -> torch.Generator:
        if self.generator.device.type != device.type:
            raise ValueError(
                f"noise generator is on {self.generator.device}, tensors are on {device}"
            )
        return self.generator

    def normal(self, shape: Sequence[int], *, like: Tensor) -> Tensor:
        """Standard normal draws with `like`'s dtype and device."""
        gen = self._generator_for(like.device)
        return torch.randn(tuple(shape), generator=gen, device=like.device, dtype=like.dtype)

    def uniform(self, shape: Sequence[int], *, like: Tensor) -> Tensor:
        """Uniform [0, 1) draws with `like`'s dtype and device."""
        gen = self._generator_for(like.device)
        return torch.rand(tuple(shape), generator=gen, device=like.device, dtype=like.dtype)


class ZeroNoise(NoiseSource):
    """Every draw is zero: deterministic output independent of any RNG."""

    def __init__(self) -> None:
        super().__init__(torch.Generator())

    def normal(self, shape: Sequence[int], *, like: Tensor) -> Tensor:
        return torch.zeros(tuple(shape), device=like.device, dtype=like.dtype)

    def uniform(self, shape: Sequence[int], *, like: Tensor) -> Tensor:
        return torch.zeros(tuple(shape), device=like.device, dtype=like.dtype)


class ReplayNoise(NoiseSource):
    """Returns given tensors in order, checking each requested shape (for parity tests)."""

    def __init__(self, draws: Sequence[Tensor]) -> None:
        super().__init__(torch.Generator())
        self._draws = list(draws)

    def _next(self, shape: Sequence[int], like: Tensor) -> Tensor:
        if not self._draws:
            raise RuntimeError("ReplayNoise: no recorded draws left")
        draw = self._draws.pop(0)
        if tuple(draw.shape) != tuple(shape):
            raise RuntimeError(f"ReplayNoise: recorded draw {tuple(draw.shape)} != {tuple(shape)}")
        return draw.to(device=like.device, dtype=like.dtype)

    def normal(self, shape: Sequence[int], *, like: Tensor) -> Tensor:
        return self._next(shape, like)

    def uniform(self, shape: Sequence[int], *, like: Tensor) -> Tensor:
        return self._next(shape, like)
