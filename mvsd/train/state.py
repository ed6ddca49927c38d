"""Everything that changes during training, in one object (DAC's ``State`` pattern).

Both converters (each with its EMA copy), their optimizers and the step count. ``state_dict`` /
``load_state_dict`` give a checkpoint of plain tensors (no pickled code), so a killed run resumes
from the file alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from mvsd.config import ModelConfig, TrainConfig
from mvsd.converter import Converter

DIRECTIONS = ("reverb", "dereverb")


@dataclass
class TrainState:
    converters: dict[str, Converter]  # "reverb" (R) and "dereverb" (D)
    optimizers: dict[str, torch.optim.Optimizer]
    step: int = 0
    skipped_steps: int = 0  # steps whose loss was not finite (skipped, not applied)
    batches_used: int = 0  # batches drawn from the data stream (a resume skips as many)
    rng: torch.Tensor | None = None  # the training generator's state (a resume restores it)
    counters: dict[str, float] = field(default_factory=dict)

    @classmethod
    def new(cls, model: ModelConfig, train: TrainConfig, device: str = "cpu") -> TrainState:
        convs = {
            d: Converter.new(d, model, seed=train.seed + i, device=device) for i, d in enumerate(DIRECTIONS)
        }
        opts = {d: make_optimizer(c.net, train) for d, c in convs.items()}
        return cls(convs, opts)

    @torch.no_grad()
    def update_ema(self, decay: float) -> None:
        """``ema = decay * ema + (1 - decay) * net`` for parameters; buffers (BatchNorm) copied."""
        for conv in self.converters.values():
            for e, p in zip(conv.ema.parameters(), conv.net.parameters()):
                e.lerp_(p, 1.0 - decay)
            for e, b in zip(conv.ema.buffers(), conv.net.buffers()):
                e.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor | dict]:
        out: dict = {
            "step": torch.tensor(self.step),
            "skipped_steps": torch.tensor(self.skipped_steps),
            "batches_used": torch.tensor(self.batches_used),
        }
        if self.rng is not None:
            out["rng"] = self.rng
        for d, c in self.converters.items():
            out[f"{d}.net"] = unwrap(c.net).state_dict()
            out[f"{d}.ema"] = c.ema.state_dict()
            out[f"{d}.opt"] = self.optimizers[d].state_dict()
        return out

    def load_state_dict(self, state: dict) -> None:
        self.step = int(state["step"])
        self.skipped_steps = int(state["skipped_steps"])
        self.batches_used = int(state.get("batches_used", self.step + self.skipped_steps))
        self.rng = state.get("rng")
        for d, c in self.converters.items():
            unwrap(c.net).load_state_dict(state[f"{d}.net"])
            c.ema.load_state_dict(state[f"{d}.ema"])
            self.optimizers[d].load_state_dict(state[f"{d}.opt"])


ROOM_GROUP = 1  # make_optimizer's parameter group of the visual encoder and the room head


def make_optimizer(net: torch.nn.Module, train: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; the visual encoder and the room head (group ``ROOM_GROUP``) at
    ``train.room_lr_scale`` x the learning rate (by default 0: what the room steps taught them is
    kept; :func:`mvsd.train.room.freeze_rooms`). :func:`set_room_lr` changes their rate."""
    slow = {id(p) for part in (net.visual, net.room) for p in part.parameters()}
    groups = [
        {"params": [p for p in net.parameters() if id(p) not in slow], "lr": train.lr},
        {"params": [p for p in net.parameters() if id(p) in slow], "lr": train.lr * train.room_lr_scale},
    ]
    for g in groups:
        g["base_lr"] = g["lr"]  # what :func:`apply_schedule` scales
    assert len(groups) == ROOM_GROUP + 1
    return torch.optim.AdamW(groups, lr=train.lr, weight_decay=train.weight_decay, betas=(0.9, 0.99))


def set_room_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """The learning rate of the visual encoder and room head in an optimizer of :func:`make_optimizer`."""
    optimizer.param_groups[ROOM_GROUP]["lr"] = optimizer.param_groups[ROOM_GROUP]["base_lr"] = lr


def cosine_decay(step: int, steps: int) -> float:
    """Half a cosine from 1 at step 0 to 0 at ``steps`` (held at 0 after)."""
    return 0.5 * (1.0 + math.cos(math.pi * min(step, steps) / steps))


def lr_factor(train: TrainConfig, step: int) -> float:
    """The learning rate of step ``step`` (0-based) of a round, as a fraction of ``train.lr``:
    1 throughout (``constant``), or half a cosine from 1 at step 0 to 0 after the last step
    (``cosine``; its last step learns at ``(1 - cos(pi / steps)) / 2``, not 0)."""
    if train.lr_schedule == "constant" or train.steps <= 0:
        return 1.0
    return cosine_decay(step, train.steps)


def apply_schedule(optimizer: torch.optim.Optimizer, train: TrainConfig, step: int) -> None:
    """Every parameter group's rate for ``step``: its base rate x :func:`lr_factor`. A function of
    the step alone, so a resumed round learns at the rates of an uninterrupted one."""
    f = lr_factor(train, step)
    for g in optimizer.param_groups:
        g["lr"] = g.setdefault("base_lr", g["lr"]) * f  # setdefault: optimizers of older checkpoints


def unwrap(net: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DistributedDataParallel wrapper (or the module itself)."""
    return net.module if isinstance(net, torch.nn.parallel.DistributedDataParallel) else net
