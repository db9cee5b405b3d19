"""SpikeYOLO building blocks with (c1, c2, ...) constructors.

Every synapse that receives spikes sits in a :class:`SpikingSynapse`: a neuron followed by an affine map (a conv with
its BN, or a re-parameterisable chain of convs). That pairing is the unit spike inference unrolls. Residual sums,
pooling, upsampling and concatenation act on membrane values (conv outputs), never on spikes.

Tensors are (T * B, C, H, W), time outermost: the first layer repeats its output T times, the head averages it away.
T is read from the neuron settings (:class:`~spikeyolo_ibra.neuron.NeuronConfig`) that every neuron, the encoding
layer and the head share; :func:`~spikeyolo_ibra.neuron.set_timesteps` changes it for a whole model.

Every class is declared once with :func:`~spikeyolo_ibra.registry.register`: its YAML role (``channels``: the YAML
gives output channels first; ``part``: used inside blocks), its place in ``__all__`` and in the safe-load list.
"""

from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.modules import Conv
from ultralytics.nn.modules.conv import autopad

from .neuron import NeuronConfig, Rectifier, SharedTimesteps, active_config, make_neuron
from .registry import exported, register


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BN as y = s * x + t per channel, in float64."""
    s = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    return s, bn.bias.double() - bn.running_mean.double() * s


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new conv (with bias) equal to ``bn(conv(x))`` in eval mode: W <- s W, b <- s b + t, composed in float64.

    One rule for every BN our synapses fold, whatever the dtype and device; the inputs are not changed.
    """
    s, t = _bn_affine(bn)
    w = conv.weight.double() * s.view(-1, 1, 1, 1)
    b = t if conv.bias is None else conv.bias.double() * s + t
    folded = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        bias=True,
        padding_mode=conv.padding_mode,
    ).to(conv.weight.device, conv.weight.dtype)
    folded.weight.copy_(w)
    folded.bias.copy_(b)
    return folded.requires_grad_(conv.weight.requires_grad)


def _compose(layers: list[nn.Module], c1: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Kernel K (c_out, c1, h, w) and bias b of a chain of BNs and 1x1 / depthwise convs (biases allowed), in float64.

    Starting from the identity: a 1x1 conv W (bias c) gives K <- W K, b <- W b + c; a BN (s, t) gives K <- s K,
    b <- s b + t; a depthwise kernel D gives K[o] <- K[o] (full convolution) D[o], b <- b * sum(D[o]) + c. Zero padding
    (the chain's, or a conv's own) is not composed: the result is applied with padding h // 2.
    """
    f64 = {"dtype": torch.float64, "device": like.device}  # compose where the weights live (CUDA, meta, ...)
    kernel = torch.eye(c1, **f64).view(c1, c1, 1, 1)
    bias = torch.zeros(c1, **f64)
    for layer in layers:
        if isinstance(layer, nn.ZeroPad2d):
            continue
        if isinstance(layer, nn.BatchNorm2d):
            s, t = _bn_affine(layer)
            kernel, bias = kernel * s.view(-1, 1, 1, 1), bias * s + t
            continue
        if layer.groups == 1:  # 1x1 conv
            w = layer.weight.double()[:, :, 0, 0]
            kernel, bias = torch.einsum("om,mihw->oihw", w, kernel), w @ bias
        else:  # depthwise conv: full 2-D convolution of each output channel's kernel with its depthwise kernel
            d = layer.weight.double()[:, 0]
            kh, kw = d.shape[-2:]
            out = kernel.new_zeros(*kernel.shape[:2], kernel.shape[2] + kh - 1, kernel.shape[3] + kw - 1)
            for u in range(kh):
                for v in range(kw):
                    out[:, :, u : u + kernel.shape[2], v : v + kernel.shape[3]] += kernel * d[:, u, v].view(-1, 1, 1, 1)
            kernel, bias = out, bias * d.sum((1, 2))
        if layer.bias is not None:
            bias = bias + layer.bias.double()
    return kernel, bias


def _conv(weight: torch.Tensor, bias: torch.Tensor | None, groups: int, like: torch.Tensor) -> nn.Conv2d:
    """An ``nn.Conv2d`` holding ``weight`` (and ``bias``), stride 1, padding kernel // 2, in ``like``'s dtype/device."""
    c_out, c_in_per_group, kh, _ = weight.shape
    conv = nn.Conv2d(c_in_per_group * groups, c_out, kh, 1, kh // 2, groups=groups, bias=bias is not None)
    conv = conv.to(like.device, like.dtype)
    conv.weight.copy_(weight)
    if bias is not None:
        conv.bias.copy_(bias)
    return conv


@register("part")
class LinearChain(nn.Sequential):
    """A translation-invariant affine chain (zero pad, 1x1 / depthwise convs, BNs): the training form of a synapse.

    In eval mode it equals one dense k x k conv (:meth:`dense`, what spike inference unrolls) and a cheaper factored
    chain (:meth:`factored`, what ``fuse()`` leaves for integer-mode inference by default).
    """

    def __init__(self, c1: int, c2: int, k: int, *layers: nn.Module) -> None:
        """Chain ``layers`` after zero padding k // 2, mapping c1 to c2 channels with a k x k footprint."""
        super().__init__(nn.ZeroPad2d(k // 2), *layers)
        self.c1, self.c2, self.k = c1, c2, k

    @torch.no_grad()
    def dense(self) -> nn.Conv2d:
        """One Conv2d (k x k, padding k // 2, with bias) equal to this chain in eval mode, composed in float64."""
        ref = next(self.parameters())
        kernel, bias = _compose(list(self), self.c1, ref)
        return _conv(kernel, bias, 1, ref)

    @torch.no_grad()
    def factored(self) -> FactoredChain:
        """The same chain with every BN folded into a neighbouring conv and one bias, equal in eval mode.

        The chain is affine: y = L(x) + c with L linear (its convs and BN scales) and c constant. Each BN scale folds
        into the conv before it (output channels) or, leading the chain, into the conv after it (input channels); the
        constant c (BN shifts, through every later conv: W c for a 1x1 conv, c * sum(D) for a depthwise one) becomes
        the last conv's bias. L maps zeros to zeros, so the chain's zero padding moves into its depthwise conv (padding
        k // 2) and the 1x1 convs run on the unpadded map: exact at the borders too.
        """
        ref = next(self.parameters())
        f64 = {"dtype": torch.float64, "device": ref.device}
        weights: list[tuple[torch.Tensor, int]] = []  # (weight, groups) of each conv, scales folded in
        constant, pending = torch.zeros(self.c1, **f64), None  # pending: a leading BN's scale, for the next conv
        for layer in list(self):
            if isinstance(layer, nn.ZeroPad2d):
                continue
            if isinstance(layer, nn.BatchNorm2d):
                s, t = _bn_affine(layer)
                if weights:
                    weights[-1][0].mul_(s.view(-1, 1, 1, 1))
                else:
                    pending = s if pending is None else pending * s
                constant = constant * s + t
                continue
            w = layer.weight.double()
            depthwise = layer.groups != 1
            constant = constant * w.sum((1, 2, 3)) if depthwise else w[:, :, 0, 0] @ constant
            if layer.bias is not None:
                constant = constant + layer.bias.double()
            if pending is not None:
                w = w * pending.view(-1, 1, 1, 1) if depthwise else w * pending.view(1, -1, 1, 1)
                pending = None
            weights.append((w.clone(), layer.groups))
        convs = [_conv(w, None, g, ref) for w, g in weights[:-1]]
        convs.append(_conv(weights[-1][0], constant, weights[-1][1], ref))
        return FactoredChain(self.c1, self.c2, self.k, *convs)


@register("part")
class FactoredChain(nn.Sequential):
    """A fused chain for integer-mode inference: 1x1 / depthwise convs, padding on the depthwise one, one bias."""

    def __init__(self, c1: int, c2: int, k: int, *convs: nn.Conv2d) -> None:
        """The convs of :meth:`LinearChain.factored`, mapping c1 to c2 channels with a k x k footprint."""
        super().__init__(*convs)
        self.c1, self.c2, self.k = c1, c2, k

    @torch.no_grad()
    def dense(self) -> nn.Conv2d:
        """The one Conv2d equal to this chain (what spike inference unrolls)."""
        ref = self[0].weight
        kernel, bias = _compose(list(self), self.c1, ref)
        return _conv(kernel, bias, 1, ref)


@register("part")
class RepConv3x3(LinearChain):
    """SpikeYOLO's re-parameterisable mixer: 1x1 (c1->c1) -> BN -> depthwise 3x3 -> 1x1 (c1->c2) -> BN -> BN.

    Cheap to train (about c1 * (c1 + c2) weights) and equal to a single dense 3x3 conv at inference.
    """

    def __init__(self, c1: int, c2: int) -> None:
        """Map c1 to c2 channels with a 3x3 footprint."""
        super().__init__(
            c1,
            c2,
            3,
            nn.Conv2d(c1, c1, 1, bias=False),
            nn.BatchNorm2d(c1),
            nn.Conv2d(c1, c1, 3, groups=c1, bias=False),
            nn.Conv2d(c1, c2, 1, bias=False),
            nn.BatchNorm2d(c2),
            nn.BatchNorm2d(c2),
        )


@register("part")
class SepRepConv(LinearChain):
    """The last conv of the separable block: BN -> 1x1 (c1->c2) -> depthwise k x k -> BN."""

    def __init__(self, c1: int, c2: int, k: int = 3) -> None:
        """Map c1 to c2 channels with a k x k footprint."""
        super().__init__(
            c1,
            c2,
            k,
            nn.BatchNorm2d(c1),
            nn.Conv2d(c1, c2, 1, bias=False),
            nn.Conv2d(c2, c2, k, groups=c2, bias=False),
            nn.BatchNorm2d(c2),
        )


@register("part")
class SpikingSynapse(nn.Module):
    """A neuron and the synapse it drives: y = synapse(neuron(x)). The unit that spike inference unrolls."""

    def __init__(self, synapse: nn.Module, *, neuron: NeuronConfig | None = None) -> None:
        """Place a neuron before ``synapse``: settings ``neuron``, else those of the model YAML being built."""
        super().__init__()
        self.neuron = make_neuron(neuron)
        self.synapse = synapse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Fire, then integrate through the synapse."""
        return self.synapse(self.neuron(x))

    def __setstate__(self, state: dict) -> None:
        """Unpickle; an ANN twin saved before :class:`Rectifier` existed holds ``nn.ReLU``: it loads as Rectifier."""
        super().__setstate__(state)
        if type(self._modules.get("neuron")) is nn.ReLU:  # Ultralytics' loader would make it in-place
            self._modules["neuron"] = Rectifier()

    def fuse_synapse(self, chains: str = "factored") -> None:
        """Fuse a re-parameterisable chain into ``chains`` form (``Conv`` + BN is Ultralytics' job)."""
        if chains not in ("factored", "dense"):
            raise ValueError(f"chains={chains!r} is invalid: use factored or dense.")
        if isinstance(self.synapse, LinearChain):
            self.synapse = self.synapse.dense() if chains == "dense" else self.synapse.factored()
        elif isinstance(self.synapse, FactoredChain) and chains == "dense":
            self.synapse = self.synapse.dense()


@register("channels")
class SpikeConv(SpikingSynapse):
    """Standard spiking conv: neuron -> conv -> BN (``bn=False``: neuron -> conv with bias, for the head outputs)."""

    def __init__(
        self,
        c1: int,
        c2: int,
        k: int = 1,
        s: int = 1,
        p: int | None = None,
        g: int = 1,
        d: int = 1,
        bn: bool = True,
        *,
        neuron: NeuronConfig | None = None,
    ) -> None:
        """Arguments follow Ultralytics' ``Conv``: channels in and out, kernel, stride, padding, groups, dilation."""
        if bn:
            synapse = Conv(c1, c2, k, s, p, g, d, act=False)
        else:
            synapse = nn.Conv2d(c1, c2, k, s, autopad(k, p, d), dilation=d, groups=g, bias=True)
        super().__init__(synapse, neuron=neuron)

    @property
    def conv(self) -> nn.Conv2d:
        """The convolution itself (Ultralytics' checkpoint transfer reads ``.conv.in_channels`` of head layers)."""
        return self.synapse.conv if isinstance(self.synapse, Conv) else self.synapse

    @property
    def in_channels(self) -> int:
        """Input channels, as on ``nn.Conv2d``."""
        return self.conv.in_channels


@register("part")
class SpikeRepConv(SpikingSynapse):
    """Neuron -> :class:`RepConv3x3`."""

    def __init__(self, c1: int, c2: int, *, neuron: NeuronConfig | None = None) -> None:
        """Map c1 to c2 channels."""
        super().__init__(RepConv3x3(c1, c2), neuron=neuron)


@register("channels")
class SpikeDownsample(SharedTimesteps, nn.Module):
    """Downsampling conv -> BN. The first layer takes the real-valued image (no neuron) and repeats it T times."""

    def __init__(
        self,
        c1: int,
        c2: int,
        k: int = 3,
        s: int = 2,
        p: int | None = None,
        first: bool = False,
        *,
        neuron: NeuronConfig | None = None,
    ) -> None:
        """Channels in and out, kernel, stride, padding; ``first`` marks the image-encoding layer."""
        super().__init__()
        self.first = first
        self.config = neuron if neuron is not None else active_config()  # the neuron settings, shared: T lives there
        self.conv = Conv(c1, c2, k, s, p, act=False) if first else SpikeConv(c1, c2, k, s, p, neuron=neuron)

    @property
    def encodes(self) -> bool:
        """True for the image-encoding layer: real-valued input, no neuron, its output the first membrane."""
        return self.first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode (first layer: the same frame at every logical timestep) or downsample spikes."""
        y = self.conv(x)
        return y.repeat(self.T, 1, 1, 1) if self.first and self.T > 1 else y


@register("part")
class SpikeSepConv(nn.Module):
    """Inverted separable conv on spikes: 1x1 expand -> depthwise k x k -> :class:`SepRepConv`, each after a neuron."""

    def __init__(self, c: int, expansion: int = 2, k: int = 7, *, neuron: NeuronConfig | None = None) -> None:
        """Channels, expansion ratio of the hidden width, depthwise kernel."""
        super().__init__()
        h = int(expansion * c)
        self.pw1 = SpikeConv(c, h, 1, neuron=neuron)
        self.dw = SpikeConv(h, h, k, g=h, neuron=neuron)
        self.pw2 = SpikingSynapse(SepRepConv(h, c), neuron=neuron)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Three spiking convs in a row."""
        return self.pw2(self.dw(self.pw1(x)))


def _same_width(name: str, c1: int, c2: int) -> None:
    if c1 != c2:
        raise ValueError(f"{name} keeps its width, but the YAML gives {c2} output channels after {c1}: set them equal.")


class _SepMixBlock(nn.Module):
    """SpikeYOLO's block: x + sepconv(x), then x + mix2(mix1(x)) with mix1: c -> ratio * c, mix2: back to c.

    The two blocks below differ only in their channel mixer (:meth:`mixer`); their state-dict keys are ``sep``,
    ``mix1``, ``mix2`` either way.
    """

    def __init__(self, c1: int, c2: int, ratio: float = 4, k: int = 7, *, neuron: NeuronConfig | None = None) -> None:
        """Channels (c1 == c2), hidden-width ratio of the channel mixer, depthwise kernel of the separable conv."""
        super().__init__()
        _same_width(type(self).__name__, c1, c2)
        h = int(c1 * ratio)
        self.sep = SpikeSepConv(c1, 2, k, neuron=neuron)
        self.mix1 = self.mixer(c1, h, neuron)
        self.mix2 = self.mixer(h, c1, neuron)

    @staticmethod
    def mixer(c1: int, c2: int, neuron: NeuronConfig | None) -> SpikingSynapse:
        """One spiking layer of the channel mixer, c1 -> c2 channels."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Two residual sub-blocks on membrane values."""
        x = x + self.sep(x)
        return x + self.mix2(self.mix1(x))


@register("channels")
class SpikeConvBlock(_SepMixBlock):
    """SpikeYOLO's conv ("meta") block: x + sepconv(x), then x + RepConv(ratio * c -> c)(RepConv(c -> ratio * c)(x))."""

    @staticmethod
    def mixer(c1: int, c2: int, neuron: NeuronConfig | None) -> SpikingSynapse:
        """A re-parameterisable 3x3 (:class:`SpikeRepConv`)."""
        return SpikeRepConv(c1, c2, neuron=neuron)


@register("channels")
class SpikeAllConvBlock(_SepMixBlock):
    """SpikeYOLO's all-conv block: x + sepconv(x), then x + conv3x3(ratio * c -> c)(conv3x3(c -> ratio * c)(x))."""

    @staticmethod
    def mixer(c1: int, c2: int, neuron: NeuronConfig | None) -> SpikingSynapse:
        """A plain spiking 3x3 conv."""
        return SpikeConv(c1, c2, 3, neuron=neuron)


@register("channels")
class SpikeSPPF(nn.Module):
    """Spiking SPPF: spiking 1x1 to c1 / 2, three k x k max-pools on membranes, concat, spiking 1x1 to c2."""

    def __init__(self, c1: int, c2: int, k: int = 5, *, neuron: NeuronConfig | None = None) -> None:
        """Channels in and out, pooling kernel."""
        super().__init__()
        h = c1 // 2
        self.cv1 = SpikeConv(c1, h, 1, neuron=neuron)
        self.cv2 = SpikeConv(4 * h, c2, 1, neuron=neuron)
        self.pool = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool the membrane map three times and mix the pyramid."""
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(self.pool(y[-1]))
        return self.cv2(torch.cat(y, 1))


__all__ = exported(__name__)
