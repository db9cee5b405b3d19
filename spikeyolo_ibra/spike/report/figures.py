"""The report's charts, drawn with matplotlib: energy, where the spikes go, level use, layers and bit planes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from ...neuron import NeuronConfig
from ..inference.events import colour
from ..measure import network, summary
from ..runtime import encode
from . import units

__all__ = (
    "neuron_short",
    "plot_bitplanes",
    "plot_energy",
    "plot_event_bins",
    "plot_heatmap",
    "plot_layers",
    "plot_levels",
)

SNN_COLOUR, ANN_COLOUR, COMPARE_COLOUR = "tab:orange", "tab:blue", "tab:green"


def _save(fig: Figure, path: Path, dpi: int = 100) -> None:
    """Write ``fig`` (a plain Figure: no pyplot, no global backend) to ``path``."""
    fig.savefig(path, dpi=dpi, **({"pil_kwargs": {"quality": 88}} if path.suffix == ".jpg" else {}))


def plot_energy(energy: dict, path: Path, compare: tuple[str, dict] | None = None) -> None:
    """Energy per image as stacked horizontal bars, compute then memory: the SNN, its ANN twin, both at int8.

    A compared run adds its SNN bars. The bar's length is compute + memory; the label gives both parts.
    """
    table, memory = energy["costs"]["table"], energy["memory"]["table"]
    bars = [
        (f"SNN, this run ({table})", energy, "snn", SNN_COLOUR),
        (f"ANN twin ({table})", energy, "ann", ANN_COLOUR),
        ("SNN at int8 costs", energy, "snn_int8", SNN_COLOUR),
        ("quantized ANN (int8)", energy, "qann_int8", ANN_COLOUR),
    ]
    if compare is not None:
        label, other = compare
        bars.insert(1, (f"SNN, {label} ({table})", other, "snn", COMPARE_COLOUR))
        bars.insert(4, (f"SNN, {label}, int8", other, "snn_int8", COMPARE_COLOUR))
    fig = Figure(figsize=(7.5, 0.45 * len(bars) + 1.4), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(bars))[::-1]
    compute = np.array([e[f"{key}_mJ"] for _, e, key, _ in bars]) * 1e3  # uJ
    mem = np.array([e[f"{key}_mem_mJ"] for _, e, key, _ in bars]) * 1e3
    colours = [b[3] for b in bars]
    ax.barh(y, compute, color=colours, label="compute")
    ax.barh(y, mem, left=compute, color=colours, alpha=0.35, hatch="//", label=f"memory ({memory})")
    ax.set_yticks(y, [b[0] for b in bars])
    for yi, c, m in zip(y, compute, mem, strict=True):
        ax.text(c + m, yi, f" {units.energy((c + m) / 1e3)} ({units.energy(c / 1e3)} compute)", va="center", fontsize=8)
    ax.set_xlim(0, max(compute + mem) * 1.55)
    ax.set(xlabel="energy per image (µJ): 45 nm operation costs, and memory traffic")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(
        f"ANN twin / SNN = {energy['ratio']:.2f}x compute-only, {energy['total_ratio']:.2f}x with memory; "
        f"int8: {energy['qann_ratio']:.2f}x, {energy['qann_total_ratio']:.2f}x",
        fontsize=9,
    )
    _save(fig, path)


def plot_heatmap(annotated_rgb: np.ndarray, image_rgb: np.ndarray, sops: np.ndarray, title: str, path: Path) -> None:
    """Detections beside the image's SOP map (synaptic operations per pixel, summed over spike-fed layers).

    The colours span the map's 1st to 99.5th percentile, so the variation within an image shows; the colour bar
    gives the values.
    """
    h, w = image_rgb.shape[:2]
    fig = Figure(figsize=(10, 4.5 * h / w + 0.8), layout="constrained")  # ~4.5 in a panel
    a, b = fig.subplots(1, 2)
    a.imshow(annotated_rgb)
    a.set_title("detections", fontsize=10)
    b.imshow(image_rgb.mean(2), cmap="gray", vmin=0, vmax=255)
    low, high = np.percentile(sops, (1, 99.5))  # each image's own range, so its variation shows
    heat = b.imshow(sops, cmap="inferno", alpha=0.7, vmin=low, vmax=max(high, low + 1e-9))
    fig.colorbar(heat, ax=b, shrink=0.8, label="synaptic operations per pixel")
    b.set_title("where the spikes go (spike-fed layers)", fontsize=10)
    for ax in (a, b):
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def plot_event_bins(frames: np.ndarray, title: str, path: Path) -> None:
    """An event sample (T, 2, H, W) as one small picture per time bin, bin 0 (the earliest) first.

    ON events red, OFF blue, on black, one brightness scale for all bins (the 99th percentile of the non-zero
    per-bin counts is full brightness), so a bin with fewer events looks darker.
    """
    t, _, h, w = frames.shape
    counts = frames.astype(np.float64)
    nonzero = counts[counts > 0]
    full = float(np.percentile(nonzero, 99)) if nonzero.size else 1.0
    fig = Figure(figsize=(min(2.2 * t, 12), min(2.2, 12 / t) * h / w + 0.7), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, t))
    for k, ax in enumerate(axes):
        ax.imshow(colour(frames[k], full)[..., ::-1], interpolation="nearest")
        on, off = int(frames[k, 1].sum()), int(frames[k, 0].sum())
        when = " (earliest)" if k == 0 and t > 1 else " (latest)" if k == t - 1 and t > 1 else ""
        ax.set_title(f"bin {k}{when}\n{units.count(on, 'ON')}, {units.count(off, 'OFF')}", fontsize=8)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def plot_levels(runs: dict[str, dict[str, list[int]]], layers: list[str], titles: dict[str, str], path: Path) -> None:
    """Histograms of integer codes 0..Q (share of codes, log scale): the network, then chosen layers; runs side by side.

    ``runs`` maps a run key to its per-layer histograms, ``titles`` a run key to its column title.
    """
    rows = [("whole network", {k: network(v) for k, v in runs.items()})]
    rows += [(name, {k: v[name] for k, v in runs.items() if name in v}) for name in layers]
    cols = list(runs)
    fig = Figure(figsize=(6.2 * len(cols), 1.9 * len(rows) + 0.6), layout="constrained")
    axes = fig.subplots(len(rows), len(cols), squeeze=False)
    for r, (name, hists) in enumerate(rows):
        shares = {run: np.asarray(h, dtype=float) / sum(h) for run, h in hists.items() if sum(h)}
        floor = min((s[s > 0].min() for s in shares.values()), default=1.0) / 2  # one y range per row: comparable
        for c, run in enumerate(cols):
            ax = axes[r][c]
            if run not in shares:
                ax.set_axis_off()
                continue
            hist, share = hists[run], shares[run]
            s = summary(hist)
            ax.stairs(share, np.arange(len(hist) + 1) - 0.5, fill=True, color=SNN_COLOUR if c == 0 else COMPARE_COLOUR)
            ax.set_yscale("log")
            ax.yaxis.set_minor_locator(NullLocator())  # minor log ticks cost more time to lay out than the data
            ax.set_ylim(floor, 1.5)
            ax.set_xlim(-0.5, len(hist) - 0.5)
            ax.set_title(f"{titles[run]}: {name}", fontsize=9, loc="left")
            ax.text(
                0.99,
                0.95,
                f"{s['levels_used']} of {s['levels_possible']} levels used\n"
                f"non-zero {units.percent(s['nonzero_share'])}, mean code {s['mean_code']:.3g}",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=8,
            )
            ax.set_ylabel("share of codes")
            if r == len(rows) - 1:
                ax.set_xlabel(f"integer code q (0..Q, Q = {len(hist) - 1})")
    fig.suptitle("Level use: how often each integer code was emitted (code 0 = silent)", fontsize=10)
    _save(fig, path)


def neuron_short(config: NeuronConfig) -> str:
    """The settings that shape the codes, in a few words: 'K = 9 bits, N = 100, bit-plane spikes'."""
    if config.coding == "binary":
        return f"K = {config.bits} bits, N = {config.scale:g}, bit-plane spikes"
    return f"Q = {config.levels}, N = {config.scale:g}, unary spikes"


def plot_layers(rows: list[dict], path: Path) -> None:
    """Per-layer firing rate (spike-fed layers) and the SNN's energy, compute and memory (all layers)."""
    spiking = [r for r in rows if r["kind"] == "spiking"]
    fig = Figure(figsize=(12, 6.5), layout="constrained")
    a, b = fig.subplots(2, 1)
    a.bar(range(len(spiking)), [r["firing_rate"] * 100 for r in spiking], color=SNN_COLOUR)
    a.set(
        ylabel="firing rate (% of virtual steps)",
        xlabel="spike-fed layer (model order)",
        title="How often each spike-fed layer's neurons fire",
    )
    x = np.arange(len(rows))
    b.bar(x - 0.2, [r["energy_mJ"] * 1e3 for r in rows], 0.4, color=SNN_COLOUR, label="compute")
    b.bar(x + 0.2, [r["memory_mJ"] * 1e3 for r in rows], 0.4, color=SNN_COLOUR, alpha=0.35, label="memory")
    b.legend(fontsize=8)
    b.set(
        ylabel="SNN energy per image (µJ)",
        xlabel="layer (model order; layer 0 is the encoder, charged as MACs)",
        yscale="log",
        title="Where the energy goes, layer by layer",
    )
    _save(fig, path)


def plot_bitplanes(sample: torch.Tensor, config: NeuronConfig, layer: str, path: Path) -> None:
    """One channel's code map and its binary planes: the picture of the conversion."""
    channel = int((sample > 0).sum((1, 2)).argmax())  # the channel with the most active neurons
    q = sample[channel]
    planes = encode(q, config)
    cols = len(planes) + 1
    fig = Figure(figsize=(2.0 * cols, 2.4), layout="constrained")
    axes = fig.subplots(1, cols)
    axes[0].imshow(q.numpy(), cmap="viridis")
    axes[0].set_title(f"codes q (max {int(q.max())})", fontsize=8)
    for k, (ax, b) in enumerate(zip(axes[1:], planes, strict=True)):
        ax.imshow(b.numpy(), cmap="gray", vmin=0, vmax=1)
        w = f"2^{k}/N" if config.coding == "binary" else "1/N"
        ax.set_title(f"plane {k} (x{w})", fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.suptitle(f"{layer}, channel {channel}: q / N = sum_k w_k b_k", fontsize=9)
    _save(fig, path)
