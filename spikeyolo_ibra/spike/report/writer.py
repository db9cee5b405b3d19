"""The report of a run, written as its frames come: pictures per image, videos, then JSON, figures and the page.

:class:`ReportWriter` takes the :class:`~spikeyolo_ibra.spike.inference.FrameResult` s of a run one by one and, at
the end, its :class:`~spikeyolo_ibra.spike.inference.RunSummary`; :func:`format_table` is the terminal's view.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...neuron import NeuronConfig
from ..inference import FrameResult, RunSummary
from ..measure import network, summary
from . import units
from .figures import neuron_short, plot_bitplanes, plot_energy, plot_event_bins, plot_heatmap, plot_layers, plot_levels
from .page import render
from .video import VideoSet

__all__ = ("DEFINITIONS", "ReportWriter", "chosen_layers", "format_table", "write_levels")

DEFINITIONS = {
    "neurons": "neurons of the layer input per image and logical step (C * H * W)",
    "mean_code": "mean integer code q over neurons, logical steps and images",
    "firing_rate": "spikes / (neurons * T * P): share of virtual steps with a spike (P = K planes or Q unary steps)",
    "spikes_per_neuron": "spikes a neuron sends per image over all T logical and P virtual steps (popcount(q) or q)",
    "level_utilisation": "distinct codes seen / (Q + 1) possible codes",
    "sops": "synaptic operations per image counted on the binary planes that reached the conv (spike x fan-out)",
    "sops_from_codes": "the same count derived from the integer codes: spike-count map through an all-ones conv",
    "macs": "C_in * C_out * k^2 * H_out * W_out / groups per image; times T for spike-fed layers, once for an image "
    "encoder (its output is repeated), times T for an event encoder (one conv per time bin: bins)",
    "macs_per_step": "MACs of one logical step: the ANN twin's count",
    "snn_mJ": "E_MAC * MACs(encoder, real-valued input) + E_AC * SOPs(spike-fed layers), per image",
    "ann_mJ": "E_MAC * all MACs of the same architecture at one timestep (ReLU twin), per image",
    "qann_int8_mJ": "quantized ANN of the same architecture (integer weights, activations): int8 MAC 0.23 pJ x MACs",
    "snn_int8_mJ": "the SNN priced at int8 too: 0.23 pJ x MACs(encoder) + 0.03 pJ x SOPs",
    "ratio": "ann_mJ / snn_mJ",
    "qann_ratio": "qann_int8_mJ / snn_int8_mJ: both networks with int8 arithmetic",
    "memory": "per-bit read and write costs of the memory the data moves through (45 nm, Horowitz ISSCC 2014; source)",
    "snn_mem_mJ": "bits the SNN moves per image x cost per bit: weights once per logical step, 1 bit per neuron per "
    "virtual step of spike planes read, membranes written, LIF state between logical steps (docs/energy.md)",
    "ann_mem_mJ": "the ANN twin's traffic: weights, input and output activations once each at the table's width",
    "qann_int8_mem_mJ": "the int8 ANN's traffic at 8 bits; snn_int8_mem_mJ: the SNN's with 8-bit weights and membranes",
    "snn_total_mJ": "compute + memory (likewise ann_total_mJ, snn_int8_total_mJ, qann_int8_total_mJ)",
    "total_ratio": "ann_total_mJ / snn_total_mJ; qann_total_ratio = qann_int8_total_mJ / snn_int8_total_mJ",
    "snn_mem_membranes_mJ": "the SNN's memory energy if each layer read its input neurons' membranes instead of spikes",
    "energy_mJ": "a layer's share of snn_mJ (compute); memory_mJ, ann_memory_mJ: its memory energy, SNN and ANN twin",
    "weights": "parameters of the layer's fused dense conv (weight and bias); inputs, outputs: elements per logical "
    "step; timesteps T, virtual_steps P; spikes: spikes entering per image; effective_ops: its SOPs (encoder: "
    "NeuroBench's effective MACs); dense_ops: NeuroBench's Dense",
    "activation_sparsity": "NeuroBench 2.3.0: zero neuron outputs / all outputs = 1 - spikes / (neurons x T x P)",
    "synaptic_operations": "NeuroBench 2.3.0: Effective_MACs (encoder, real-valued input), Effective_ACs (spike-fed "
    "layers: SOPs), Dense (every input-weight pair reaching an output, padding not counted), per image",
    "footprint_bytes": "NeuroBench 2.3.0: bytes of all parameters and buffers of the spike-driven graph, in float32",
    "counting": "fused model: BN folded, re-parameterised chains merged; pooling, upsample, concat, add, DFL free",
    "per_image": "one entry per image or video frame: its own sops, spikes, firing_rate, snn_mJ, ann_macs, ann_mJ, "
    "int8 figures, ratios, the same with memory (*_mem_mJ, *_total_mJ), activation_sparsity, synaptic_operations",
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
    lines[0] += f"{'SOPs':>12}{'MACs':>12}{'uJ':>9}{'mem uJ':>9}"
    for r in report["layers"]:
        spk = r["kind"] == "spiking"
        lines.append(
            f"{r['name']:<24}{r['kind']:>9}{r.get('neurons', ''):>10}"
            + (f"{r['mean_code']:>9.2f}{r['firing_rate']:>8.3f}{r['spikes_per_neuron']:>8.2f}" if spk else " " * 25)
            + (f"{r['level_utilisation']:>8.2f}{r['sops']:>12.3g}" if spk else " " * 20)
            + f"{r['macs']:>12.3g}{r['energy_mJ'] * 1e3:>9.2f}{r['memory_mJ'] * 1e3:>9.2f}"
        )
    e, eq = report["energy"], report["equivalence"]
    lines.append(
        f"energy per image: SNN {e['snn_mJ']:.4f} mJ, ANN {e['ann_mJ']:.4f} mJ, ratio {e['ratio']:.2f}x, "
        f"at int8: quantized ANN {e['qann_int8_mJ']:.4f} mJ, SNN {e['snn_int8_mJ']:.4f} mJ, "
        f"ratio {e['qann_ratio']:.2f}x"
    )
    m, nb = e["memory"], report["neurobench"]
    lines.append(
        f"with memory ({m['table']}, {m['read_pJ_per_bit']:.3g} pJ/bit): SNN {e['snn_total_mJ']:.4f} mJ "
        f"(memory {e['snn_mem_mJ']:.4f}), ANN {e['ann_total_mJ']:.4f} mJ (memory {e['ann_mem_mJ']:.4f}), ratio "
        f"{e['total_ratio']:.2f}x, at int8: quantized ANN {e['qann_int8_total_mJ']:.4f} mJ, SNN "
        f"{e['snn_int8_total_mJ']:.4f} mJ, ratio {e['qann_total_ratio']:.2f}x"
    )
    ops = nb["synaptic_operations"]
    lines.append(
        f"NeuroBench per image: activation sparsity {nb['activation_sparsity']:.4f}, synaptic operations "
        f"{ops['Effective_ACs']:.4g} effective ACs + {ops['Effective_MACs']:.4g} effective MACs (dense "
        f"{ops['Dense']:.4g}), footprint {nb['footprint_bytes'] / 1e6:.3g} MB"
    )
    if eq["checked"]:
        lines.append(
            f"equivalence: {'PASS' if eq['passed'] else 'FAIL'} (max |diff| {eq['max_abs_diff']:.3g}, "
            f"code flips {eq['code_flips']}/{eq['codes']}, detections identical: {eq['detections_identical']})"
        )
    return "\n".join(lines)


def chosen_layers(rows: list[dict], most: int = 4) -> list[str]:
    """A few spike-fed layers worth a histogram, in model order: the first, the middle, the costliest, the last."""
    spiking = [r for r in rows if r["kind"] == "spiking"]
    if not spiking:
        return []
    picks = [spiking[0], spiking[len(spiking) // 2], max(spiking, key=lambda r: r["sops"]), spiking[-1]]
    names = {r["name"] for r in picks}
    return [r["name"] for r in spiking if r["name"] in names][:most]


def write_levels(path: Path, runs: dict[str, dict[str, list[int]]]) -> None:
    """``levels.json``: per run (``this``, and ``compare`` with ``--compare``), ``network`` and ``layers`` histograms.

    One histogram per line, so the file stays readable at Q = 511.
    """
    blocks = []
    for run, levels in runs.items():
        layers = ",\n".join(f"   {json.dumps(name)}: {json.dumps(hist)}" for name, hist in levels.items())
        blocks.append(f' "{run}": {{\n  "network": {json.dumps(network(levels))},\n  "layers": {{\n{layers}\n  }}\n }}')
    path.write_text("{\n" + ",\n".join(blocks) + "\n}\n")


class ReportWriter:
    """The report of one run in ``folder``: :meth:`add` each frame's result, then :meth:`finish` with the summary.

    A still image gives ``<stem>.jpg`` (its detections) and ``<stem>-spikes.jpg`` (beside its SOP map), an event
    sample also ``<stem>-bins.png`` (its time bins); a frame of a clip goes into the clip's annotated video.
    :meth:`close` finishes open videos (also after an error).
    """

    def __init__(self, folder: Path) -> None:
        """Write into ``folder`` (an existing, empty folder)."""
        self.folder = folder
        self.videos = VideoSet(folder)
        self.per_image: list[dict] = []
        self.detections: list[dict] = []
        self.compare_per_image: list[dict] = []
        self.stills: list[str] = []

    def add(self, r: FrameResult) -> None:
        """Record one frame: its figures, its detections, its picture or video frame."""
        frame = r.frame
        record = {"image": frame.path, "frame": frame.index, "detections": len(r.result.boxes), **r.figures}
        if frame.clip is None:
            record.update(self._save_image(r))
            self.stills.append(record["annotated"])
        else:
            video = self.videos.open(frame.clip.key, frame.clip.fps, frame.clip.frames)
            video.add(r.result.plot(), frame.image, r.sop_map, r.figures["snn_mJ"], r.figures["firing_rate"])
            record["video"] = video.path.name
        self.per_image.append(record)
        self.detections.append({"image": frame.path, "frame": frame.index, "detections": r.result.summary()})
        if r.compare is not None:
            self.compare_per_image.append({"image": frame.path, "frame": frame.index, **r.compare})

    def _save_image(self, r: FrameResult) -> dict:
        """``<stem>.jpg`` with the detections drawn, and ``<stem>-spikes.jpg`` beside the SOP map."""
        name = Path(r.frame.path).name
        stem = Path(name).stem
        if f"{stem}.jpg" in self.stills:  # a.png beside a.jpg, or one name in two folders of a glob
            stem = f"{stem}-{len(self.stills)}"
        annotated = self.folder / f"{stem}.jpg"
        r.result.save(str(annotated))
        heatmap = self.folder / f"{stem}-spikes.jpg"
        f = r.figures
        title = (
            f"{name}: {len(r.result.boxes)} detection(s); SNN {units.count(f['sops'], 'SOPs')}, "
            f"{units.energy(f['snn_mJ'])}; ANN twin {units.count(f['ann_macs'], 'MACs')}, {units.energy(f['ann_mJ'])}"
        )
        plot_heatmap(r.result.plot()[..., ::-1], r.frame.image[..., ::-1], r.sop_map, title, heatmap)
        saved = {"annotated": annotated.name, "heatmap": heatmap.name}
        if r.frame.events is not None:  # an event sample: its time bins, ON red / OFF blue
            bins = self.folder / f"{stem}-bins.png"
            plot_event_bins(r.frame.events, f"{name}: {r.frame.events.shape[0]} time bins, ON red, OFF blue", bins)
            saved["bins"] = bins.name
        return saved

    def finish(self, run: dict, s: RunSummary) -> dict:
        """Write report.json, detections.json, levels.json, the figures and report.html; return the report.

        ``run`` describes the run in words (weights, source, settings); it heads the report.
        """
        eq = s.equivalence
        report = {
            **run,
            "neuron": s.neuron,
            "images": len(self.per_image),
            "energy": s.energy,
            "neurobench": s.neurobench,
            "layers": s.rows,
            "detections_file": "detections.json",
            "annotated_images": self.stills,
            "per_image": self.per_image,
            "videos": self.videos.close(),
            "equivalence": {"checked": eq is not None, **(eq.as_dict() if eq is not None else {"passed": None})},
        }
        levels = {"this": s.levels}
        if s.compare is not None:
            c = s.compare
            report["compare"] = {
                "label": c["label"],
                "weights": c["weights"],
                "neuron": c["neuron"],
                "images": len(self.compare_per_image),
                "energy": c["energy"],
                "neurobench": c["neurobench"],
                "per_image": self.compare_per_image,
                "layers": c["rows"],
            }
            levels["compare"] = c["levels"]
        self._write(report, levels, s)
        return report

    def _write(self, report: dict, levels: dict[str, dict[str, list[int]]], s: RunSummary) -> None:
        folder = self.folder
        report["definitions"] = DEFINITIONS
        config = NeuronConfig.from_mapping(report["neuron"])
        chosen = chosen_layers(report["layers"])
        report["levels"] = {"file": "levels.json", "layers": chosen}
        report["levels"].update({("network" if k == "this" else k): summary(network(v)) for k, v in levels.items()})
        write_levels(folder / "levels.json", levels)
        (folder / "detections.json").write_text(json.dumps(self.detections, indent=1))
        (folder / "report.json").write_text(json.dumps(report, indent=1))
        compare = report.get("compare")
        plot_energy(report["energy"], folder / "energy.png", (compare["label"], compare["energy"]) if compare else None)
        titles = {"this": f"{Path(report['weights']).name} ({neuron_short(config)})"}
        if compare:
            titles["compare"] = f"{compare['label']} ({neuron_short(NeuronConfig.from_mapping(compare['neuron']))})"
        plot_levels(levels, chosen, titles, folder / "levels.png")
        plot_layers(report["layers"], folder / "layers.png")
        if s.sample is not None:
            plot_bitplanes(s.sample, config, s.sample_layer, folder / "bitplanes.png")
        (folder / "report.html").write_text(render(report, self.detections, folder))

    def close(self) -> None:
        """Finish any open video (after an error: the folder is thrown away)."""
        self.videos.close()
