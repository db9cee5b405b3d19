"""The spiking head: a seed builds the same head in any process, the mean over logical timesteps, bias priors."""

import math
from pathlib import Path

import torch
from ultralytics.nn.tasks import DetectionModel, yaml_model_load

from spikeyolo_ibra.head import SpikeDetect
from spikeyolo_ibra.neuron import NeuronConfig, neuron_context, set_timesteps

TINY = Path(__file__).resolve().parent / "fixtures" / "tiny-spikeyolo.yaml"


def test_head_init_does_not_depend_on_what_was_parsed_before():
    """Ultralytics' parser sets Detect.legacy process-wide; a seed must still build the same spiking head."""

    def head_weights() -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = DetectionModel(yaml_model_load(TINY), verbose=False)
        return [p.detach().clone() for p in model.model[-1].parameters()]

    first = head_weights()
    DetectionModel(yaml_model_load("yolov8n.yaml"), verbose=False)  # sets Detect.legacy = True
    assert all(torch.equal(a, b) for a, b in zip(first, head_weights(), strict=True))


def test_outputs_are_the_mean_over_logical_timesteps():
    with neuron_context(NeuronConfig(T=1, beta=0.0)):  # no leak: a repeated input gives the same codes each step
        head = SpikeDetect(nc=3, reg_max=4, ch=(8, 16))
    head.stride = torch.tensor([8.0, 16.0])
    head.train()
    x1 = [torch.rand(2, 8, 4, 4), torch.rand(2, 16, 2, 2)]
    one = head([t.clone() for t in x1])
    set_timesteps(head, 3)
    three = head([t.repeat(3, 1, 1, 1) for t in x1])  # the same frame at every step: the mean equals one step
    for key in ("boxes", "scores"):
        torch.testing.assert_close(three[key], one[key])
    assert three["feats"][0].shape == x1[0].shape


def test_bias_priors_land_on_the_output_convs():
    with neuron_context(NeuronConfig()):
        head = SpikeDetect(nc=5, reg_max=4, ch=(8,))
    head.stride = torch.tensor([8.0])
    head.bias_init()
    assert torch.all(head.cv2[0][-1].synapse.bias == 2.0)
    assert torch.allclose(head.cv3[0][-1].synapse.bias, torch.tensor(math.log(5 / 5 / (640 / 8) ** 2)))
