"""Diffusion processes and samplers against closed forms (oracle networks)."""

import pytest
import torch

from mvsd.diffusion import SourceFlow, VPDiffusion, make_process

torch.manual_seed(0)
TARGET = torch.randn(2, 2, 8, 12)
SOURCE = torch.randn(2, 2, 8, 12)


def test_make_process_lists_valid_names():
    assert isinstance(make_process("vp"), VPDiffusion)
    with pytest.raises(ValueError, match="valid: vp, flow"):
        make_process("sde")


def test_vp_schedule_endpoints_and_monotonic():
    vp = VPDiffusion()
    t = torch.linspace(0, 1, 101)
    ab = vp.alpha_bar(t)
    assert ab[0] > 0.9999 and ab[-1] < 1e-3
    assert torch.all(ab[1:] <= ab[:-1])


@pytest.mark.parametrize("process", [VPDiffusion(), SourceFlow()])
def test_one_step_estimate_is_exact_for_the_true_output(process):
    t = torch.tensor([0.3, 0.8])
    noise = torch.randn_like(TARGET)
    x_t, want = process.training_pair(TARGET, SOURCE, t, noise)
    torch.testing.assert_close(process.estimate_target(x_t, t, want, SOURCE), TARGET, atol=1e-4, rtol=1e-4)


def vp_oracle(vp):
    def model_fn(x, t):
        ab = vp.alpha_bar(t)[:, None, None, None]
        return (x - ab.sqrt() * TARGET) / (1 - ab).sqrt()

    return model_fn


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
@pytest.mark.parametrize("steps", [1, 4, 25])
def test_vp_samplers_recover_target_with_oracle(sampler, steps):
    vp = VPDiffusion()
    out = vp.sample(vp_oracle(vp), SOURCE, steps, torch.Generator().manual_seed(0), sampler)
    torch.testing.assert_close(out, TARGET, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("sampler", ["euler", "heun"])
@pytest.mark.parametrize("steps", [1, 3, 8])
def test_flow_samplers_recover_target_with_oracle(sampler, steps):
    flow = SourceFlow(sigma=0.1)
    calls = []

    def model_fn(x, t):  # the straight-line velocity towards the target from wherever x is
        calls.append(1)
        return (TARGET - x) / (1 - t)[:, None, None, None].clamp(min=1e-6)

    out = flow.sample(model_fn, SOURCE, steps, torch.Generator().manual_seed(0), sampler)
    torch.testing.assert_close(out, TARGET, atol=1e-4, rtol=1e-4)
    assert len(calls) <= steps  # never more network evaluations than asked for


def test_flow_starts_near_source_and_is_seeded():
    flow = SourceFlow(sigma=0.05)
    zero_velocity = lambda x, t: torch.zeros_like(x)  # noqa: E731
    a = flow.sample(zero_velocity, SOURCE, 4, torch.Generator().manual_seed(1))
    b = flow.sample(zero_velocity, SOURCE, 4, torch.Generator().manual_seed(1))
    c = flow.sample(zero_velocity, SOURCE, 4, torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)
    assert (a - SOURCE).std() == pytest.approx(0.05, rel=0.2)


def test_unknown_sampler_is_an_error():
    with pytest.raises(ValueError, match="valid: euler, heun"):
        SourceFlow().sample(lambda x, t: x, SOURCE, 2, None, "ddim")
