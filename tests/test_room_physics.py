"""benchmarks/room_physics.py: the camera-relative room description and the Eyring head's maths."""

import math
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from room_physics import ABSORPTION, CLASSES, PhysicsHead, camera_view, material_loss  # noqa: E402

SURFACES = {"west": "brick", "east": "glass", "south": "wood", "north": "curtain", "floor": "carpet",
            "ceiling": "tile"}  # fmt: skip


def view(mic, source, dims=(6.0, 4.0, 3.0)):
    return {"dims_m": list(dims), "surfaces": SURFACES, "mic": list(mic), "source": list(source)}


@pytest.mark.parametrize(
    "mic, source, front, back, left, right, depth, width",
    [
        ((1, 2, 1.5), (4, 2, 1.5), "glass", "brick", "curtain", "wood", 6.0, 4.0),  # facing +x: east ahead
        ((3, 1, 1.5), (3, 3, 1.5), "curtain", "wood", "brick", "glass", 4.0, 6.0),  # facing +y: north ahead
        ((5, 2, 1.5), (1, 2.5, 1.5), "brick", "glass", "wood", "curtain", 6.0, 4.0),  # facing -x: west ahead
    ],
)
def test_camera_view_names_the_walls_as_the_camera_sees_them(mic, source, front, back, left, right, depth, width):
    cls, log_size = camera_view(view(mic, source))
    names = [CLASSES[i] for i in cls]
    assert names == [front, back, left, right, "carpet", "tile"]
    dist = float(np.linalg.norm(np.subtract(source, mic)))
    np.testing.assert_allclose(np.exp(log_size), [depth, width, 3.0, dist], rtol=1e-5)


def test_physics_head_is_eyring_when_it_reads_one_material_and_known_sizes():
    head = PhysicsHead(8)
    last = head.mlp[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
        bias = last.bias[: 6 * len(CLASSES)].view(6, len(CLASSES))
        bias[:, CLASSES.index("plaster")] = 50.0  # every surface plaster, surely
        head.size_mu.copy_(torch.log(torch.tensor([8.0, 5.0, 3.0, 2.0])))
    with torch.no_grad():
        t60, drr, logits, log_size = head(torch.zeros(2, 8))
    volume, surface = 8 * 5 * 3, 2 * (8 * 5 + 8 * 3 + 5 * 3)
    alpha = ABSORPTION[CLASSES.index("plaster")]
    expected = 0.161 * volume / (-surface * torch.log(1 - alpha))
    torch.testing.assert_close(t60[0], expected, rtol=1e-4, atol=1e-5)
    critical = 0.057 * math.sqrt(volume / float(expected.mean()))
    assert float(drr[0]) == pytest.approx(20 * math.log10(critical / 2.0), rel=1e-4)
    # a more absorbing room is shorter: carpet everywhere decays faster than plaster
    with torch.no_grad():
        bias[:, CLASSES.index("plaster")] = 0.0
        bias[:, CLASSES.index("acoustic_panel")] = 50.0
    assert (head(torch.zeros(1, 8))[0][0] < expected).all()


def test_material_loss_scores_the_side_walls_as_a_set():
    cls = torch.tensor([[0, 1, 2, 3, 4, 5]])
    right = torch.full((1, 6, len(CLASSES)), -20.0)
    for s, c in enumerate([0, 1, 3, 2, 4, 5]):  # left and right swapped, as a flip would show them
        right[0, s, c] = 20.0
    wrong = right.clone()
    wrong[0, 4] = -20.0
    wrong[0, 4, 7] = 20.0  # the floor misread
    assert float(material_loss(right, cls)) < 1e-6
    assert float(material_loss(wrong, cls)) > 1.0
