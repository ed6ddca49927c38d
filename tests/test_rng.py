"""mvsd.rng: draws from a generator on one device, placed on another."""

import torch

from mvsd import rng


def test_draws_equal_torch_on_the_generator_device_and_land_where_asked():
    g = torch.Generator().manual_seed(3)
    want = torch.randn(2, 5, generator=g)
    g.manual_seed(3)
    got = rng.randn(2, 5, generator=g, device="cpu")
    assert torch.equal(got, want)
    # a model elsewhere (a GPU in training; the meta device here) gets the CPU stream's shape,
    # dtype and device, and the CPU generator advances exactly as if drawn for the CPU
    g.manual_seed(3)
    moved = rng.rand(4, generator=g, device="meta", dtype=torch.float64)
    assert moved.device.type == "meta" and moved.shape == (4,) and moved.dtype == torch.float64
    after = torch.rand(1, generator=g)
    g.manual_seed(3)
    torch.rand(4, generator=g, dtype=torch.float64)
    assert torch.equal(after, torch.rand(1, generator=g))


def test_without_a_generator_it_uses_the_device_and_the_global_stream():
    torch.manual_seed(0)
    a = rng.randn(3)
    torch.manual_seed(0)
    assert torch.equal(a, torch.randn(3))
