"""``report.html``: one self-contained page a person reads top-down (no CDN, no server; pictures embedded as base64).

Summary first (the equivalence verdict as a badge with its figures, energy against the ANN twin and the int8
quantized ANN, the run in words), then the gallery (detections beside where the spikes went, per-image cost), then
level use, then the per-layer views, then the full table folded away. A small inline script records script errors
and images that failed to load into attributes of ``<html>`` (``data-images``, ``data-broken-images``,
``data-script-errors``), so a headless browser can check the page (:mod:`.browser`).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from ...neuron import NeuronConfig
from . import units

__all__ = ("GALLERY_MAX", "neuron_in_words", "render")

GALLERY_MAX = 24  # images shown on the page; all of them are in the folder

HEALTH_SCRIPT = """<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) { if (e instanceof ErrorEvent) errors.push(e.message); }, true);
  window.addEventListener("unhandledrejection", function (e) { errors.push(String(e.reason)); });
  window.addEventListener("load", function () {
    var imgs = Array.prototype.slice.call(document.images);
    var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
    var root = document.documentElement;
    root.setAttribute("data-images", imgs.length);
    root.setAttribute("data-broken-images", broken.length);
    root.setAttribute("data-script-errors", errors.length);
    root.setAttribute("data-error-text", errors.join(" | "));
  });
})();
</script>"""

STYLE = """<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:1120px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:26px;margin:8px 0 4px}
h2{font-size:20px;margin:36px 0 8px;border-bottom:1px solid #d8dce3;padding-bottom:4px}
p.lead{color:#4a5263;margin:0 0 16px}.muted{color:#6b7385}
.summary{display:grid;grid-template-columns:minmax(260px,1fr) 2fr;gap:18px;align-items:start}
.card{background:#fff;border:1px solid #dde1e8;border-radius:10px;padding:14px 16px}
.badge{display:inline-block;font-weight:700;font-size:22px;padding:6px 16px;border-radius:8px;color:#fff}
.pass{background:#1a7f37}.fail{background:#c62828}.unchecked{background:#6b7385}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 12px;margin:10px 0 0}dt{color:#6b7385}dd{margin:0}
.gallery{display:grid;grid-template-columns:1fr;gap:18px}
figure{margin:0}figure img,.card img{width:100%;height:auto;display:block}
.card img.bins{width:auto;max-width:100%;margin:0 auto}
figcaption{font-size:14px;margin-top:8px}
table.figures{border-collapse:collapse;margin-top:6px;font-size:13px}
table.figures td,table.figures th{padding:2px 10px 2px 0;text-align:left}
details{margin-top:14px}summary{cursor:pointer;font-weight:600}
table.layers{border-collapse:collapse;font-size:12px;margin-top:8px;background:#fff}
table.layers td,table.layers th{border:1px solid #d8dce3;padding:2px 6px;text-align:right}
table.layers td:first-child,table.layers th:first-child{text-align:left}
code{background:#eef0f4;padding:0 3px;border-radius:3px}
</style>"""


def _img(folder: Path, name: str, alt: str, cls: str = "") -> str:
    path = folder / name
    mime = "image/png" if path.suffix == ".png" else "image/jpeg"
    data = base64.b64encode(path.read_bytes()).decode()
    kind = f' class="{cls}"' if cls else ""
    return f'<img{kind} src="data:{mime};base64,{data}" alt="{html.escape(alt)}">'


def neuron_in_words(mapping: dict) -> str:
    """The neuron settings as a sentence a reader understands without the YAML."""
    c = NeuronConfig.from_mapping(mapping)
    q = c.max_code
    if c.coding == "binary":
        kind = "IBRA-LIF" if c.scale != 1 else "integer LIF without range alignment"
        code = f"Q = 2<sup>K</sup> &minus; 1 = {q} (K = {c.bits} bits)"
        spikes = (
            f"A code travels as K = {c.bits} binary spikes, its bit planes (plane k weighs 2<sup>k</sup>/N), "
            "so a neuron sends popcount(q) spikes"
        )
    else:
        kind = "I-LIF (SpikeYOLO)" if c.scale == 1 else "unary integer LIF"
        code = f"Q = {q}"
        spikes = f"A code travels as q unary spikes over Q = {q} virtual steps (each weighs 1/N)"
    steps = f"T = {c.T} logical timestep" + ("s" if c.T > 1 else "")
    leak = f", membrane leak &beta; = {c.beta:g} between them" if c.T > 1 else ""
    return (
        f"{kind} neurons: each emits an integer code q = round(clip(N&middot;u, 0, Q)) with {code} and "
        f"range-alignment scale N = {c.scale:g}, and passes on q/N, at most {c.ceiling:.3g}. {spikes}. "
        f"{steps}{leak}."
    )


def _badge(eq: dict) -> str:
    if not eq["checked"]:
        return (
            '<span class="badge unchecked">NOT CHECKED</span><p>Run with <code>--verify</code> to compare spike '
            "mode with the integer model.</p>"
        )
    ok = eq["passed"]
    flips = f"{eq['code_flips']:,} of {eq['codes']:,} neuron codes differ ({units.percent(eq['flip_fraction'])})"
    return (
        f'<span class="badge {"pass" if ok else "fail"}">{"PASS" if ok else "FAIL"}</span>'
        f"<p>Spike mode (only 0/1 reach the synapses) against the integer model on the same {eq['images']} "
        f"input(s), {html.escape(eq['dtype'])}:</p><dl>"
        f"<dt>detections</dt><dd>{'identical' if eq['detections_identical'] else 'differ'}</dd>"
        f"<dt>neuron codes</dt><dd>{flips}</dd>"
        f"<dt>head outputs</dt><dd>largest |difference| {eq['max_abs_diff']:.2g}</dd></dl>"
    )


def _summary(report: dict, folder: Path) -> str:
    e = report["energy"]
    table = e["costs"]["table"]
    facts = [
        ("checkpoint", html.escape(Path(report["weights"]).name)),
        ("source", html.escape(str(report["source"]))),
        ("inputs", f"{report['images']} image(s) or frame(s), letterboxed to {report['imgsz']} px square"),
        ("run", f"{report['dtype']} on {html.escape(report['device'])}, {report['accumulate']} accumulation"),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    cost = (
        f"<p>Per image, the SNN costs <b>{units.energy(e['snn_mJ'])}</b> ({units.count(e['sops'], 'SOPs')} "
        f"+ {units.count(e['encoder_macs'], 'MACs')} in the encoder) against <b>{units.energy(e['ann_mJ'])}</b> "
        f"for its ANN twin ({units.count(e['ann_macs'], 'MACs')}): <b>{e['ratio']:.2f}x</b> less at {table} "
        f"costs (MAC {e['costs']['mac_pJ']} pJ, accumulate {e['costs']['ac_pJ']} pJ). With int8 arithmetic on both "
        f"sides: {units.energy(e['snn_int8_mJ'])} against {units.energy(e['qann_int8_mJ'])} for a quantized ANN, "
        f"<b>{e['qann_ratio']:.2f}x</b>.</p>{_with_memory(e)}{_neurobench(report['neurobench'])}"
    )
    return (
        f'<div class="summary"><div class="card"><h3>Spike mode equals the integer model?</h3>'
        f"{_badge(report['equivalence'])}</div>"
        f'<div class="card"><h3>What it costs</h3>{cost}{_img(folder, "energy.png", "energy per image")}</div></div>'
        f'<div class="card" style="margin-top:18px"><h3>The run</h3><p>{neuron_in_words(report["neuron"])}</p>'
        f"<dl>{dl}</dl></div>"
    )


def _with_memory(e: dict) -> str:
    m = e["memory"]
    return (
        f"<p>With memory traffic ({html.escape(m['table'])}, {m['read_pJ_per_bit']:.3g} pJ per bit read or written: "
        f"{html.escape(m['source'])}), the SNN costs <b>{units.energy(e['snn_total_mJ'])}</b> "
        f"({units.energy(e['snn_mem_mJ'])} of it memory) against <b>{units.energy(e['ann_total_mJ'])}</b> for the "
        f"ANN twin ({units.energy(e['ann_mem_mJ'])} memory): <b>{e['total_ratio']:.2f}x</b>; at int8 "
        f"{units.energy(e['snn_int8_total_mJ'])} against {units.energy(e['qann_int8_total_mJ'])}, "
        f"<b>{e['qann_total_ratio']:.2f}x</b>. Were each layer to read its input neurons' membranes instead of "
        f"spikes, the SNN would cost {units.energy(e['snn_total_membranes_mJ'])}.</p>"
    )


def _neurobench(nb: dict) -> str:
    ops = nb["synaptic_operations"]
    return (
        f"<p class=muted>NeuroBench's metrics (their definitions), per image: activation sparsity "
        f"{units.percent(nb['activation_sparsity'])}; synaptic operations {units.count(ops['Effective_ACs'])} "
        f"effective ACs and {units.count(ops['Effective_MACs'])} effective MACs (dense {units.count(ops['Dense'])}); "
        f"footprint {units.si(nb['footprint_bytes'], 'B')}.</p>"
    )


def _labels(entry: dict | None) -> str:
    if not entry or not entry["detections"]:
        return "no detections above the confidence threshold"
    names = [f"{html.escape(d['name'])} {d['confidence']:.2f}" for d in entry["detections"][:8]]
    more = len(entry["detections"]) - len(names)
    return ", ".join(names) + (f" (+{more} more)" if more > 0 else "")


def _figures_table(r: dict) -> str:
    rows = [
        (
            "SNN",
            f"{units.count(r['sops'], 'SOPs')}, {units.count(r['spikes'], 'spikes')} "
            f"(firing rate {units.percent(r['firing_rate'])}), {units.energy(r['snn_mJ'])}",
        ),
        ("ANN twin", f"{units.count(r['ann_macs'], 'MACs')}, {units.energy(r['ann_mJ'])}: {r['ratio']:.2f}x the SNN"),
        (
            "with memory",
            f"SNN {units.energy(r['snn_total_mJ'])}, ANN twin {units.energy(r['ann_total_mJ'])}: "
            f"{r['total_ratio']:.2f}x",
        ),
        ("NeuroBench", f"activation sparsity {units.percent(r['activation_sparsity'])}"),
    ]
    if r["sops_in_padding"] > 0:
        rows.append(("letterbox padding", f"{units.percent(r['sops_in_padding'])} of the SOPs (not drawn)"))
    return '<table class="figures">' + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _gallery(report: dict, detections: list[dict], folder: Path) -> str:
    by_image = {d["image"]: d for d in detections if d.get("frame") is None}
    stills = [r for r in report["per_image"] if r["frame"] is None]
    cards = []
    for r in stills[:GALLERY_MAX]:
        name = Path(r["image"]).name
        # an event sample's bins at their own size (small pictures), above the detections and the spike map
        bins = _img(folder, r["bins"], f"time bins of the event sample {name}", "bins") if r.get("bins") else ""
        cards.append(
            f"<figure class=card>{bins}{_img(folder, r['heatmap'], f'detections and spike map of {name}')}"
            f"<figcaption><b>{html.escape(name)}</b>: {_labels(by_image.get(r['image']))}"
            f"{_figures_table(r)}</figcaption></figure>"
        )
    if len(stills) > GALLERY_MAX:
        cards.append(f"<p class=muted>{len(stills) - GALLERY_MAX} more images: see the folder and report.json.</p>")
    for v in report.get("videos", []):
        frames = [r for r in report["per_image"] if r.get("video") == v["file"]]
        mean_mj = sum(r["snn_mJ"] for r in frames) / max(len(frames), 1)
        cards.append(
            f"<figure class=card>{_img(folder, v['poster'], 'last frame of the annotated video')}"
            f"<figcaption><b>{html.escape(Path(v['source']).name)}</b>: {v['frames']} frames at {v['fps']:g} "
            f'fps, annotated video <a href="{html.escape(v["file"])}">{html.escape(v["file"])}</a> (MPEG-4; plays '
            f"in VLC or ffplay, browsers may not). The last frame: detections, where the spikes went (colour scale "
            f"fixed per video), and energy and firing rate per frame. Mean SNN energy "
            f"{units.energy(mean_mj)} per frame against {units.energy(frames[0]['ann_mJ']) if frames else '-'} "
            f"for the ANN twin.</figcaption></figure>"
        )
    if not cards:
        return ""
    return (
        "<h2>What it detected, and where it fired</h2><p class=lead>Left: the detections after NMS. Right: "
        "synaptic operations (SOPs) per pixel, each spike charged to the input location that sent it, summed over "
        "all spike-fed layers and mapped back to the image (the encoder, which reads the real-valued image, is "
        "charged as MACs and not drawn). Bright areas are where the network spends its energy; the colours span each "
        "image's own range, the colour bar gives the values."
        + (
            " Above each event sample: its time bins, the earliest first, ON events red and OFF blue on black (one "
            "brightness scale for all its bins); the detections are drawn on its bins summed in the same colours."
            if any(r.get("bins") for r in stills)
            else ""
        )
        + f'</p><div class="gallery">{"".join(cards)}</div>'
    )


def _levels(report: dict, folder: Path) -> str:
    lv = report["levels"]
    s = lv["network"]
    text = (
        f"Across the network the neurons used {s['levels_used']} of the {s['levels_possible']} levels; "
        f"{units.percent(s['nonzero_share'])} of the codes were non-zero, and of those "
        f"{units.percent(s['upper_half_share'])} lay in the upper half of the range (mean code {s['mean_code']:.3g})."
    )
    if "compare" in lv:
        c = lv["compare"]
        text += (
            f" The compared run ({html.escape(report['compare']['label'])}) used {c['levels_used']} of "
            f"{c['levels_possible']} levels, non-zero {units.percent(c['nonzero_share'])}, "
            f"upper half {units.percent(c['upper_half_share'])}."
        )
    return (
        "<h2>How the levels are used</h2><p class=lead>Each neuron emits an integer code q in 0..Q. Range alignment "
        "(the scale N) stretches membranes of order 1 over the whole code range, so neurons use many levels, and "
        f"the spikes that carry them, instead of a handful. {text}</p>"
        f'<div class="card">{_img(folder, "levels.png", "histograms of integer codes")}</div>'
    )


def _layer_table(report: dict) -> str:
    head = ["layer", "kind", "neurons", "mean code", "firing rate", "spikes / neuron", "levels used", "SOPs"]
    head += ["MACs (T steps)", "energy", "memory"]
    body = []
    for r in report["layers"]:
        spk = r["kind"] == "spiking"
        cells = [
            html.escape(r["name"]),
            r["kind"],
            f"{r['neurons']:,}" if "neurons" in r else "",
            f"{r['mean_code']:.3g}" if spk else "",
            units.percent(r["firing_rate"]) if spk else "",
            f"{r['spikes_per_neuron']:.3g}" if spk else "",
            f"{r['levels_used']} / {r['levels_possible']}" if spk else "",
            units.count(r["sops"]) if spk else "",
            units.count(r["macs"]),
            units.energy(r["energy_mJ"]),
            units.energy(r["memory_mJ"]),
        ]
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        f"<details><summary>All {len(report['layers'])} layers</summary><table class=layers><tr>"
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr>"
        + "".join(body)
        + "</table></details>"
    )


def _definitions(report: dict) -> str:
    items = "".join(f"<li><b>{k}</b>: {html.escape(v)}</li>" for k, v in report["definitions"].items())
    return f"<details><summary>Definitions</summary><ul>{items}</ul></details>"


def render(report: dict, detections: list[dict], folder: Path) -> str:
    """The page for ``report`` whose pictures lie in ``folder``."""
    eq = report["equivalence"]
    verdict = "not checked" if not eq["checked"] else ("PASS" if eq["passed"] else "FAIL")
    layers = "".join(
        f'<div class="card" style="margin-top:12px">{_img(folder, name, alt)}</div>'
        for name, alt in (("layers.png", "per-layer firing rate and energy"), ("bitplanes.png", "bit planes"))
        if (folder / name).exists()
    )
    files = ", ".join(
        f'<a href="{f}">{f}</a>' for f in ("report.json", "detections.json", "levels.json") if (folder / f).exists()
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Spike inference: {verdict}, {units.energy(report["energy"]["snn_mJ"])} per image</title>
{HEALTH_SCRIPT}{STYLE}</head><body><main>
<h1>Spike-driven inference report</h1>
<p class="lead">{html.escape(Path(report["weights"]).name)} run as a spiking network on {report["images"]} input(s):
every synapse received only binary spikes.</p>
{_summary(report, folder)}
{_gallery(report, detections, folder)}
{_levels(report, folder)}
<h2>Layer by layer</h2><p class="lead">Firing rate and energy per layer in model order, and the conversion itself:
one channel's integer codes split into binary planes.</p>{layers}
{_layer_table(report)}
{_definitions(report)}
<p class="muted" style="margin-top:24px">Files beside this page: {files}.</p>
</main></body></html>
"""
