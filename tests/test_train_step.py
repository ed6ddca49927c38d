"""The training state and step: named losses, masks by kind, EMA, NaN skipping, state round trip."""

import dataclasses
import math

import pytest
import torch

from mvsd.config import load_params
from mvsd.train.state import TrainState, apply_schedule, lr_factor, set_room_lr
from mvsd.train.step import compute_losses, loss_family, train_step

N = 2560  # 0.16 s: tiny and fast


@pytest.fixture
def params():
    return load_params(None, ["model.size=tiny", "model.segment_seconds=0.16", "model.overlap_seconds=0.0"])


def batch(kinds, seed=0):
    g = torch.Generator().manual_seed(seed)
    b = len(kinds)
    clean = 0.1 * torch.randn(b, N, generator=g)
    reverb = 0.1 * torch.randn(b, N, generator=g)
    has_clean = torch.tensor([k in ("paired", "clean_only", "pseudo_reverb", "pseudo_clean") for k in kinds])
    has_reverb = torch.tensor(
        [k in ("paired", "reverb_only", "pseudo_reverb", "pseudo_clean") for k in kinds]
    )
    # a decaying-noise RIR (direct sound at sample 40) for the paired samples only
    t = torch.arange(8000) / 16000
    rir = torch.randn(b, 8000, generator=g) * torch.exp(-6.9 * t / 0.5) * 0.1
    rir[:, 40] = 1.0
    has_rir = torch.tensor([k == "paired" for k in kinds])
    return {
        "rir": rir * has_rir[:, None],
        "has_rir": has_rir,
        "clean": clean * has_clean[:, None],
        "reverb": reverb * has_reverb[:, None],
        "image": torch.rand(b, 3, 96, 128, generator=g),
        "has_clean": has_clean,
        "has_reverb": has_reverb,
        "meta": [{"kind": k} for k in kinds],
    }


def test_loss_family_names():
    assert loss_family("reverb/style") == "style"
    assert loss_family("dereverb/diffusion") == "diffusion"
    assert loss_family("cycle/clean") == "cycle"


def test_paired_batch_has_every_term(params):
    state = TrainState.new(params.model, params.train)
    terms = compute_losses(state, batch(["paired", "paired"]), params.train, torch.Generator().manual_seed(0))
    assert set(terms) == {
        "reverb/diffusion",
        "reverb/style",
        "dereverb/diffusion",
        "dereverb/style",
        "reverb/room",
        "dereverb/room",
        "reverb/envelope",
        "dereverb/envelope",
        "cycle/clean",
        "cycle/reverb",
        "total",
    }
    lam = params.train.lambdas
    expected = sum(lam[loss_family(k)] * v for k, v in terms.items() if k != "total")
    torch.testing.assert_close(terms["total"], expected)


def test_pseudo_pairs_train_only_the_other_converter(params):
    state = TrainState.new(params.model, params.train)
    only_d = compute_losses(state, batch(["pseudo_reverb", "clean_only"]), params.train)
    assert "dereverb/diffusion" in only_d and "reverb/diffusion" not in only_d
    assert not any(k.startswith("cycle/") for k in only_d)
    only_r = compute_losses(state, batch(["pseudo_clean"]), params.train)
    assert "reverb/diffusion" in only_r and "dereverb/diffusion" not in only_r
    # no RIR known: no room-parameter loss, but R's room head still learns from the envelope
    assert "reverb/room" not in only_r and "reverb/envelope" in only_r


def test_step_updates_weights_ema_and_counts(params):
    state = TrainState.new(params.model, params.train)
    r = state.converters["reverb"]
    before = [p.clone() for p in r.net.parameters()]
    ema_before = [p.clone() for p in r.ema.parameters()]
    train_step(state, batch(["paired"] * 2), params.train, torch.Generator().manual_seed(0))
    assert state.step == 1
    moved = [not torch.equal(a, p) for a, p in zip(before, r.net.parameters())]
    # zero-initialised residual branches block most gradients at step 0, but not the head's
    assert any(moved) and not torch.equal(before[-1], list(r.net.parameters())[-1])
    decay = params.train.ema_decay
    for e0, e1, p1 in zip(ema_before, r.ema.parameters(), r.net.parameters()):
        torch.testing.assert_close(e1, decay * e0 + (1 - decay) * p1)


def test_nan_loss_is_skipped_and_counted(params):
    state = TrainState.new(params.model, params.train)
    b = batch(["paired"])
    b["clean"][0, 10] = math.nan
    before = [p.clone() for p in state.converters["dereverb"].net.parameters()]
    terms = train_step(state, b, params.train)
    assert not math.isfinite(float(terms["total"]))
    assert state.step == 0 and state.skipped_steps == 1
    assert all(torch.equal(a, p) for a, p in zip(before, state.converters["dereverb"].net.parameters()))


def test_losses_fall_on_a_fixed_batch(params):
    # the room head at the full learning rate (the default 0.1 protects what the room steps
    # taught; on one fixed batch there is nothing to protect)
    train_cfg = dataclasses.replace(params.train, room_lr_scale=1.0)
    params = dataclasses.replace(params, train=train_cfg)
    state = TrainState.new(params.model, params.train)
    b = batch(["paired"] * 2)
    gen = torch.Generator().manual_seed(0)
    first = [train_step(state, b, params.train, gen)["total"].item() for _ in range(5)]
    for _ in range(20):
        train_step(state, b, params.train, gen)
    last = [train_step(state, b, params.train, gen)["total"].item() for _ in range(5)]
    assert sum(last) < 0.7 * sum(first)


def test_state_dict_round_trip(params):
    a = TrainState.new(params.model, params.train)
    train_step(a, batch(["paired"]), params.train)
    b = TrainState.new(params.model, params.train)
    b.load_state_dict(a.state_dict())
    assert b.step == a.step
    for d in ("reverb", "dereverb"):
        for x, y in zip(a.converters[d].ema.state_dict().values(), b.converters[d].ema.state_dict().values()):
            assert torch.equal(x, y)


def test_lr_factor_constant_and_cosine_known_values(params):
    const = dataclasses.replace(params.train, steps=100, lr_schedule="constant")
    assert [lr_factor(const, s) for s in (0, 50, 99, 100)] == [1.0, 1.0, 1.0, 1.0]
    cos = dataclasses.replace(params.train, steps=100, lr_schedule="cosine")
    assert lr_factor(cos, 0) == 1.0
    assert lr_factor(cos, 50) == pytest.approx(0.5, abs=1e-12)
    assert lr_factor(cos, 25) == pytest.approx((1 + math.sqrt(0.5)) / 2, abs=1e-12)
    assert lr_factor(cos, 99) == pytest.approx((1 - math.cos(math.pi / 100)) / 2, abs=1e-12)
    assert lr_factor(cos, 100) == pytest.approx(0.0, abs=1e-12)
    rates = [lr_factor(cos, s) for s in range(101)]
    assert all(a > b for a, b in zip(rates, rates[1:]))  # strictly falling


def test_schedule_scales_each_group_from_its_own_base_rate(params):
    t = dataclasses.replace(params.train, steps=10, lr_schedule="cosine", lr=1e-3, room_lr_scale=0.1)
    state = TrainState.new(params.model, t)
    opt = state.optimizers["reverb"]
    for step in (0, 5, 0):  # back to step 0: the rates are a function of the step alone
        apply_schedule(opt, t, step)
        f = lr_factor(t, step)
        assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 * f)
        assert opt.param_groups[1]["lr"] == pytest.approx(1e-4 * f)
    set_room_lr(opt, 2e-3)  # a head without known RIRs learns at the full rate, scheduled too
    apply_schedule(opt, t, 5)
    assert opt.param_groups[1]["lr"] == pytest.approx(1e-3)
    # an optimizer restored from a checkpoint written before the schedule existed (no base_lr)
    for g in opt.param_groups:
        del g["base_lr"]
        g["lr"] = 1e-3
    apply_schedule(opt, t, 5)
    assert opt.param_groups[0]["lr"] == pytest.approx(5e-4)
    apply_schedule(opt, t, 0)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3)  # from its base, not from the last rate


def test_unknown_lr_schedule_is_refused():
    from mvsd.config import ConfigError

    assert load_params(None, ["train.lr_schedule=cosine"]).train.lr_schedule == "cosine"
    with pytest.raises(ConfigError, match="train.lr_schedule must be one of constant, cosine; got 'linear'"):
        load_params(None, ["train.lr_schedule=linear"])


def test_sisdr_loss_matches_a_known_ratio_and_the_evaluation_metric():
    from mvsd.eval.metrics import si_sdr
    from mvsd.losses import sisdr_loss

    g = torch.Generator().manual_seed(3)
    r = torch.randn(2, 4000, generator=g, dtype=torch.float64)
    r -= r.mean(-1, keepdim=True)
    q = torch.randn(2, 4000, generator=g, dtype=torch.float64)
    q -= q.mean(-1, keepdim=True)
    q -= (q * r).sum(-1, keepdim=True) / (r * r).sum(-1, keepdim=True) * r  # orthogonal to r
    q *= (r.norm(dim=-1) / q.norm(dim=-1))[:, None]  # as loud as r
    est = 0.7 * r + 0.07 * q  # a scaled target plus an orthogonal error 20 dB below it
    torch.testing.assert_close(sisdr_loss(est, r), torch.tensor(-2.0, dtype=torch.float64))
    noisy = r + 0.5 * torch.randn(2, 4000, generator=g, dtype=torch.float64)
    want = -sum(si_sdr(r[i].numpy(), noisy[i].numpy()) for i in range(2)) / 2 / 10
    assert float(sisdr_loss(noisy, r)) == pytest.approx(want, abs=1e-6)
    silent = torch.zeros(1, 4000, requires_grad=True)
    loss = sisdr_loss(silent, torch.zeros(1, 4000))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(silent.grad).all()


def test_sisdr_term_only_when_weighted(params):
    state = TrainState.new(params.model, params.train)
    off = compute_losses(state, batch(["paired"] * 2), params.train, torch.Generator().manual_seed(0))
    assert not any(k.endswith("/sisdr") for k in off)
    cfg = dataclasses.replace(params.train, lambdas={**params.train.lambdas, "sisdr": 0.5})
    on = compute_losses(state, batch(["paired"] * 2), cfg, torch.Generator().manual_seed(0))
    assert "dereverb/sisdr" in on and "reverb/sisdr" not in on
    assert torch.isfinite(on["dereverb/sisdr"])
    torch.testing.assert_close(on["total"] - off["total"], 0.5 * on["dereverb/sisdr"])


def test_with_phase_of_takes_magnitudes_from_one_and_phases_from_the_other():
    from mvsd.models.net import with_phase_of

    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(2, 2, 5, 7, generator=g), torch.randn(2, 2, 5, 7, generator=g)
    out = with_phase_of(a, b)
    za, zb, zo = (torch.complex(x[:, 0], x[:, 1]) for x in (a, b, out))
    torch.testing.assert_close(zo.abs(), za.abs())
    torch.testing.assert_close(torch.angle(zo), torch.angle(zb))
    # a known case: magnitude 2 at phase 0, phase pi/2 of the other -> 2i
    one = with_phase_of(torch.tensor([2.0, 0.0]).view(1, 2, 1, 1), torch.tensor([0.0, 3.0]).view(1, 2, 1, 1))
    torch.testing.assert_close(one.flatten(), torch.tensor([0.0, 2.0]), atol=1e-6, rtol=0)


def test_target_phase_source_regresses_the_estimates_phase(params):
    """train.target_phase=source: the flow's target has the target's magnitudes and the physical
    estimate's phase (own keeps the target's phase); the losses stay finite."""
    p = dataclasses.replace(params.train, target_phase={"reverb": "own", "dereverb": "source"})
    state = TrainState.new(params.model, p)
    b = batch(["paired", "paired"])
    net = state.converters["dereverb"].net
    proc = state.converters["dereverb"].process
    own = net(proc, b["reverb"], b["clean"], b["image"], (0, N), torch.Generator().manual_seed(0))
    src = net(proc, b["reverb"], b["clean"], b["image"], (0, N), torch.Generator().manual_seed(0), 0.0, "source")

    def z(x):
        return torch.complex(x[:, 0], x[:, 1])

    torch.testing.assert_close(z(src["target"]).abs(), z(own["target"]).abs())
    loud = z(src["source"]).abs() > 1e-3
    diff = torch.angle(z(src["target"]) * z(src["source"]).conj())[loud]
    assert diff.abs().max() < 1e-4
    assert torch.angle(z(own["target"]) * z(own["source"]).conj())[loud].abs().mean() > 0.1
    terms = compute_losses(state, b, p, torch.Generator().manual_seed(0))
    assert torch.isfinite(terms["total"])


def test_unknown_target_phase_is_refused():
    from mvsd.config import ConfigError

    with pytest.raises(ConfigError, match="target_phase"):
        load_params(None, ["train.target_phase.dereverb=input"])
    with pytest.raises(ConfigError, match="target_phase"):
        load_params(None, ["train.target_phase.both=source"])
