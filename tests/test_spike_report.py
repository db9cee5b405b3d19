"""Where the spikes go: SOP maps per input location, summed over layers and mapped back to the image."""

import numpy as np
import pytest
import torch
from _tiny_checkpoint import asset_batch, tiny_model
from torch import nn

from spikeyolo_ibra.energy import sops_from_counts
from spikeyolo_ibra.spike import Monitor, to_spike_driven
from spikeyolo_ibra.spike.maps import fanout, layer_map, to_image


def test_fanout_of_a_3x3_pad_1_conv_by_hand():
    f = fanout(nn.Conv2d(1, 1, 3, 1, 1), (4, 4))
    assert f.tolist() == [[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]]
    # stride 2, pad 1 on 5: windows read rows -1..1, 1..3, 3..5, so rows 1 and 3 are read twice
    g = fanout(nn.Conv2d(1, 1, 3, 2, 1), (5, 5))
    assert g[0].tolist() == [1, 2, 1, 2, 1] and g[1].tolist() == [2, 4, 2, 4, 2]


@pytest.mark.parametrize(
    ("conv", "hw", "T"),
    [
        (nn.Conv2d(4, 8, 3, 2, 1), (12, 12), 1),  # even size, stride 2: the last row is read (a bug once)
        (nn.Conv2d(4, 8, 3, 2, 1), (7, 9), 2),
        (nn.Conv2d(4, 8, 5, 2, 2), (9, 6), 1),
        (nn.Conv2d(4, 8, 3, 1, 2, dilation=2), (8, 8), 1),
        (nn.Conv2d(4, 8, 3, 3, 0), (10, 11), 1),  # stride 3: columns no window reads
        (nn.Conv2d(4, 8, 1, 1, 0), (5, 5), 2),
        (nn.Conv2d(4, 8, 3, 1, 1, groups=4), (6, 6), 1),
    ],
)
def test_sop_map_sums_to_the_layer_sops(conv, hw, T):
    """SOP(h, w) = C_out / g * s(h, w) * F(h, w) adds up, per image, to what sops_from_counts counts."""
    torch.manual_seed(0)
    counts = torch.randint(0, 4, (T * 2, 4, *hw)).double()
    m = layer_map(counts, conv, T)
    assert m.shape == (2, *hw)
    for b in range(2):
        assert float(m[b].sum()) == float(sops_from_counts(counts[b::2], conv))


def test_maps_of_a_network_sum_to_its_sops():
    model = tiny_model().double()
    spike = to_spike_driven(model)
    with Monitor(spike, maps=True) as monitor, torch.no_grad():
        spike(asset_batch(64).double())
        sops, spikes = monitor.maps.read()
    rows = [r for r in monitor.rows() if r["kind"] == "spiking"]
    assert sops.shape == (2, 64, 64) and (sops >= 0).all()
    assert sops.sum() == pytest.approx(2 * sum(r["sops"] for r in rows), rel=1e-12)  # rows hold per-image means
    assert spikes.sum() == pytest.approx(2 * sum(r["spikes_per_neuron"] * r["neurons"] for r in rows), rel=1e-12)
    assert sops[0].sum() != sops[1].sum()  # two different images, two different costs


def test_to_image_crops_the_letterbox_and_keeps_the_sum():
    lb = np.zeros((64, 64))
    lb[:16] = 1.0  # padding rows of a 2:1 landscape image letterboxed to 64 x 64 (content rows 16..47)
    lb[16:48] = 2.0
    image, padding = to_image(lb, (100, 200))
    assert image.shape == (100, 200)
    assert padding == pytest.approx(16 * 64 / lb.sum())  # the top padding rows hold 1 each, the bottom ones 0
    assert image.sum() == pytest.approx(2.0 * 32 * 64)  # SOPs on the image, now per original pixel
    assert image.std() < 1e-9  # a uniform map stays uniform
