"""The spike-inference report: JSON files, figures (:mod:`.figures`), the page (:mod:`.page`), a terminal table."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..neuron import NeuronConfig
from .figures import neuron_short, plot_bitplanes, plot_energy, plot_layers, plot_levels
from .levels import chosen_layers, network, summary, write_levels
from .page import render

__all__ = ("DEFINITIONS", "format_table", "write_report")

DEFINITIONS = {
    "neurons": "neurons of the layer input per image and logical step (C * H * W)",
    "mean_code": "mean integer code q over neurons, logical steps and images",
    "firing_rate": "spikes / (neurons * T * P): share of virtual steps with a spike (P = K planes or Q unary steps)",
    "spikes_per_neuron": "spikes a neuron sends per image over all T logical and P virtual steps (popcount(q) or q)",
    "level_utilisation": "distinct codes seen / (Q + 1) possible codes",
    "sops": "synaptic operations per image counted on the binary planes that reached the conv (spike x fan-out)",
    "sops_from_codes": "the same count derived from the integer codes: spike-count map through an all-ones conv",
    "macs": "C_in * C_out * k^2 * H_out * W_out / groups per image; times T for spike-fed layers, once for the encoder",
    "macs_per_step": "MACs of one logical step: the ANN twin's count",
    "snn_mJ": "E_MAC * MACs(encoder, real-valued input) + E_AC * SOPs(spike-fed layers), per image",
    "ann_mJ": "E_MAC * all MACs of the same architecture at one timestep (ReLU twin), per image",
    "qann_int8_mJ": "quantized ANN of the same architecture (integer weights, activations): int8 MAC 0.23 pJ x MACs",
    "snn_int8_mJ": "the SNN priced at int8 too: 0.23 pJ x MACs(encoder) + 0.03 pJ x SOPs",
    "ratio": "ann_mJ / snn_mJ",
    "qann_ratio": "qann_int8_mJ / snn_int8_mJ: both networks with int8 arithmetic",
    "counting": "fused model: BN folded, re-parameterised chains merged; pooling, upsample, concat, add, DFL free",
    "per_image": "one entry per image or video frame: its own sops, spikes, firing_rate, snn_mJ, ann_macs, ann_mJ, "
    "int8 figures and ratios",
    "sop_map": "SOPs per pixel: C_out / groups * spikes at (h, w) * output positions reading (h, w), summed over the "
    "spike-fed layers, each layer's grid spread over the letterboxed pixels it covers, mapped back to the image",
    "sops_in_padding": "share of an image's SOPs spent on the letterbox padding (not drawn on the image)",
    "levels": "per layer and for the network, how many codes of each value 0..Q were emitted (levels.json)",
    "equivalence": "integer vs spike mode on the same inputs; passed = identical detections after NMS and, in float64, "
    "zero neuron codes that differ",
}


def format_table(report: dict) -> str:
    """The per-layer table and totals as plain text for the terminal."""
    lines = [f"{'layer':<24}{'kind':>9}{'neurons':>10}{'mean q':>9}{'rate':>8}{'spk/n':>8}{'levels':>8}"]
    lines[0] += f"{'SOPs':>12}{'MACs':>12}{'uJ':>9}"
    for r in report["layers"]:
        spk = r["kind"] == "spiking"
        lines.append(
            f"{r['name']:<24}{r['kind']:>9}{r.get('neurons', ''):>10}"
            + (f"{r['mean_code']:>9.2f}{r['firing_rate']:>8.3f}{r['spikes_per_neuron']:>8.2f}" if spk else " " * 25)
            + (f"{r['level_utilisation']:>8.2f}{r['sops']:>12.3g}" if spk else " " * 20)
            + f"{r['macs']:>12.3g}{r['energy_mJ'] * 1e3:>9.2f}"
        )
    e, eq = report["energy"], report["equivalence"]
    lines.append(
        f"energy per image: SNN {e['snn_mJ']:.4f} mJ, ANN {e['ann_mJ']:.4f} mJ, ratio {e['ratio']:.2f}x, "
        f"at int8: quantized ANN {e['qann_int8_mJ']:.4f} mJ, SNN {e['snn_int8_mJ']:.4f} mJ, "
        f"ratio {e['qann_ratio']:.2f}x"
    )
    if eq["checked"]:
        lines.append(
            f"equivalence: {'PASS' if eq['passed'] else 'FAIL'} (max |diff| {eq['max_abs_diff']:.3g}, "
            f"code flips {eq['code_flips']}/{eq['codes']}, detections identical: {eq['detections_identical']})"
        )
    return "\n".join(lines)


def write_report(
    report: dict,
    detections: list[dict],
    sample: torch.Tensor | None,
    sample_layer: str,
    folder: Path,
    levels: dict[str, dict[str, list[int]]] | None = None,
) -> None:
    """Write report.json, detections.json, levels.json, the figures and report.html into ``folder``.

    ``levels`` maps a run (``this``, and ``compare`` with ``--compare``) to its per-layer code histograms; the
    report gets a ``levels`` entry (file, chosen layers, network summaries).
    """
    report["definitions"] = DEFINITIONS
    config = NeuronConfig.from_mapping(report["neuron"])
    levels = levels or {"this": {}}
    chosen = chosen_layers(report["layers"])
    report["levels"] = {"file": "levels.json", "layers": chosen}
    report["levels"].update({("network" if k == "this" else k): summary(network(v)) for k, v in levels.items()})
    write_levels(folder / "levels.json", levels)
    (folder / "detections.json").write_text(json.dumps(detections, indent=1))
    (folder / "report.json").write_text(json.dumps(report, indent=1))
    compare = report.get("compare")
    plot_energy(report["energy"], folder / "energy.png", (compare["label"], compare["energy"]) if compare else None)
    titles = {"this": f"{Path(report['weights']).name} ({neuron_short(config)})"}
    if compare:
        titles["compare"] = f"{compare['label']} ({neuron_short(NeuronConfig.from_mapping(compare['neuron']))})"
    plot_levels(levels, chosen, titles, folder / "levels.png")
    plot_layers(report["layers"], folder / "layers.png")
    if sample is not None:
        plot_bitplanes(sample, config, sample_layer, folder / "bitplanes.png")
    (folder / "report.html").write_text(render(report, detections, folder))
