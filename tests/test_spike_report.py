"""The report page: where the spikes go (SOP maps), per-image cost, level use, --compare, and the page itself."""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from ultralytics.utils import ASSETS

from spikeyolo_ibra.energy import sops_from_counts
from spikeyolo_ibra.spike import Monitor, to_spike_driven
from spikeyolo_ibra.spike.cli import main
from spikeyolo_ibra.spike.inference import parse_compare
from spikeyolo_ibra.spike.measure import fanout, layer_map, network, summary, to_image
from spikeyolo_ibra.spike.report.units import count, energy, percent
from spikeyolo_ibra.spike.report.writer import chosen_layers


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


def test_maps_of_a_network_sum_to_its_sops(tiny_spiking_model, asset_images):
    model = tiny_spiking_model().double()
    spike = to_spike_driven(model)
    with Monitor(spike, maps=True) as monitor, torch.no_grad():
        spike(asset_images(64).double())
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


def test_units():
    assert energy(0.7205) == "720 µJ" and energy(2.7247) == "2.72 mJ" and energy(3.1e-5) == "31 nJ"
    assert count(1.86e8, "SOPs") == "186 M SOPs" and count(12, "MACs") == "12 MACs"
    assert count(999.7e6) == "1 G" and percent(0.2934) == "29.3 %"


def test_level_summary_and_chosen_layers():
    s = summary([5, 1, 0, 2])
    assert s == {
        "levels_used": 3,
        "levels_possible": 4,
        "nonzero_share": 3 / 8,
        "upper_half_share": 2 / 3,
        "mean_code": (1 + 6) / 8,
    }
    assert network({"a": [1, 2], "b": [3, 4]}) == [4, 6]
    rows = [{"name": "enc", "kind": "encoder"}] + [{"name": f"l{i}", "kind": "spiking", "sops": i} for i in range(5)]
    rows[2]["sops"] = 99  # l1 is the costliest
    assert chosen_layers(rows) == ["l0", "l1", "l2", "l4"]


@pytest.fixture(scope="module")
def report_run(tiny_checkpoint, tmp_path_factory):
    """One CLI run over bus.jpg and zidane.jpg at 64 px, verified, compared with the same weights at N = 1."""
    folder = tmp_path_factory.mktemp("assets")
    for name in ("bus.jpg", "zidane.jpg"):
        shutil.copy(ASSETS / name, folder / name)
    out = tmp_path_factory.mktemp("run") / "report"
    args = ["--weights", str(tiny_checkpoint), "--source", str(folder), "--imgsz", "64", "--verify", "--conf", "0.001"]
    assert main([*args, "--compare", "scale=1", "--out", str(out)]) == 0
    return out


def test_per_image_figures_add_up_to_the_totals(report_run):
    report = json.loads((report_run / "report.json").read_text())
    e, per_image = report["energy"], report["per_image"]
    assert [p["frame"] for p in per_image] == [None, None] and report["images"] == 2
    assert np.mean([p["sops"] for p in per_image]) == pytest.approx(e["sops"], rel=1e-12)
    assert np.mean([p["snn_mJ"] for p in per_image]) == pytest.approx(e["snn_mJ"], rel=1e-12)
    for p in per_image:
        assert p["ann_macs"] == e["ann_macs"] and p["ratio"] == pytest.approx(p["ann_mJ"] / p["snn_mJ"])
        assert 0 < p["firing_rate"] < 1 and 0 < p["sops_in_padding"] < 1  # both images are letterboxed
        assert (report_run / p["heatmap"]).is_file() and (report_run / p["annotated"]).is_file()
    assert report["annotated_images"] == ["bus.jpg", "zidane.jpg"]
    detections = json.loads((report_run / "detections.json").read_text())
    assert [len(d["detections"]) for d in detections] == [p["detections"] for p in per_image]


def test_energy_with_memory_per_image_and_in_total(report_run):
    """Compute-only and compute + memory, per image and per run, from the rows the measurement wrote."""
    report = json.loads((report_run / "report.json").read_text())
    e, layers = report["energy"], report["layers"]
    assert e["memory"]["table"] == "sram_1mb" and "Horowitz" in e["memory"]["source"]
    for key in ("snn", "ann", "snn_int8", "qann_int8"):
        assert e[f"{key}_total_mJ"] == pytest.approx(e[f"{key}_mJ"] + e[f"{key}_mem_mJ"], rel=1e-12)
    assert sum(r["memory_mJ"] for r in layers) == pytest.approx(e["snn_mem_mJ"], rel=1e-12)
    assert sum(r["ann_memory_mJ"] for r in layers) == pytest.approx(e["ann_mem_mJ"], rel=1e-12)
    spiking = [r for r in layers if r["kind"] == "spiking"]
    for r in spiking:  # what the energy model needs, measured
        assert r["inputs"] == r["neurons"] and r["weights"] > 0 and r["outputs"] > 0 and r["virtual_steps"] == 9
        assert r["spikes"] == pytest.approx(r["spikes_per_neuron"] * r["neurons"], rel=1e-12)
    for p in report["per_image"]:
        assert p["snn_total_mJ"] == pytest.approx(p["snn_mJ"] + p["snn_mem_mJ"], rel=1e-12)
        assert p["snn_mem_mJ"] == pytest.approx(e["snn_mem_mJ"], rel=1e-12)  # traffic depends on the geometry alone
        assert p["activation_sparsity"] == pytest.approx(1 - p["firing_rate"], rel=1e-12)  # NeuroBench's definition
        assert p["synaptic_operations"]["Effective_ACs"] == pytest.approx(p["sops"], rel=1e-9)
    assert np.mean([p["snn_total_mJ"] for p in report["per_image"]]) == pytest.approx(e["snn_total_mJ"], rel=1e-12)
    nb = report["neurobench"]
    assert nb["footprint_bytes"] >= 4 * sum(r["weights"] for r in layers)
    assert nb["synaptic_operations"]["Effective_ACs"] == pytest.approx(e["sops"], rel=1e-9)
    assert report["compare"]["energy"]["snn_total_mJ"] > report["compare"]["energy"]["snn_mJ"] > 0
    page = (report_run / "report.html").read_text()
    assert "With memory traffic (sram_1mb" in page and "activation sparsity" in page


def test_levels_and_compare(report_run):
    """Range alignment, measured: the same weights coded with N = 1 use far fewer levels than with N = 100."""
    report = json.loads((report_run / "report.json").read_text())
    levels = json.loads((report_run / "levels.json").read_text())
    assert set(levels) == {"this", "compare"}
    assert len(levels["this"]["network"]) == 512 and set(report["levels"]["layers"]) <= set(levels["this"]["layers"])
    spiking = [r for r in report["layers"] if r["kind"] == "spiking"]
    assert sum(levels["this"]["network"]) == 2 * sum(r["neurons"] for r in spiking)  # every code of both images
    for r in spiking:  # the histograms are the ones the per-layer rows summarise
        assert sum(1 for h in levels["this"]["layers"][r["name"]] if h) == r["levels_used"]
    this, other = report["levels"]["network"], report["levels"]["compare"]
    assert other["levels_used"] < this["levels_used"] / 2 and other["mean_code"] < this["mean_code"] / 5
    compare = report["compare"]
    assert compare["label"] == "scale=1" and compare["neuron"]["scale"] == 1 and compare["images"] == 2
    assert compare["energy"]["snn_mJ"] > 0 and len(compare["per_image"]) == 2


def test_page_reads_top_down_and_is_self_contained(report_run):
    page = (report_run / "report.html").read_text()
    order = ["badge pass", "What it costs", "What it detected", "How the levels are used", "Layer by layer"]
    positions = [page.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert "<details><summary>All " in page  # the full table, folded away
    assert "range-alignment scale N = 100" in page and "0 of " in page  # settings in words, zero code flips
    sources = re.findall(r'<img src="([^"]{0,30})', page)
    assert len(sources) >= 6 and all(s.startswith("data:image/") for s in sources)  # embedded: opens offline
    assert not re.search(r'(src|href)="(https?:)?//', page)  # no CDN, no server
    for name in ("energy.png", "levels.png", "layers.png", "bitplanes.png", "bus-spikes.jpg"):
        assert (report_run / name).is_file()


def test_bad_compare_gives_one_sentence_and_leaves_nothing(tiny_checkpoint, tmp_path, capsys):
    cases = {
        "nope.pt": "--compare: weights file",
        "speed=3": "is not a neuron override",
        "scale=-1": "scale",
        "bits=99": "bits",
    }
    for compare, phrase in cases.items():
        out = tmp_path / "out"
        other = str(tmp_path / compare) if compare.endswith(".pt") else compare
        args = ["--weights", str(tiny_checkpoint), "--source", str(ASSETS / "bus.jpg"), "--imgsz", "64"]
        with pytest.raises(SystemExit, match="^2$"):
            main([*args, "--compare", other, "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and phrase in err[0], (compare, err)
        assert not out.exists() and not list(tmp_path.glob(".out.*")), compare


def test_compare_names_a_checkpoint_or_neuron_settings(tmp_path):
    odd = tmp_path / "a=b.pt"  # a checkpoint whose name holds '=' is still a checkpoint
    odd.write_bytes(b"")
    assert parse_compare(str(odd)) == (odd, {})
    assert parse_compare("other.pt") == (Path("other.pt"), {})
    assert parse_compare("scale=1, bits=8,coding=unary") == (None, {"scale": 1, "bits": 8, "coding": "unary"})


def test_compare_of_n_on_a_checkpoint_saved_fused_is_refused(tiny_spiking_model, tmp_path, capsys):
    """fuse() folds N into the weights; overriding N afterwards would not mean N, so it is one sentence, exit 2."""
    fused = tmp_path / "fused.pt"
    torch.save({"model": tiny_spiking_model().fuse(verbose=False), "train_args": {}}, fused)
    args = ["--weights", str(fused), "--source", str(ASSETS / "bus.jpg"), "--imgsz", "64", "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit, match="^2$"):
        main([*args, "--compare", "scale=1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was saved fused, with N folded into its weights" in err[0]
    assert not (tmp_path / "o").exists()
