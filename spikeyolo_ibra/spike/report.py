"""The spike-inference report: JSON files, matplotlib figures, a self-contained HTML page and a terminal table."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from ..neuron import NeuronConfig  # noqa: E402
from .encoding import encode  # noqa: E402

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
    "equivalence": "integer vs spike mode on the same inputs; passed = identical detections after NMS and, in float64, "
    "zero neuron codes that differ",
}


def _plot_layers(rows: list[dict], path: Path) -> None:
    """Per-layer firing rate (spike-fed layers) and energy (all layers)."""
    spiking = [r for r in rows if r["kind"] == "spiking"]
    fig, (a, b) = plt.subplots(2, 1, figsize=(12, 6.5), constrained_layout=True)
    a.bar(range(len(spiking)), [r["firing_rate"] for r in spiking], color="tab:orange")
    a.set(ylabel="firing rate per virtual step", title="Spike-fed layers")
    b.bar(range(len(rows)), [r["energy_mJ"] * 1e3 for r in rows], color="tab:blue")
    b.set(ylabel="energy per image (uJ)", xlabel="layer (model order)", yscale="log")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_bitplanes(sample: torch.Tensor, config: NeuronConfig, layer: str, path: Path) -> None:
    """One channel's code map and its binary planes: the picture of the conversion."""
    channel = int(torch.stack([(sample[c] > 0).sum() for c in range(sample.shape[0])]).argmax())
    q = sample[channel]
    planes = encode(q, config)
    cols = len(planes) + 1
    fig, axes = plt.subplots(1, cols, figsize=(2.0 * cols, 2.4), constrained_layout=True)
    axes[0].imshow(q.numpy(), cmap="viridis")
    axes[0].set_title(f"codes q (max {int(q.max())})", fontsize=8)
    for k, (ax, b) in enumerate(zip(axes[1:], planes, strict=True)):
        ax.imshow(b.numpy(), cmap="gray", vmin=0, vmax=1)
        w = f"2^{k}/N" if config.coding == "binary" else "1/N"
        ax.set_title(f"plane {k} (x{w})", fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(f"{layer}, channel {channel}: q / N = sum_k w_k b_k", fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _embed(path: Path) -> str:
    mime = "image/png" if path.suffix == ".png" else "image/jpeg"
    return f'<img src="data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}" style="max-width:100%">'


def _html(report: dict, folder: Path) -> str:
    """A page with everything embedded (no external files, works offline)."""
    e, rows = report["energy"], report["layers"]
    eq = report["equivalence"]
    verdict = "not checked" if not eq["checked"] else ("PASS" if eq["passed"] else "FAIL")
    keys = ["name", "kind", "neurons", "mean_code", "firing_rate", "spikes_per_neuron", "level_utilisation", "sops"]
    keys += ["macs", "energy_mJ"]
    head = "".join(f"<th>{k}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(k, '')))}</td>" for k in keys) + "</tr>" for r in rows
    )
    defs = "".join(f"<li><b>{k}</b>: {html.escape(v)}</li>" for k, v in DEFINITIONS.items())
    figures = "".join(_embed(folder / f) for f in ("layers.png", "bitplanes.png") if (folder / f).exists())
    pictures = "".join(_embed(folder / f) for f in report["annotated_images"])
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Spike inference report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:12px}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}}</style></head><body>
<h1>Spike inference report</h1>
<p>{report["images"]} image(s), imgsz {report["imgsz"]}, {report["dtype"]}, accumulation {report["accumulate"]},
neuron {html.escape(json.dumps(report["neuron"]))}</p>
<h2>Equivalence: {verdict}</h2><pre>{html.escape(json.dumps(eq, indent=1))}</pre>
<h2>Energy per image ({e["costs"]["table"]}: MAC {e["costs"]["mac_pJ"]} pJ, AC {e["costs"]["ac_pJ"]} pJ)</h2>
<p>SNN {e["snn_mJ"]:.4f} mJ, ANN {e["ann_mJ"]:.4f} mJ (ratio {e["ratio"]:.2f}x), at int8: quantized ANN
{e["qann_int8_mJ"]:.4f} mJ, SNN {e["snn_int8_mJ"]:.4f} mJ (ratio {e["qann_ratio"]:.2f}x)</p>{figures}
<h2>Detections</h2>{pictures}
<h2>Layers</h2><table><tr>{head}</tr>{body}</table><h2>Definitions</h2><ul>{defs}</ul></body></html>"""


def _fmt(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


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
    report: dict, detections: list[dict], sample: torch.Tensor | None, sample_layer: str, folder: Path
) -> None:
    """Write report.json, detections.json, layers.png, bitplanes.png and report.html into ``folder``."""
    report["definitions"] = DEFINITIONS
    (folder / "detections.json").write_text(json.dumps(detections, indent=1))
    (folder / "report.json").write_text(json.dumps(report, indent=1))
    _plot_layers(report["layers"], folder / "layers.png")
    if sample is not None:
        _plot_bitplanes(sample, NeuronConfig.from_mapping(report["neuron"]), sample_layer, folder / "bitplanes.png")
    (folder / "report.html").write_text(_html(report, folder))
