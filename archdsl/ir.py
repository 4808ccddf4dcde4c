"""The resolved IR: what a spec means, with every default filled in and every shape known.

The IR is a graph: each `Layer` names the layers it reads (`inputs`, by index; 0 is
the model input). A plain stack is the simplest graph, each layer reading the one
before it; residual and parallel blocks add `add`/`concat` layers with several inputs.

Back-ends read only this module's types, never the written spec.
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

Pair = tuple[int, int]
Shape = tuple[int, ...]  # (h, w, c) for feature maps, (c,) for flat tensors, as Keras has them

Padding = Literal["same", "valid", "explicit"]   # explicit: `pad` gives the zeros of each side
ACTIVATIONS = ("relu", "relu6", "swish", "gelu", "sigmoid", "tanh", "elu", "softmax", "linear")

class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Where(Frozen):
    """Where a layer was written: file, line and column of its line."""
    file: str
    line: int
    column: int
    end_column: Optional[int] = None    # a merge: the end of its `residual`/`parallel` keyword, to underline


class PostOp(Frozen):
    """A step applied after the layer's main op, in written order (`drop .05 bn relu`)."""
    kind: Literal["drop", "bn", "act"]
    rate: Optional[float] = None        # drop
    activation: Optional[str] = None    # act
    scale: bool = True                  # bn: a gamma (`noscale`: none, as TF-slim's Inception)
    center: bool = True                 # bn: a beta (`nocenter`: none)


class Layer(Frozen):
    index: int                          # 1-based; 0 is the model input
    name: str                           # Keras layer name, e.g. l03_sep64
    op: str
    inputs: tuple[int, ...]
    text: str                           # the layer as written, canonical spacing
    where: Where
    block: Optional[str] = None         # the repeat / named block it was expanded from
    kernel: Optional[Pair] = None
    stride: Optional[Pair] = None
    dilation: Optional[Pair] = None
    padding: Optional[Padding] = None
    pad: Optional[tuple[int, int, int, int]] = None  # explicit padding: top, bottom, left, right
    filters: Optional[int] = None       # conv/sep output channels, dense units
    depth_multiplier: Optional[int] = None
    groups: int = 1                     # conv: a grouped convolution's groups
    factor: Optional[Pair] = None       # upsample: rows and columns become factor times as many
    interpolation: Optional[Literal["nearest", "bilinear"]] = None
    use_bias: bool = False
    whiten: bool = False                # conv: kernel (and bias) frozen, set from the training images' patches
    rate: Optional[float] = None        # a `dropout` layer's rate
    activation: Optional[str] = None    # an activation layer's function (`relu`, `softmax`)
    scale: bool = True                  # a `bn` layer's gamma (`bn noscale`: none)
    center: bool = True                 # a `bn` layer's beta (`bn nocenter`: none)
    post: tuple[PostOp, ...] = ()
    input_shape: Shape
    output_shape: Shape

    @property
    def spatial(self) -> bool:
        return len(self.output_shape) == 3


class Assertion(Frozen):
    """`assert params <= 80k` or `assert ops in [sep, maxpool]`."""
    metric: str
    comparison: str                     # <=, <, >=, >, ==, !=, in, not in
    value: float | int | tuple[str, ...]
    text: str
    where: Where


class Allow(Frozen):
    """`allow W301 W302` (the whole file), or `# allow W301` after a layer (the layers written on that line)."""
    codes: tuple[str, ...]
    line: int
    whole_file: bool = True
    columns: tuple[int, ...] = ()       # where each code is written (1-based), for a message about it


class Augment(Frozen):
    flip: bool = False                  # horizontal flip
    flip_mode: Literal["random", "alternate"] = "random"  # alternate: each image mirrored every other epoch
    crop: int = 0                       # random crop after padding by this many pixels
    crop_mode: Literal["reflect", "zero"] = "reflect"
    cutout: int = 0                     # side of a random square set to zero


class TrainConfig(Frozen):
    """Hyper-parameters of `archdsl train`. The defaults reproduce the seed's recipe."""
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # `--lr inf` trains to NaN
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    lr: float = Field(0.01, gt=0)
    schedule: Literal["inverse_time", "constant", "cosine", "onecycle", "linear"] = "inverse_time"
    decay: float = Field(0.319, ge=0)   # inverse_time: lr / (1 + decay * epoch)
    warmup: float = Field(0, ge=0)      # epochs of linear warm-up
    final_lr: float = Field(0.0, ge=0)  # cosine / onecycle / linear end value
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0)
    batch: int = Field(128, ge=1, le=65536)  # per replica: a step trains on batch x replicas
    epochs: int = Field(50, ge=1, le=100000)
    passes: int = Field(1, ge=1, le=100)  # passes over the training images in one epoch
    augment: Augment = Augment()
    loss: Literal["categorical_crossentropy"] = "categorical_crossentropy"
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    ema: float = Field(0.0, ge=0, lt=1)  # decay of the weights' moving average; 0 = off
    normalize: Literal["scale", "standard"] = "scale"
    tta_flip: bool = False
    strategy: Literal["auto", "default", "mirrored", "multiworker"] = "auto"  # tf.distribute; see distribute.py
    # training images held out (stratified, fixed by the seed) to validate on and choose best.keras by;
    # 0: validate on the test split, the seed's protocol (training/holdout.py)
    val_split: int = Field(0, ge=0, le=10**9)


class Model(Frozen):
    name: str
    file: str
    input_shape: tuple[int, int, int]
    classes: Optional[int] = None
    layers: tuple[Layer, ...]
    assertions: tuple[Assertion, ...] = ()
    train: TrainConfig = TrainConfig()
    # which warnings the spec silences: a note to the analysis, not the model (a run's resolved.json leaves it out)
    allows: tuple[Allow, ...] = Field((), exclude=True)

    def layer(self, index: int) -> Layer:
        return self.layers[index - 1]

    @property
    def output(self) -> Layer:
        return self.layers[-1]
