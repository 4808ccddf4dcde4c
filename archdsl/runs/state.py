"""The schema of a run's state (checkpoint/state.json and epoch-N.json): every value a resume or `eval`
reads is checked here, before anything runs, and the first problem is named by its field."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class _Part(BaseModel):
    # strict: "3" is not 3, 1 is not True; extra keys are kept (a later archdsl may add some)
    model_config = ConfigDict(strict=True, extra="allow")


class _Settings(_Part):
    data: str = Field(min_length=1)
    data_dir: Optional[str] = None  # a record of the first command line only: never read (see `train`)
    limit: Optional[int] = Field(ge=1)
    test_limit: Optional[int] = Field(ge=1)
    seed: int = Field(ge=0, le=2**32 - 1)
    precision: Literal["fp32", "mixed_bf16", "mixed_fp16"] = "fp32"
    scale_lr: bool = False
    batchnorm: Literal["fused", "keras"] = "keras"
    recipe: Optional[str] = None  # the --recipe file as given (a record); the run reads its copy, recipe.arch
    set: list[str] = []           # the --set arguments, in order
    val_split: Optional[int] = Field(None, ge=1)  # training images held out to validate on; None: the test split


class _Data(_Part):
    source: Optional[str] = None
    fingerprint: Optional[str] = None
    train_images: int = Field(ge=0)
    test_images: Optional[int] = Field(None, ge=0)
    val_images: int = Field(0, ge=0)  # held out of the training images (--val-split); not in train_images
    classes: Optional[list[str]] = None


class _Rng(_Part):
    seed: int
    seed_generators: list[list[int]]


class _Best(_Part):
    epoch: Optional[int] = Field(ge=1)
    val_accuracy: Optional[float]


class _Row(_Part):
    epoch: int = Field(ge=1)
    lr: Optional[float] = None
    loss: Optional[float] = None
    accuracy: Optional[float] = None
    val_loss: Optional[float] = None
    val_accuracy: Optional[float] = None
    seconds: float
    train_seconds: float


class _Test(_Part):
    """A held-out run's test split, scored once after the last epoch."""
    accuracy: float = Field(ge=0, le=1)        # best.keras's: the model the held-out images chose
    final_accuracy: float = Field(ge=0, le=1)  # the last epoch's model (last.keras)
    images: int = Field(ge=1)
    epoch: int = Field(ge=1)                   # best.keras's epoch


class _Distribution(_Part):
    replicas: int = Field(1, ge=1)


class _Command(_Part):
    command: str
    from_epoch: int = Field(ge=0)


class _State(_Part):
    format: Literal["archdsl-run/1"]
    spec: str
    epoch: int = Field(ge=0)
    epochs: int = Field(ge=1, le=100000)
    batch: int = Field(ge=1)
    passes: int = Field(1, ge=1)
    lr: float = Field(gt=0, allow_inf_nan=False)
    complete: bool
    checkpoint: Optional[str]
    sha256: Optional[str] = None
    settings: _Settings
    data: _Data
    rng: _Rng
    best: _Best
    history: list[_Row]
    params: Optional[int] = None
    distribution: Optional[_Distribution] = None
    commands: list[_Command] = []
    ema_batch_norm: Optional[list[list[float]]] = None
    test: Optional[_Test] = None

    @model_validator(mode="after")
    def _agrees_with_itself(self):
        if len(self.history) != self.epoch:
            raise ValueError(f"history has {len(self.history)} epochs, epoch is {self.epoch}")
        for n, row in enumerate(self.history, start=1):
            if row.epoch != n:
                raise ValueError(f"history.{n - 1} is epoch {row.epoch}, not {n}")
        if self.epoch > self.epochs:
            raise ValueError(f"epoch is {self.epoch}, more than epochs ({self.epochs})")
        if self.complete != (self.epoch == self.epochs):
            raise ValueError(f"complete is {self.complete}, and epoch {self.epoch} of {self.epochs}")
        if (self.best.epoch is None) != (self.best.val_accuracy is None) or (self.best.epoch or 0) > self.epoch:
            raise ValueError(f"best is epoch {self.best.epoch} of {self.epoch}, val_accuracy {self.best.val_accuracy}")
        own = f"epoch-{self.epoch:04d}.keras" if self.epoch else None  # the only file a resume loads
        if self.checkpoint != own:
            raise ValueError(f"checkpoint is {self.checkpoint!r:.200}: not {own or 'null'}, the checkpoint of epoch "
                             f"{self.epoch}" if own else f"checkpoint is {self.checkpoint!r:.200}: epoch 0 has none")
        if own and not isinstance(self.sha256, str):
            raise ValueError(f"sha256 is {self.sha256!r:.80}: the checkpoint of epoch {self.epoch} has no checksum")
        return self


def _problem(exc: ValidationError) -> str:
    """The first thing wrong with a state, naming its field (`settings.limit`), and how many more there are."""
    errors = exc.errors()
    first = errors[0]
    field = ".".join(str(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "model_type":  # not "... or instance of _Data": the file is JSON
        msg = "input should be an object ({...})"
    if first["type"] == "missing":
        text = f"it has no {field!r}"
    elif field:
        text = f"{field} is {_shown(first['input'])}: {msg[:1].lower()}{msg[1:]}"
    else:
        text = msg
    return text + (f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1
                   else "")


def _shown(value) -> str:
    """A value of a hand-edited file, short: containers by their kind (a repr could be huge, or nested deep)."""
    if isinstance(value, (list, dict)):
        return f"a {type(value).__name__}" + (" (empty)" if not value else "")
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def check_state(state: dict) -> None:
    """Raise a ValueError if `state` (a state file's JSON value) does not fit the schema: the first thing wrong,
    naming its field, and how many more there are."""
    try:
        _State.model_validate(state)
    except ValidationError as exc:
        raise ValueError(_problem(exc)) from None
