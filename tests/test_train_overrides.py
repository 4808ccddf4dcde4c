"""`archdsl train --set KEY=VALUE` and `--recipe FILE`: each value read exactly as the spec's own train section,
positioned errors, precedence, what the run records, and resuming with the same overrides.

The expected configs are those of the same setting written in a spec's train section (the spec's reader
is the truth the overrides must agree with) or written out by hand; error texts are goldens checked by eye.
Most tests need no TensorFlow; two train a 60-image run for an epoch or two.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_train import _image_folder, the_run

import archdsl
from archdsl.errors import ArchError
from archdsl.ir import Augment
from archdsl.language.recipe import with_recipe
from archdsl.training.overrides import check_spec_copy, with_overrides

SPEC = """\
model tiny
input 16x16x3
classes 3

conv 3x3 8 same bn relu
gap
dense classes
softmax

train {
  batch 16
  epochs 2
  augment flip crop 2
}
"""


def spec_with(line: str):
    """The model of SPEC with `line` written in its train section, in place of the spec's line of that key if
    it has one: what the same setting given as an override must give."""
    head, section = SPEC.split("train {\n")
    kept = [old for old in section.splitlines(keepends=True) if old.split()[0] != line.split()[0]]
    return archdsl.loads(f"{head}train {{\n  {line}\n" + "".join(kept))


def rendered(exc: ArchError) -> str:
    return exc.render()


# --- each value form, as in a spec ---------------------------------------------------------------

@pytest.mark.parametrize("argument, line", [
    ("lr=0.2", "lr 0.2"),
    ("epochs=30", "epochs 30"),
    ("schedule=inverse_time 0.5", "schedule inverse_time 0.5"),
    ("schedule=cosine", "schedule cosine"),
    ("augment=flip crop 4", "augment flip crop 4"),
    ("augment=none", "augment none"),
    ("nesterov", "nesterov"),
    ("optimizer=sgd", "optimizer sgd"),
    ("tta=flip", "tta flip"),
    ("weight_decay=5e-4", "weight_decay 5e-4"),
    ("val_split=12", "val_split 12"),
    ("lr 0.2", "lr 0.2"),  # the train section's own form is taken too
])
def test_a_set_means_what_the_same_line_means_in_the_spec(argument, line):
    base = archdsl.loads(SPEC)
    assert with_recipe(base, sets=[argument]).train == spec_with(line).train


def test_values_by_hand():
    train = with_recipe(archdsl.loads(SPEC), sets=["lr=0.2", "schedule=inverse_time 0.319", "augment=flip crop 4",
                                                   "nesterov", "epochs=30"]).train
    assert (train.lr, train.schedule, train.decay, train.nesterov, train.epochs) == (0.2, "inverse_time", 0.319,
                                                                                    True, 30)
    assert train.augment == Augment(flip=True, crop=4)
    assert train.batch == 16  # not given: the spec's


def test_augment_replaces_the_whole_augmentation():
    train = with_recipe(archdsl.loads(SPEC), sets=["augment=cutout 4"]).train
    assert train.augment == Augment(cutout=4)  # the spec's flip and crop are gone


def test_later_sets_win():
    assert with_recipe(archdsl.loads(SPEC), sets=["lr=0.1", "lr=0.3"]).train.lr == 0.3


# --- errors: the spec's codes and messages, positioned in the argument ----------------------------

@pytest.mark.parametrize("argument, expected", [
    ("lr=abc", """\
--set lr=abc:1:4: error[E252]: train 'lr' takes one number
  1 | lr=abc
    |    ^^^
  hint: write e.g. `lr 0.01`"""),
    ("lrr=0.1", """\
--set lrr=0.1:1:1: error[E252]: unknown train setting 'lrr'
  1 | lrr=0.1
    | ^^^
  hint: did you mean 'lr'?"""),
    ("batch=0", """\
--set batch=0:1:7: error[E251]: train 'batch' must be at least 1, not '0'
  1 | batch=0
    |       ^
  hint: write e.g. `batch 128`"""),
    ("epochs=2.5", """\
--set epochs=2.5:1:8: error[E252]: train 'epochs' must be a whole number, not '2.5'
  1 | epochs=2.5
    |        ^^^
  hint: write e.g. `epochs 50`"""),
    ("schedule=cosin", """\
--set schedule=cosin:1:10: error[E251]: unknown schedule 'cosin'
  1 | schedule=cosin
    |          ^^^^^
  hint: did you mean 'cosine'? (one of: inverse_time, constant, cosine, onecycle, linear)"""),
    ("augment=flip crop", """\
--set augment=flip crop:1:14: error[E252]: augment 'crop' takes a size in pixels
  1 | augment=flip crop
    |              ^^^^
  hint: write e.g. `augment crop 4`"""),
    ("=3", """\
error[E614]: --set '=3': not a KEY=VALUE setting of the train section
  hint: write one setting, on one line, e.g. --set lr=0.2 or --set "augment=flip crop 4\""""),
    ("lr=1\nconv 3x3 8", """\
error[E614]: --set 'lr=1\\nconv 3x3 8': not a KEY=VALUE setting of the train section
  hint: write one setting, on one line, e.g. --set lr=0.2 or --set "augment=flip crop 4\""""),
])
def test_bad_set_is_positioned_in_the_argument(argument, expected):
    with pytest.raises(ArchError) as caught:
        with_recipe(archdsl.loads(SPEC), sets=[argument])
    assert rendered(caught.value) == expected


def test_the_same_value_in_a_spec_gets_the_same_message():
    """The --set message is the spec's, with only the place changed."""
    with pytest.raises(ArchError) as in_spec:
        archdsl.loads(SPEC.replace("epochs 2", "epochs 2.5"), "s.arch")
    with pytest.raises(ArchError) as in_set:
        with_recipe(archdsl.loads(SPEC), sets=["epochs=2.5"])
    assert (in_set.value.code, in_set.value.message, in_set.value.hint) == (
        in_spec.value.code, in_spec.value.message, in_spec.value.hint)


# --- recipe files ----------------------------------------------------------------------------------

def test_recipe_then_set(tmp_path):
    recipe = tmp_path / "fast.recipe"
    recipe.write_text("# a faster recipe\ntrain {\n  lr 0.05\n  batch 32\n  epochs 3\n}\n")
    train = with_recipe(archdsl.loads(SPEC), recipe, ["lr=0.2"]).train
    assert (train.lr, train.batch, train.epochs, train.augment) == (0.2, 32, 3, Augment(flip=True, crop=2))


def test_recipe_errors_are_positioned_in_the_recipe(tmp_path):
    recipe = tmp_path / "bad.recipe"
    recipe.write_text("train {\n  lr 0.05\n  momentm 0.9\n}\n")
    with pytest.raises(ArchError) as caught:
        with_recipe(archdsl.loads(SPEC), recipe)
    assert rendered(caught.value) == f"""\
{recipe}:3:3: error[E252]: unknown train setting 'momentm'
  3 |   momentm 0.9
    |   ^^^^^^^
  hint: did you mean 'momentum'?"""


def test_a_spec_given_as_a_recipe_is_refused(tmp_path):
    recipe = tmp_path / "other.arch"
    recipe.write_text(SPEC)
    with pytest.raises(ArchError) as caught:
        with_recipe(archdsl.loads(SPEC), recipe)
    assert rendered(caught.value) == f"""\
{recipe}:1:1: error[E614]: {recipe} is a spec: a recipe file holds only a `train {{ }}` section
  1 | model tiny
    | ^^^^^^^^^^
  hint: give the spec as FILE and put only its `train {{ }}` section in the recipe file"""


def test_a_recipe_with_a_layer_or_without_a_section_is_refused(tmp_path):
    recipe = tmp_path / "r.recipe"
    recipe.write_text("train {\n  lr 0.1\n}\nconv 3x3 8 same\n")
    with pytest.raises(ArchError) as caught:
        with_recipe(archdsl.loads(SPEC), recipe)
    assert caught.value.code == "E614" and caught.value.span.line == 4 and "is a spec" in caught.value.message
    recipe.write_text("# nothing yet\n")
    with pytest.raises(ArchError) as caught:
        with_recipe(archdsl.loads(SPEC), recipe)
    assert rendered(caught.value) == f"""\
error[E614]: {recipe} has no `train {{ }}` section
  hint: a recipe file holds one `train {{ }}` section: `train {{`, one setting a line, `}}`"""


# --- a resume compares spec.arch with the overrides applied --------------------------------------

def _fake_run(tmp_path: Path, command: str, recipe: str | None, sets: list[str]):
    from archdsl import runs
    run = runs.RunDir(tmp_path / "run")
    run.checkpoint.mkdir(parents=True)
    run.spec.write_text(SPEC)
    if recipe is not None:
        run.recipe.write_text(recipe)
    state = {"commands": [{"command": command, "from_epoch": 0}],
             "settings": {"recipe": "/somewhere/r.recipe" if recipe is not None else None, "set": sets}}
    return run, state


def test_resume_takes_the_overrides_into_account(tmp_path, capsys):
    recipe = "train {\n  batch 32\n}\n"
    model = with_overrides(with_recipe(archdsl.loads(SPEC), None, ["lr=0.2", "augment=flip"]), epochs=1)
    model = model.model_copy(update={"train": model.train.model_copy(update={"batch": 32})})
    run, state = _fake_run(tmp_path, "archdsl train tiny.arch --recipe r.recipe --set lr=0.2 --set augment=flip "
                                     "--epochs 1", recipe, ["lr=0.2", "augment=flip"])
    check_spec_copy(run, model, state)
    assert capsys.readouterr().err == ""
    run.spec.write_text(SPEC.replace("conv 3x3 8", "conv 3x3 16"))  # a real edit still warns
    check_spec_copy(run, model, state)
    assert "differs from" in capsys.readouterr().err
    run.spec.write_text(SPEC)
    run.recipe.write_text("train {\n  batch 64\n}\n")  # so does an edit of the run's recipe copy
    check_spec_copy(run, model, state)
    assert "describes another model or recipe" in capsys.readouterr().err


# --- end to end: precedence, what the run records, resume ----------------------------------------

@pytest.mark.tf
def test_overrides_train_are_recorded_and_resume(tmp_path, capsys):
    from archdsl.cli import main

    data = _image_folder(tmp_path / "shapes")
    spec = tmp_path / "tiny.arch"
    spec.write_text(SPEC)
    recipe = tmp_path / "fast.recipe"
    recipe.write_text("train {\n  lr 0.05\n  batch 32\n  epochs 3\n}\n")
    common = ["--data", str(data), "--data-dir", str(tmp_path / "cache"), "--verbose", "0"]
    overrides = ["--recipe", str(recipe), "--set", "lr=0.1", "--set", "lr=0.2", "--set", "augment=flip"]
    assert main(["train", str(spec), *overrides, "--epochs", "2", *common, "--out", str(tmp_path / "runs")]) == 0
    run = the_run(tmp_path / "runs")
    train = json.loads((run / "resolved.json").read_text())["train"]
    # spec < recipe < --set (the later one) < --epochs
    assert (train["lr"], train["batch"], train["epochs"]) == (0.2, 32, 2)
    assert train["augment"] == {"flip": True, "flip_mode": "random", "crop": 0, "crop_mode": "reflect", "cutout": 0}
    assert (run / "recipe.arch").read_text() == recipe.read_text()
    state = json.loads((run / "checkpoint/state.json").read_text())
    assert state["settings"]["set"] == ["lr=0.1", "lr=0.2", "augment=flip"]
    assert state["batch"] == 32 and state["lr"] == 0.2

    # roll back to epoch 1 and resume: with the same overrides, or none, there is no warning
    copy = tmp_path / "copy" / run.name
    shutil.copytree(run, copy)
    shutil.copy(copy / "checkpoint/epoch-0001.json", copy / "checkpoint/state.json")
    capsys.readouterr()
    assert main(["train", str(spec), "--resume", str(copy), *overrides, "--verbose", "0"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert json.loads((copy / "checkpoint/state.json").read_text())["complete"]
    # a different --set or recipe is refused like a different --epochs
    shutil.copy(run / "checkpoint/epoch-0001.json", copy / "checkpoint/state.json")
    assert main(["train", "--resume", str(copy), "--set", "lr=0.3"]) == 2
    assert "error[E611]: --set lr=0.3 differs from the run's --set lr=0.1 --set lr=0.2 --set augment=flip" in \
        capsys.readouterr().err
    recipe.write_text("train {\n  lr 0.05\n}\n")
    assert main(["train", "--resume", str(copy), "--recipe", str(recipe)]) == 2
    assert "error[E611]" in capsys.readouterr().err
