"""One spike-driven run: the checkpoint read once, every network derived from it, one loop over a source.

:class:`Inference` reads ``weights`` once and derives from that one model

- the integer model (fused, as ``yolo val`` runs it): the reference of ``verify``,
- the spike-driven model (:func:`~spikeyolo_ibra.spike.runtime.to_spike_driven` of the integer model),
- the compared spike-driven model, with ``compare`` (:mod:`.compare`),

then :meth:`Inference.run` sends every :class:`~.sources.Frame` of a source through them once and yields a
:class:`FrameResult` per frame (detections, per-image figures, the SOP map); :meth:`Inference.summary` gives what the
run measured over all frames. Whoever writes a report consumes both; nothing here writes a file.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from ultralytics.engine.results import Results
from ultralytics.utils import TQDM
from ultralytics.utils.ops import scale_boxes

from ...device import no_tf32, resolve_device
from ...energy import COSTS, DEFAULT_MEMORY, MEMORY, CostTable, MemoryTable, footprint_bytes
from ...events.blocks import EventEncoder
from ..errors import SettingError, SpikeInferError
from ..measure import Monitor, neurobench, price, traffic
from ..runtime import ACCUMULATE, Equivalence, detect, run_pair, to_spike_driven
from .checkpoint import load_spiking_checkpoint, trained_sensor
from .compare import compared_model
from .sources import STRIDE, Frame, Source

__all__ = ("DTYPES", "FrameResult", "Inference", "RunSummary", "Settings")

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class Settings:
    """How a run computes and prices: letterbox size, device, precision, accumulation, cost tables, NMS, checks.

    ``exact`` accumulates the plane convs of a float32 model in float64; ``verify`` runs the integer model beside
    the spike-driven one on every frame; ``compare`` (a checkpoint, or neuron overrides such as ``"scale=1"``) adds
    a second spike-driven network on the same frames. ``energy`` names the operation costs (:data:`COSTS`),
    ``memory`` the memory costs per bit (:data:`MEMORY`).
    """

    imgsz: int = 640
    device: str | torch.device | None = None
    dtype: str = "float64"
    accumulate: str = "batched"
    exact: bool = False
    energy: str = "fp32"
    memory: str = DEFAULT_MEMORY
    conf: float = 0.25
    iou: float = 0.7
    verify: bool = False
    compare: str | None = None

    def __post_init__(self) -> None:
        """Check every setting; SettingError (one sentence) for the first that cannot be used."""
        for name, allowed in (("dtype", DTYPES), ("accumulate", ACCUMULATE), ("energy", COSTS), ("memory", MEMORY)):
            value = getattr(self, name)
            if value not in allowed:
                raise SettingError(name, value, f" is not one of {', '.join(allowed)}", example=next(iter(allowed)))
        if self.imgsz <= 0 or self.imgsz % STRIDE:
            size = max(STRIDE, -(-self.imgsz // STRIDE) * STRIDE)
            raise SettingError("imgsz", self.imgsz, f" is not a positive multiple of {STRIDE}", example=size)
        resolve_device(self.device)  # DeviceError (one sentence) for a device this machine cannot run on

    @property
    def torch_device(self) -> torch.device:
        """``device`` as a torch device on this machine (None: the first GPU if there is one, else the CPU)."""
        return resolve_device(self.device)

    @property
    def torch_dtype(self) -> torch.dtype:
        """``dtype`` as a torch dtype."""
        return DTYPES[self.dtype]

    @property
    def costs(self) -> CostTable:
        """The cost table ``energy`` names."""
        return COSTS[self.energy]

    @property
    def memory_costs(self) -> MemoryTable:
        """The memory table ``memory`` names."""
        return MEMORY[self.memory]


@dataclass
class FrameResult:
    """What one frame gave: detections (in the frame's own pixels), its figures, where its spikes went."""

    frame: Frame
    result: Results  # Ultralytics' detections, boxes in the coordinates of frame.image
    figures: dict[str, Any]  # sops, spikes, firing_rate, energy totals of this image (Monitor.image_figures)
    sop_map: np.ndarray  # SOPs per pixel of frame.image
    compare: dict[str, Any] | None = None  # the compared network's figures for the same frame


@dataclass
class RunSummary:
    """What a run measured over all its frames."""

    rows: list[dict]  # per layer, per-image means, with energy_mJ, memory_mJ, ann_memory_mJ
    energy: dict  # energy totals per image, compute-only and with memory
    neurobench: dict  # NeuroBench's metrics: activation sparsity, synaptic operations (per image), footprint
    levels: dict[str, list[int]]  # per spike-fed layer, the code histogram
    equivalence: Equivalence | None  # None without verify
    sample: torch.Tensor | None  # the first image's codes (C, H, W) at the first spike-fed layer
    sample_layer: str
    neuron: dict  # the neuron settings of the spike-driven model
    compare: dict | None = None  # the compared network: label, weights, neuron, rows, energy, neurobench, levels
    frames: int = 0


def _footprint(model: nn.Module) -> int:
    """NeuroBench's footprint of a spike-driven graph in float32, as checkpoints store it, whatever the run's dtype."""
    return footprint_bytes(copy.deepcopy(model).float())


def _input_channels(model: nn.Module, timesteps: int) -> int:
    """Channels of the network input: 2T for an event model (OFF, ON per bin), else those of the first conv."""
    if any(isinstance(m, EventEncoder) for m in model.modules()):
        return 2 * timesteps
    return next(m.in_channels for m in model.modules() if isinstance(m, nn.Conv2d))


def _neuron(model: nn.Module) -> dict:
    return next(m.neuron.config for m in model.modules() if hasattr(m, "neuron")).to_mapping()


class Inference:
    """A checkpoint read once and the networks of a run derived from it; :meth:`run` is the one loop.

    Example:
        >>> inference = Inference("best.pt", Settings(imgsz=320, verify=True))
        >>> for r in inference.run(open_source("images/", 320)):
        ...     print(r.frame.path, len(r.result.boxes), r.figures["snn_mJ"])
        >>> inference.summary().equivalence.passed

    """

    def __init__(self, weights: str | Path, settings: Settings | None = None) -> None:
        """Read ``weights`` and derive the integer, spike-driven and compared models; SpikeInferError if unusable."""
        self.settings = s = settings or Settings()
        self.device = s.torch_device
        self.weights = str(weights)
        model = load_spiking_checkpoint(weights, self.device)
        self.sensor = trained_sensor(model)  # ((H, W), data YAML) of an event model's training data, if known
        compared = compared_model(s.compare, model, weights, self.device) if s.compare else None
        accumulator = torch.float64 if s.exact else None
        self.integer = model.fuse(verbose=False).to(s.torch_dtype)  # fused in place: the model read is not kept
        self.spike = to_spike_driven(self.integer, s.accumulate, accumulator)  # dense convs folded in this dtype
        self.compared = compared
        if compared is not None:
            compared.model = to_spike_driven(compared.model.to(s.torch_dtype), s.accumulate, accumulator)
        names = getattr(self.integer, "names", None)
        self.names = names if isinstance(names, dict) else {i: str(i) for i in range(self.integer.nc)}
        self.timesteps = _neuron(self.integer)["T"]
        self.channels = _input_channels(self.integer, self.timesteps)
        self._monitors: tuple[Monitor, Monitor | None] | None = None
        self._equivalence: Equivalence | None = None
        self._frames = 0

    def describe(self, source: str | Path) -> dict[str, Any]:
        """The run in a report's words: checkpoint, ``source``, letterbox size, device, precision, accumulation."""
        s = self.settings
        return {
            "weights": self.weights,
            "source": str(source),
            "imgsz": s.imgsz,
            "device": str(self.device),
            "dtype": s.dtype,
            "accumulate": s.accumulate,
            "exact_accumulation": s.exact,
        }

    @torch.no_grad()
    def run(self, source: Source) -> Iterator[FrameResult]:
        """Every frame of ``source`` through the networks once (with Ultralytics' progress bar), as it comes."""
        s = self.settings
        bind = getattr(source, "bind", None)
        if bind is not None:  # a source that depends on the model: an event recording is cut into its T bins
            bind(self.timesteps)
        self._equivalence = Equivalence(s.dtype) if s.verify else None
        self._frames = 0
        monitor = Monitor(self.spike, maps=True)
        other = Monitor(self.compared.model, maps=True) if self.compared else None
        self._monitors = (monitor, other)
        frames = TQDM(
            source.read(s.torch_dtype, self.device), total=source.frames, desc="spike inference", unit="frame"
        )
        try:
            with no_tf32():  # float32 on CUDA: IEEE, not TF32 (restored)
                for frame in frames:
                    yield self._frame(frame, monitor, other)
                    self._frames += 1
        finally:
            frames.close()
            monitor.close()
            if other is not None:
                other.close()

    def _check_input(self, frame: Frame) -> None:
        """SpikeInferError (one sentence) unless the frame fits the model: its channels (an event model's T bins).

        An event sample must also have the sensor size of the model's training data, where the checkpoint names it.
        """
        c = frame.x.shape[1]
        if c == self.channels:
            if frame.events is not None and self.sensor and frame.events.shape[-2:] != self.sensor[0]:
                (h, w), data = self.sensor
                got_h, got_w = frame.events.shape[-2:]
                raise SpikeInferError(
                    f"{frame.path} is a {got_w} x {got_h} event sample but {Path(self.weights).name} was trained on "
                    f"a {w} x {h} sensor ({data}): pass samples of that sensor, or a checkpoint trained on this one."
                )
            return
        if any(isinstance(m, EventEncoder) for m in self.integer.modules()):
            given = f"an event sample of {c // 2} time bins" if frame.events is not None else f"{c}-channel input"
            raise SpikeInferError(
                f"{frame.path} is {given} but {Path(self.weights).name} reads event samples of T = {self.timesteps} "
                f"bins ({self.channels} channels): convert the events with --timesteps {self.timesteps}, or pass a "
                f"checkpoint trained with T = {c // 2}."
            )
        given = "an event sample" if frame.events is not None else f"{c}-channel input"
        raise SpikeInferError(
            f"{frame.path} is {given} but {Path(self.weights).name} reads {self.channels}-channel images: pass "
            "images, or the checkpoint of an event model (cfg/ibra-spikeyolo-events.yaml)."
        )

    def _frame(self, frame: Frame, monitor: Monitor, other: Monitor | None) -> FrameResult:
        self._check_input(frame)
        s, x = self.settings, frame.x
        if self._equivalence is not None:
            _, det = run_pair(self.integer, self.spike, x, self._equivalence, s.conf, s.iou)
        else:
            det = detect(self.spike(x)[0], s.conf, s.iou)
        det = det[0].clone()
        det[:, :4] = scale_boxes(x.shape[2:], det[:, :4], frame.image.shape)
        result = Results(frame.image, frame.path, self.names, boxes=det.float().cpu())
        figures, sop_map = monitor.image_figures(s.costs, frame.image.shape[:2], s.memory_costs)
        compared = None
        if other is not None:
            self.compared.model(x)
            compared, _ = other.image_figures(s.costs, frame.image.shape[:2], s.memory_costs)
        return FrameResult(frame, result, figures, sop_map, compared)

    def summary(self) -> RunSummary:
        """What the last :meth:`run` measured over its frames (per-image means, histograms, equivalence)."""
        if self._monitors is None:
            raise RuntimeError("summary() needs a run: iterate over Inference.run(source) first.")
        monitor, other = self._monitors
        s = self.settings
        rows = monitor.rows()
        compare = None
        if other is not None:
            other_rows = other.rows()
            compare = {
                "label": self.compared.label,
                "weights": self.compared.weights,
                "neuron": _neuron(self.compared.model),
                "energy": price(other_rows, s.costs, s.memory_costs),
                "neurobench": {**neurobench(traffic(other_rows)), "footprint_bytes": _footprint(self.compared.model)},
                "rows": other_rows,
                "levels": other.levels(),
            }
        return RunSummary(
            rows=rows,
            energy=price(rows, s.costs, s.memory_costs),
            neurobench={**neurobench(traffic(rows)), "footprint_bytes": _footprint(self.spike)},
            levels=monitor.levels(),
            equivalence=self._equivalence,
            sample=monitor.sample,
            sample_layer=monitor.sample_layer,
            neuron=_neuron(self.spike),
            compare=compare,
            frames=self._frames,
        )
