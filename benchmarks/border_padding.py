"""How much SpikeYOLO's border rule and ours differ in train mode (eval mode is exact): one batch, same weights.

    python benchmarks/border_padding.py --weights bench/finetune/pretrain/runs/spikeyolo-s0/weights/best.pt \\
        --out benchmarks/results/import/border-padding.json

SpikeYOLO's re-parameterisable convs (``RepConv``, ``SepRepConv``) apply BN and then pad with BN(0) computed from the
*running* statistics (``BNAndPadLayer``); ours zero-pad the chain's input, so the pad goes through the 1x1 conv and
the BN like any pixel. In eval both borders hold BN_running(0): identical. In train mode ours normalises the border
with the *batch* statistics, and those statistics include the border pixels.

Their side is the stand-in model of ``tests/fixtures/spikeyolo_format.py`` (their semantics, straight-through
gradient included). Two sets of weights, each loaded into both models so that they are equal in eval mode:

- ``trained``: an I-LIF checkpoint of ours (``--weights``, e.g. the fine-tuning benchmark's pretraining), copied into
  their layout key by key (``StateMapper.sources``; their downsampling biases 0);
- ``random``: SpikeYOLO-n with random weights and BN statistics, converted with :func:`import_spikeyolo`.

For one labelled batch of the built-in set (8 validation images at the recipe's 64 px; also bus.jpg + zidane.jpg at
320 px for ``random``) it reports in train mode: the relative L2 difference of the three maps the head reads and of the
raw head outputs, the share of neuron codes (before the head) that differ, the detection loss of each side (our
criterion on both outputs), and the cosine between the two parameter gradients; eval mode is the control.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
from _common import run_record
from ultralytics import YOLO
from ultralytics.cfg import get_cfg
from ultralytics.data.utils import check_det_dataset
from ultralytics.utils import ASSETS

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("spikeyolo_format", REPO / "tests" / "fixtures" / "spikeyolo_format.py")
sf = sys.modules["spikeyolo_format"] = importlib.util.module_from_spec(_spec)  # their semantics, from the tests
_spec.loader.exec_module(sf)

from spikeyolo_ibra.interop.convert import build_target, import_spikeyolo, target_yaml  # noqa: E402
from spikeyolo_ibra.interop.map import StateMapper  # noqa: E402
from spikeyolo_ibra.interop.read import infer_shape, read_checkpoint  # noqa: E402
from spikeyolo_ibra.neuron import IBLIF  # noqa: E402

HEAD_INPUTS = (18, 21, 24)  # ours; theirs are one layer later (their layer 0 is MS_GetT)
DATA = REPO / "cfg" / "datasets" / "shapes.yaml"


def shapes_batch(size: int = 64, n: int = 8) -> dict[str, torch.Tensor]:
    """The first ``n`` validation images of the built-in set, resized to ``size``, with their YOLO labels."""
    root = Path(check_det_dataset(str(DATA))["path"])
    imgs, cls, boxes, idx = [], [], [], []
    for i, path in enumerate(sorted((root / "images" / "val").glob("*.jpg"))[:n]):
        imgs.append(cv2.resize(cv2.imread(str(path)), (size, size))[..., ::-1])
        rows = np.loadtxt(root / "labels" / "val" / f"{path.stem}.txt", ndmin=2)
        cls += rows[:, :1].tolist()
        boxes += rows[:, 1:].tolist()
        idx += [i] * len(rows)
    img = torch.from_numpy(np.stack(imgs).transpose(0, 3, 1, 2).copy()).float() / 255
    return {"img": img, "cls": torch.tensor(cls), "bboxes": torch.tensor(boxes), "batch_idx": torch.tensor(idx)}


def asset_batch(size: int) -> dict[str, torch.Tensor]:
    ims = [cv2.resize(cv2.imread(str(ASSETS / n)), (size, size))[..., ::-1] for n in ("bus.jpg", "zidane.jpg")]
    img = torch.from_numpy(np.stack(ims).transpose(0, 3, 1, 2).copy()).float() / 255
    return {
        "img": img,
        "cls": torch.zeros(1, 1),
        "bboxes": torch.tensor([[0.5, 0.5, 0.4, 0.6]]),
        "batch_idx": torch.zeros(1),
    }


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def first(layer: torch.nn.Module) -> torch.nn.Module:
    return layer[0] if isinstance(layer, torch.nn.Sequential) else layer


def pair(weights: Path | None, tmp: Path) -> tuple[torch.nn.Module, torch.nn.Module, dict[str, str]]:
    """(theirs, ours, our key -> their key): the same function in eval mode."""
    if weights is None:
        theirs = sf.build(width=0.375, depth=0.33, nc=80, T=1, seed=0)
        src = sf.save(theirs, tmp / "theirs.pt")
        import_spikeyolo(src, tmp / "ours.pt")
        ours = YOLO(tmp / "ours.pt").model.float()
        theirs = copy.deepcopy(sf.as_saved(theirs)).float()
    else:
        ours = YOLO(weights).model.float()
        d = ours.yaml
        depth, width, _ = d["scales"][d["scale"]]
        theirs = sf.build(width=width, depth=depth, nc=d["nc"], T=d["neuron"]["T"], seed=0)
        src = sf.save(theirs, tmp / "layout.pt")
    source = read_checkpoint(src)
    shape = infer_shape(source, ours.yaml)
    mapping = StateMapper(source, build_target(target_yaml(REPO / "cfg" / "spikeyolo.yaml", shape)))
    mapping.run()
    if weights is not None:  # our trained tensors in their layout; their downsampling biases are already in our BN
        state, mine = theirs.state_dict(), ours.state_dict()
        for key, their_key in mapping.sources.items():
            state[their_key] = mine[key].clone()
        for i in (1, 3, 5, 7):
            state[f"model.{i}.encode_conv.bias"].zero_()
        theirs.load_state_dict(state)
    theirs.model[-1].stride = torch.tensor([8.0, 16.0, 32.0])
    ours.args = get_cfg()  # the loss reads its gains (box, cls, dfl) from model.args
    return theirs, ours, mapping.sources


def their_outputs(model: torch.nn.Module, x: torch.Tensor) -> dict:
    """Their train-mode head output in our loss's layout: boxes (B, 64, A), scores (B, nc, A), per-level maps."""
    head, y = model.model[-1], []
    for m in model.model[:-1]:
        if m.f != -1:
            x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
        x = m(x)
        y.append(x if m.i in model.save else None)
    feats = [torch.cat((head.cv2[i](y[f]), head.cv3[i](y[f])), 2).mean(0) for i, f in enumerate(head.f)]
    flat = torch.cat([f.flatten(2) for f in feats], 2)
    return {"boxes": flat[:, : 4 * head.reg_max], "scores": flat[:, 4 * head.reg_max :], "feats": feats}


def compare(theirs: torch.nn.Module, ours: torch.nn.Module, sources: dict, batch: dict, train: bool) -> dict:
    """One forward (and, in train mode, backward) of each on the batch, from fresh copies; the differences."""
    theirs, ours = copy.deepcopy(theirs).train(train), copy.deepcopy(ours).train(train)
    for p in list(theirs.parameters()) + list(ours.parameters()):
        p.requires_grad_(True)
    x = batch["img"]
    feats: dict[str, dict[int, torch.Tensor]] = {"theirs": {}, "ours": {}}
    codes: dict[str, list[torch.Tensor]] = {"theirs": [], "ours": []}  # neurons before the head, execution order
    hooks = []
    for name, model, shift in (("theirs", theirs, 1), ("ours", ours, 0)):
        for i in HEAD_INPUTS:
            hooks.append(
                model.model[i + shift].register_forward_hook(lambda m, a, y, n=name, i=i: feats[n].__setitem__(i, y))
            )
        for m in model.model[:-1].modules():
            if type(m).__name__ == "mem_update" or isinstance(m, IBLIF):
                hooks.append(m.register_forward_hook(lambda m, a, y, n=name: codes[n].append(y.detach().flatten())))
    bn_in: dict[str, torch.Tensor] = {}
    hooks += [
        first(theirs.model[6]).conv1.body[1].bn.register_forward_hook(lambda m, a, y: bn_in.__setitem__("t", a[0])),
        first(ours.model[5]).mix1.synapse[2].register_forward_hook(lambda m, a, y: bn_in.__setitem__("o", a[0])),
    ]
    with torch.set_grad_enabled(train):
        if train:
            out_t, out_o = their_outputs(theirs, x), ours(x)
            y_t, y_o = (torch.cat([o["boxes"], o["scores"]], 1) for o in (out_t, out_o))
        else:
            y_t, y_o = theirs(x)[0], ours(x)[0]
    for h in hooks:
        h.remove()
    a, b = torch.cat(codes["ours"]), torch.cat(codes["theirs"])
    record = {
        "head_inputs_rel_l2": [rel(feats["ours"][i], feats["theirs"][i].flatten(0, 1)) for i in HEAD_INPUTS],
        "head_outputs_rel_l2": rel(y_o.detach(), y_t.detach()),
        "codes_differing_share": float((a != b).float().mean()),
    }
    if train:
        criterion = ours.init_criterion()
        loss_t, loss_o = criterion(out_t, batch)[0].sum(), criterion(out_o, batch)[0].sum()
        (loss_t + loss_o).backward()  # the two graphs share no parameters: each gets its own gradient
        named_t = dict(theirs.named_parameters())
        g_o = torch.cat([p.grad.flatten() for k, p in ours.named_parameters() if k in sources and p.grad is not None])
        g_t = torch.cat(
            [
                named_t[sources[k]].grad.flatten()
                for k, p in ours.named_parameters()
                if k in sources and p.grad is not None
            ]
        )
        t_in, o_in = bn_in["t"], bn_in["o"]  # their BN sees H x W, ours (H + 2) x (W + 2) with the padded ring
        record |= {
            "loss_theirs": float(loss_t),
            "loss_ours": float(loss_o),
            "loss_rel_diff": abs(float(loss_o) - float(loss_t)) / abs(float(loss_t)),
            "grad_cosine": float(torch.nn.functional.cosine_similarity(g_o, g_t, dim=0)),
            "grad_norm_ratio_ours_over_theirs": float(g_o.norm() / g_t.norm()),
            "first_repconv_batch_mean_rel_l2": rel(o_in.mean((0, 2, 3)).detach(), t_in.mean((0, 2, 3)).detach()),
            "first_repconv_border_share": 1 - t_in[0, 0].numel() / o_in[0, 0].numel(),
        }
    return record


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", type=Path, help="an I-LIF checkpoint of ours (trained); without it: random only")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/import/border-padding.json"))
    a = p.parse_args()
    torch.manual_seed(0)
    record: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("random", None, {"shapes-64px": shapes_batch(), "assets-320px": asset_batch(320)})]
        if a.weights:
            cases.insert(0, ("trained", a.weights, {"shapes-64px": shapes_batch(), "shapes-160px": shapes_batch(160)}))
        for name, weights, batches in cases:
            theirs, ours, sources = pair(weights, Path(tmp))
            record[name] = {"weights": str(weights) if weights else "SpikeYOLO-n, random (tests/fixtures)"}
            for label, batch in batches.items():
                record[name][label] = {
                    "train": compare(theirs, ours, sources, batch, True),
                    "eval": compare(theirs, ours, sources, batch, False),
                }
    record.update(run_record())
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
