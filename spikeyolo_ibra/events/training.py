"""Stock ``yolo train`` / ``yolo val`` on event data sets: what changes for a data YAML with an ``events:`` mapping.

Keyed on the data (a YAML with ``events:``) for training and validation, on the model (one holding
``EventEncoder``) for prediction: stock data sets and models are built, augmented and scored exactly as before. For
event data (samples as 2T-channel TIFFs, :mod:`.sample`):

- the dataset is :class:`~.dataset.EventDataset`: Ultralytics' ``YOLODataset`` with no HSV or colour
  augmentation, and every border that mosaic, the affine warp or letterboxing adds set to 0, "no event"; flips move
  frames and boxes together and the channel order (time, polarity) is never changed;
- before training, the model's neuron ``T`` must equal ``events.timesteps`` (one sentence otherwise);
- ``save_json=True`` validation is scored by :mod:`spikeyolo_ibra.coco`, as for images: the converter's COCO file
  uses the sample file stems (recording name and label time) as image ids, as Ultralytics' predictions do;
- ``predict`` with an event model letterboxes with 0 too.
"""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from .errors import EventDataError

__all__ = ("check_events_data", "check_timesteps", "is_event_data", "register")


def is_event_data(data: dict | None) -> bool:
    """True for a data set made of event samples (its YAML has an ``events:`` mapping)."""
    return isinstance(data, dict) and isinstance(data.get("events"), dict)


def check_events_data(data: dict) -> int:
    """Check an event data YAML's ``events:`` mapping against its ``channels``; return T."""
    events, name = data["events"], Path(str(data.get("yaml_file", "the data YAML"))).name
    timesteps = events.get("timesteps")
    if not (isinstance(timesteps, int) and timesteps >= 1):
        raise EventDataError(f"{name} gives events.timesteps {timesteps!r}: give the number of time bins, 1 or more.")
    if data.get("channels") != 2 * timesteps:
        raise EventDataError(
            f"{name} gives channels {data.get('channels')} for events.timesteps {timesteps}: "
            f"set channels: {2 * timesteps} (ON and OFF per bin)."
        )
    return timesteps


def check_timesteps(model: Any, data: dict) -> None:
    """One sentence unless the model's neuron T equals the data's time bins (models without ``neuron:`` pass)."""
    timesteps = check_events_data(data)
    model = getattr(model, "module", model)  # DDP / compiled wrappers
    neuron = (getattr(model, "yaml", None) or {}).get("neuron")
    if not isinstance(neuron, dict):
        return
    model_t = neuron.get("T", 1)
    if model_t != timesteps:
        name = Path(str(data.get("yaml_file", "the data YAML"))).name
        raise EventDataError(
            f"the model has neuron T = {model_t} but {name} has events.timesteps {timesteps}: set T: {timesteps} "
            f"under neuron: in the model YAML, or convert the events again with --timesteps {model_t}."
        )


def _wrap_build_dataset(stock: Callable[..., Any], check_model: bool) -> Callable[..., Any]:
    def build_dataset(self: Any, img_path: str, mode: str = "train", batch: int | None = None) -> Any:
        """Ultralytics' build_dataset; for event data the dataset is an :class:`EventDataset`."""
        if not is_event_data(self.data):
            return stock(self, img_path, mode, batch)
        check_events_data(self.data)
        if check_model:
            check_timesteps(self.model, self.data)
        from ultralytics.data import build

        from .dataset import EventDataset

        stock_class = build.YOLODataset
        build.YOLODataset = EventDataset  # build_yolo_dataset looks the class up here at each call
        try:
            return stock(self, img_path, mode, batch)
        finally:
            build.YOLODataset = stock_class

    build_dataset.spikeyolo_events = True
    return build_dataset


def is_event_model(model: Any) -> bool:
    """True for a model (or Ultralytics' AutoBackend around one) whose layer 0 reads event frames."""
    from .blocks import EventEncoder

    inner = getattr(model, "model", None)  # AutoBackend keeps a PyTorch model in its backend, reached as .model
    return any(
        isinstance(m, torch.nn.Module) and any(isinstance(x, EventEncoder) for x in m.modules()) for m in (model, inner)
    )


def on_predict_start(predictor: Any) -> None:
    """``on_predict_start``: an event model's letterbox pads with 0 ("no event"), not 114; others are untouched.

    The stock ``pre_transform`` runs on each sample with a validity plane appended; :class:`~.dataset.EventBorders`
    then takes the padding's share off the events and drops the plane, as in training and validation.
    """
    if not is_event_model(predictor.model) or getattr(predictor.pre_transform, "spikeyolo_events", False):
        return
    from .dataset import VALID, EventBorders

    stock, borders = predictor.pre_transform, EventBorders()

    def pre_transform(im: list[np.ndarray]) -> list[np.ndarray]:
        planes = [np.concatenate([x, np.full((*x.shape[:2], 1), VALID, x.dtype)], axis=2) for x in im]
        return [borders({"img": x})["img"] for x in stock(planes)]

    pre_transform.spikeyolo_events = True
    predictor.pre_transform = pre_transform


class _AfterImport:
    """A meta-path finder that runs ``action(module)`` right after each named module has loaded, then leaves.

    The plugin registers while Ultralytics is still importing itself (right after ``ultralytics.nn.tasks``), before
    its trainer and validator modules exist; importing them then would be circular.
    """

    def __init__(self, actions: dict[str, Callable[[ModuleType], None]]) -> None:
        self.actions = actions

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:  # noqa: D102
        action = self.actions.pop(name, None)
        if action is None:
            return None
        if not self.actions:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_act(module: ModuleType) -> None:
            exec_module(module)
            action(module)

        spec.loader.exec_module = exec_then_act
        return spec


def _wrap_class(attr: str, check_model: bool) -> Callable[[ModuleType], None]:
    def wrap(module: ModuleType) -> None:
        cls = getattr(module, attr)
        if not getattr(cls.build_dataset, "spikeyolo_events", False):
            cls.build_dataset = _wrap_build_dataset(cls.build_dataset, check_model)

    return wrap


#: The detection trainer and validator, by module: their ``build_dataset`` learns event data.
WRAPPED = {
    "ultralytics.models.yolo.detect.train": _wrap_class("DetectionTrainer", check_model=True),
    "ultralytics.models.yolo.detect.val": _wrap_class("DetectionValidator", check_model=False),
}


def register() -> None:
    """Teach Ultralytics' detection trainer and validator event data sets, and score them; idempotent.

    The ``EventEncoder`` block is registered by importing :mod:`.blocks`; the trainer and validator are wrapped now
    if loaded, else the moment they load.
    """
    from ultralytics.utils.callbacks.base import default_callbacks

    from .blocks import EventEncoder

    torch.serialization.add_safe_globals([EventEncoder])
    pending = {}
    for name, wrap in WRAPPED.items():
        if name in sys.modules:
            wrap(sys.modules[name])
        else:
            pending[name] = wrap
    if pending and not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(pending))
    if on_predict_start not in default_callbacks["on_predict_start"]:
        default_callbacks["on_predict_start"].append(on_predict_start)
