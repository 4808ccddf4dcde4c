"""Every error code of archdsl: its stage, what it means and how to fix it.

The one list of codes. `ArchError` refuses a code that is not here (a typo'd code fails every
test that reaches it); scripts/make_errors_doc.py writes docs/errors.md from it, with a real
example of each code; tests/test_error_codes.py checks that each code written in archdsl/ is
here and raised as its stage's error class, and that each code here is raised or reserved.

A new code: add a `Code` below (meaning and fix, in the words the doc shows), raise it, give
scripts/make_errors_doc.py an example (or a note), and run `python scripts/make_errors_doc.py`.
This module imports nothing of archdsl: errors.py reads it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    """The codes of one stage: E2xx are the spec's semantic errors, raised as SpecSemanticError."""

    prefix: str        # "E2"
    title: str         # as the doc's headings say it
    error_class: str   # the class of archdsl.errors its codes are raised as
    about: str         # the doc's description, after the class name


STAGES = (
    Stage("E0", "The base class", "ArchError", "every error archdsl reports derives from it."),
    Stage("E1", "Syntax", "SpecSyntaxError",
          "the file cannot be read, or its text does not follow the grammar. Exit 2."),
    Stage("E2", "Spec semantics", "SpecSemanticError",
          "grammatical, but meaningless (unknown op, bad value, shape below 1, ...). All of a file's errors are "
          "reported together. Exit 2."),
    Stage("E3", "Asserts", "ConstraintError", "an `assert` line does not hold. Exit 1."),
    Stage("E4", "Data", "DataError", "a dataset is missing, malformed or does not fit the spec. Exit 2."),
    Stage("E5", "Runs and training", "RunError", "a run cannot start, continue, be read or be written. Exit 1."),
    Stage("E6", "Command line", "UsageError",
          "the command line is wrong (or, for E651/E652 of `draw`, the graphviz program is). Exit 2, except where "
          "a RunError carries the code."),
)
# warnings are not errors: they are said (or silenced by `allow`) and the spec is still accepted
WARNING_STAGE = Stage("W3", "Spec warnings", "SpecWarning",
                      "the spec is accepted, but a layer probably does not do what was meant. Exit status unchanged; "
                      "`allow CODE` silences a code for the file, `# allow CODE` after a layer for its line.")
_STAGE_OF = {stage.prefix: stage for stage in (*STAGES, WARNING_STAGE)}


@dataclass(frozen=True)
class Code:
    """One error code. `fix` is "—" where there is nothing to fix (a code no message uses)."""

    code: str
    meaning: str
    fix: str
    reserved: bool = False          # no message carries it: the default code of a class whose every message
                                    # has a more precise one (raising that class without a code is a mistake)
    raised_as: str | None = None    # the error class, when it is not the stage's (E652 is a RunError)

    @property
    def stage(self) -> Stage:
        return _STAGE_OF[self.code[:2]]

    @property
    def error_class(self) -> str:
        return self.raised_as or self.stage.error_class


def _table(*codes: Code) -> dict[str, Code]:
    table = {c.code: c for c in codes}
    assert len(table) == len(codes), "a code is listed twice"
    return table


CODES: dict[str, Code] = _table(
    # E0xx: The base class
    Code("E000", "The code of the base class `ArchError`; no message uses it.", "—", reserved=True),

    # E1xx: Syntax
    Code("E100",
        "The default code of a syntax error; every message today has a more precise code.",
        "—", reserved=True),
    Code("E101",
        "The spec file cannot be read: it does not exist, it is a directory, a pipe, a device or a socket "
        "(only regular files are read, and at most the size limit), or it may not be read.",
        "Check the path and its permissions; name a `.arch` file."),
    Code("E102",
        "The file is not a spec: it is binary, not UTF-8 text, or larger than a spec can be.",
        "Save the spec as plain UTF-8 text; check that you named the right file."),
    Code("E103",
        "A character the language does not use (`;`, `/`, `@`, ...).",
        "Remove it; comments start with `#`, statements end at the end of the line."),
    Code("E104",
        "A `{` is never closed: the file ends inside a block, residual, parallel or train section.",
        "Close it with a `}` on a line of its own."),
    Code("E105",
        "A token where the grammar does not allow it (a misplaced `}`, `(`, `*`, a layer outside a `branch`, ...).",
        "Follow the hint: it lists what may come there."),
    Code("E106", "Braces nest deeper than the parser allows.", "Flatten the structure with named blocks."),

    # E2xx: Spec semantics
    Code("E200",
        "The default code of a semantic error; every message today has a more precise code.",
        "—", reserved=True),
    Code("E201",
        "The spec is empty, has only comments, or has no layers.",
        "Write an `input` line and at least one layer."),
    Code("E202", "A header (`model`, `input`, `classes`) is declared twice.", "Keep one of them."),
    Code("E203", "The `input` shape is not HxWxC with each side at least 1.", "Write e.g. `input 32x32x3`."),
    Code("E204", "`classes` is not a whole number of at least 1.", "Write e.g. `classes 10`."),
    Code("E205", "The spec has no `input` line.", "Declare the input shape, e.g. `input 32x32x3`."),
    Code("E206",
        "An unknown op (or block) name.",
        "Use an op of the language (see the hint's did-you-mean) or define the block."),
    Code("E207", "A second `train { }` section.", "Merge it into the first."),
    Code("E208",
        "The model's last layer does not produce `classes` values.",
        "Write `classes` as the last layer's filters or units."),
    Code("E209", "`classes` is used as a number but not declared.", "Add a `classes N` line."),
    Code("E210",
        "An option the op does not take, an unknown option or padding, or one given twice (two paddings, strides, "
        "dilations, `dm`s or bias options: the last does not win).",
        "Use the options the hint lists for that op; keep one of two."),
    Code("E211",
        "An option that takes a value (`stride`, `dilation`, `dm`, `drop`) has none.",
        "Give the value: `stride 2`, `drop .05`."),
    Code("E212",
        "An op lacks a required argument: a kernel, filters/units, or a rate.",
        "Write it, e.g. `sep 3x3 64`, `dense 10`, `dropout .1`."),
    Code("E213",
        "A count (filters, units, pool size, depth multiplier) is not a whole number.",
        "Write a whole number."),
    Code("E214",
        "A number (filters, units, kernel side, stride, dilation) is out of range, or a `dw` layer or a concat would "
        "output more than 100,000 channels.",
        "Use a value from 1 to 100,000."),
    Code("E215", "A dropout rate outside [0, 1).", "Write e.g. `drop .05`."),
    Code("E216", "A kernel/stride/dilation size without exactly two sides.", "Write HxW, e.g. `3x3` or `3x1`."),
    Code("E217",
        "A numeral beyond the range of a float (`1e400`), wherever it stands: a layer, an `assert`, the train "
        "section, a repeat count, a block argument.",
        "Write a number below about 1.8e308."),
    Code("E218",
        "An explicit padding that is not 1, 2 or 4 whole numbers from 0 (`pad 1`, `pad 1,2`, `pad 0,1,0,1`), or a "
        "grouped convolution whose input channels or filters do not divide into its groups.",
        "Write `pad N`, `pad H,W` or `pad T,B,L,R`; for `groups G`, make G divide both counts (the hint names the "
        "largest that does)."),
    Code("E220",
        "A block name is defined twice, or is a word of the language in any case (an op, an option such as `same` or "
        "`s2`, a keyword, a merge).",
        "Rename the block."),
    Code("E221",
        "A block body holds a line that is not a layer (`input`, `assert`, ...).",
        "Move that line out of the block."),
    Code("E222",
        "A block parameter is named after a word of the language in any case (an op, an option such as `same`, "
        "`stride`, `dm` or `s2`, a keyword, a merge), or two parameters of a block have one name.",
        "Rename the parameter in the header and the block's body; the hint offers free names near it "
        "(`stride`: `strides` or `stride_`)."),
    Code("E223", "A repeat count is not a whole number from 1 to 1000.", "Use a count from 1 to 1000."),
    Code("E224", "An op is called with `(arguments)` like a block.", "Write its options after it: `sep 3x3 64`."),
    Code("E225",
        "A block uses itself (directly or through others), or blocks nest too deep.",
        "Remove the cycle; flatten the nesting."),
    Code("E226", "A block use has options after it (`stage(64) same`).", "Pass values as arguments: `stage(...)`."),
    Code("E227",
        "A block use's arguments do not fit its parameters (too many, unknown, twice, missing).",
        "Match the block's parameter list (the hint shows it)."),
    Code("E228",
        "Repeats and blocks expand to more than 10,000 layers or 100,000 statements.",
        "Lower the repeat counts."),
    Code("E230",
        "A windowed op (conv, pool, gap) after the feature map became a vector.",
        "Put `gap`/`flatten` after the last conv or pool layer."),
    Code("E231",
        "A layer with both a stride and a dilation above 1 (Keras supports one or the other).",
        "Split it into two layers."),
    Code("E232",
        "A `valid` window larger than its input: the output would be below 1x1.",
        "Use `same` padding, a smaller kernel, or downsample less before it."),
    Code("E233", "`dense` on a feature map.", "Put `gap` or `flatten` before it."),
    Code("E234",
        "`whiten` on a conv that does not read the model input: its kernel is computed from the images' patches.",
        "Whiten the first conv, or drop `whiten`."),
    Code("E235",
        "`whiten` with an odd number of filters, or more than two per eigenvector of the patches.",
        "Use an even number of filters up to 2 x kernel area x input channels (24 for 2x2 on RGB)."),
    Code("E236",
        "The model would not fit in this machine's memory: its weights (`archdsl build`, `train`, ...: 8 bytes a "
        "weight while Keras builds it), or `rf --verify`'s measurement on the canvas its receptive fields reach "
        "(16 bytes a pixel a layer), need more than 80 % of the physical memory. Refused before TensorFlow "
        "allocates; the message gives the estimate and points at the widest layer (or the first).",
        "Make the widest layers narrower (fewer filters or units) or the input smaller; for `rf --verify`, verify "
        "a copy of the spec with a smaller `input` (the receptive fields do not depend on it while they fit)."),
    Code("E240", "`assert X in [...]` with a metric other than `ops`.", "Write `assert ops in [...]`."),
    Code("E241", "An unknown op in an `assert ops` list.", "Use op names (see the did-you-mean)."),
    Code("E242", "An unknown metric in an `assert`.", "Use one of the metrics the hint lists."),
    Code("E243", "An `assert` compares with something that is not a number.", "Write e.g. `assert params <= 80k`."),
    Code("E250", "A train setting is given twice.", "Keep one of them."),
    Code("E251",
        "A train setting's value is out of its range (e.g. `batch 0`, `lr -1`).",
        "Use a value in the range the message gives."),
    Code("E252",
        "An unknown train setting, or a value of the wrong form (`epochs 2.5`, `augment flipp`).",
        "See the settings table in docs/language.md."),
    Code("E260", "An unknown merge after `residual`/`parallel`.", "Merge with `add` or `concat`."),
    Code("E261", "A residual block with an empty body.", "Put layers between the braces."),
    Code("E262",
        "A parallel block with fewer than two branches.",
        "Add a branch: `branch {` ending its line, the branch's layers on the lines after it, and `}` on a line "
        "of its own (a branch with no layers is the identity)."),
    Code("E263",
        "The paths of a residual or parallel block end with shapes the merge cannot join (`add`: equal shapes; "
        "`concat`: equal spatial sizes).",
        "Give the shortcut a projection (the hint writes it), or make the branches downsample alike."),
    Code("E264",
        "The merged paths step through the image differently (unequal jumps): their units would not line up.",
        "Downsample every path by the same strides."),
    Code("E270",
        "`allow` (or an `# allow` comment) names a code that is not a warning's.",
        "Name a warning code (W301, W302: see docs/warnings.md); the hint's did-you-mean gives the nearest."),
    Code("E271",
        "An `# allow` comment on a line that writes no layer: it silences only the layers written on its own "
        "line, so here it would silence nothing.",
        "Move it to the end of the layer's line (inside a block: the body's line), or write `allow CODE` on a "
        "line of its own for the whole file."),

    Code("E280", "A `choose` line inside a block, residual or parallel body.",
         "Move it to the top of the file: a choice is the whole file's."),
    Code("E281",
         "A choice's name is taken: declared twice, a word of the language, a block's name, or a block parameter's "
         "name (inside that block the name would mean the parameter).",
         "Rename the choice, or the block parameter (and its uses in the body)."),
    Code("E282", "A choice's values: none, one listed twice, or values of different forms (a size and a number).",
         "List distinct values of one form: `choose w in [32, 48, 64]`, `choose k in [3x3, 5x5]`."),
    Code("E283", "A choice that no line uses.", "Write its name where a value goes, or delete the `choose` line."),
    Code("E284", "The choices make more than 100,000 combinations.", "Drop values, or fix some choices."),
    Code("E285",
         "A design space (a spec with `choose` lines) given to a command that needs one model.",
         "`archdsl space FILE` lists the variants and `--write DIR` writes each as a spec to give the command; "
         "`archdsl tune FILE` trains them."),

    # E3xx: Asserts
    Code("E300", "The default code of a failed constraint; every message today is E301.", "—", reserved=True),
    Code("E301", "An `assert` does not hold; the message says the actual value.", "Change the model, or the limit."),
    Code("E302", "No variant of a design space holds every assert; the message names the assert that rules out "
                 "the most, and how many each rules out.", "Loosen the limit, or add choices whose variants hold it."),

    # E4xx: Data
    Code("E400",
        "A dataset problem: the data is missing, not laid out as train/CLASS/image files, holds a damaged image, is a"
        " truncated archive, or does not fit the spec. Every data error has this code; the message names the file or "
        "folder.",
        "Follow the hint; a damaged file must be replaced or deleted."),

    # E5xx: Runs and training
    Code("E500", "The default code of a run error; every message today has a more precise code.", "—", reserved=True),
    Code("E501",
        "A file cannot be written (disk full, permissions, the folder is a file). Writes are atomic: the previous "
        "version of the file, if any, is intact.",
        "Free disk space or fix the permissions, then run again (`train --resume` continues a run)."),
    Code("E510",
        "`archdsl train` cannot create a run directory under `--out`.",
        "Choose a writable folder with `--out`."),
    Code("E520",
        "`--resume` (or `report`) names a run directory that does not exist or is a file.",
        "Give a folder made by `archdsl train`."),
    Code("E521",
        "The folder is not an (intact) run directory: no checkpoint state, spec or resolved IR, or a folder or file "
        "of the run is a link leading out of it.",
        "Give a folder made by `archdsl train`."),
    Code("E522", "A run has no usable checkpoint at all.", "Start a new run."),
    Code("E523",
        "A checkpoint file of the run is damaged: state.json or epoch-N.json does not parse, a field of it fails "
        "its check (the message names the field and its value), or the model file it names is missing, is not its "
        "own epoch's file, or fails its checksum. `--resume` falls back to the newest intact epoch checkpoint (with a "
        "warning) and reports this error only when none is left.",
        "Resume from an older checkpoint if one is left; otherwise start a new run."),
    Code("E524",
        "Another archdsl process is writing the run (it holds the run's lock).",
        "Wait for it to finish, or stop it first."),
    Code("E525", "A checkpoint's weights or optimizer state do not fit the model of the run's resolved.json (an "
                 "edited resolved.json, or a checkpoint of another model).", "Start a new run."),
    Code("E526",
        "A run resumed with another number of replicas (devices or workers) than it trained on: the global batch, and"
        " so the run, would change.",
        "Resume on as many replicas as the run had."),
    Code("E530",
        "`archdsl eval` of a run that has no best.keras yet (no epoch has finished).",
        "Train it for an epoch first, or give a .keras file."),
    Code("E531",
        "`archdsl eval` cannot load the .keras file (damaged, or not a Keras model).",
        "Give a model file written by `archdsl build` or `train`."),
    Code("E532",
        "`archdsl eval` of a model whose output is not one score per class (no `gap`/`flatten` before its head).",
        "Evaluate a classifier: a spec that ends with e.g. `gap` and `softmax`."),
    Code("E540",
        "`archdsl report` names a run directory that does not exist, is a file, or is empty (\"\").",
        "Give a folder made by `archdsl train`."),
    Code("E541",
        "`archdsl report`: the run directory has no history.csv (not a run, or no epoch has finished).",
        "Wait for the first epoch, or give another run."),
    Code("E542",
        "`archdsl report`: the run's history.csv cannot be read.",
        "Restore the file (a resumed run rewrites it after its next epoch)."),
    Code("E543",
        "The diagram graphviz drew is not an SVG picture (an internal check of `report`).",
        "Report the problem; `archdsl draw --format dot` shows the diagram's source."),
    Code("E550",
        "`archdsl train --strategy multiworker`: a worker cannot join its cluster: a peer of TF_CONFIG does not "
        "answer within `--peer-timeout`, the worker's port is taken, or the workers were given different clusters.",
        "Start every worker of TF_CONFIG with the same cluster and its own task index; check the ports; give a "
        "slow-starting cluster a larger `--peer-timeout`."),
    Code("E551",
        "`archdsl train --strategy multiworker`: a worker lost its cluster during training (a peer died or the "
        "network broke). The run keeps the checkpoint of the last complete epoch.",
        "Restart every worker with `archdsl train --resume RUN_DIR --strategy multiworker`."),
    Code("E560",
        "Keras's private API is not what archdsl was checked against. `archdsl train` with a distribution strategy "
        "replaces private functions of Keras' `fit`, and a spec with `ema` reads the optimizer's private moving "
        "averages; in the installed Keras one of those names is missing or takes other parameters, or the averages "
        "do not pair with the variables. Refused before anything is replaced or swapped (a Keras release archdsl "
        "was not checked on, but whose names fit, only gets a warning).",
        "Train without a strategy (`--strategy default`) or without `ema`, or install a Keras release archdsl was "
        "checked on (the hint gives the `pip install`); tests/test_keras_private_api.py checks a release."),

    # E6xx: Command line
    Code("E600",
        "The default code of a command-line error; every message today has a more precise code.",
        "—", reserved=True),
    Code("E601",
        "The command line does not parse: unknown command, unknown or missing argument.",
        "See `archdsl COMMAND --help`."),
    Code("E602", "The output path is a directory.", "Give a file name."),
    Code("E603", "The output file exists; archdsl never overwrites.", "Choose another name, or remove the file."),
    Code("E604", "The output's folder does not exist.", "Create it (`mkdir -p`)."),
    Code("E605", "The output's folder is not writable.", "Choose another output path."),
    Code("E606", "`archdsl build -o` names a file that does not end in .keras.", "Write e.g. `-o model.keras`."),
    Code("E610", "`archdsl train`: no spec file (and no `--resume`).", "Give the spec."),
    Code("E611",
        "`archdsl train --resume`: a flag (`--epochs`, `--batch-size`, `--lr`, `--data`, `--set`, `--recipe`, "
        "`--val-split`) differs from the run's own setting.",
        "Leave the flag out, or start a new run."),
    Code("E612",
        "`archdsl train`/`eval`: a flag's value is out of range (`--epochs 0`, `--seed -1`, `--lr inf`, `--limit 0`).",
        "See `archdsl train --help`."),
    Code("E613",
        "`archdsl eval`: the target is neither a run directory nor a model file (.keras, or a converted .tflite or "
        ".onnx; `erf`: .keras).",
        "Give a run directory or a model file."),
    Code("E614",
        "`archdsl train --set`/`--recipe`: a `--set` that is not one KEY=VALUE setting (no key, a line break, only "
        "a comment), or a recipe file that holds something other than one `train { }` section (a spec's layers, "
        "`input`, asserts) or none.",
        "Write `--set lr=0.2` (any key of the train section); put only the `train { }` section in the recipe file."),
    Code("E615",
        "`archdsl train --val-split N` (or `val_split N` in the train section): N is 0 or less, or holds out so "
        "many training images that a class would have none left to train on.",
        "Hold out at most the number the hint gives, or leave `--val-split` out to validate on the test split."),
    Code("E620",
        "`archdsl train`: an unknown `--strategy` or `--precision`, or a `--peer-timeout` that is not positive.",
        "Use one of the values the hint lists."),
    Code("E621",
        "`archdsl train --strategy multiworker`: the TF_CONFIG environment variable is missing or wrong.",
        "Set TF_CONFIG as the hint shows (see docs/distributed.md)."),
    Code("E630", "`archdsl export --to` names an unknown target.", "Use `keras`, `pytorch`, `tflite` or `onnx`."),
    Code("E631", "`archdsl export -o` does not end in .py.", "Write e.g. `-o model.py`."),
    Code("E632",
        "The export target cannot build an op or activation of the model.",
        "Export to another target, or rewrite those layers."),
    Code("E640",
        "`archdsl report -o` has an extension other than .html or .md.",
        "Write `-o report.html` or `-o report.md`."),
    Code("E641",
        "`archdsl report -o NAME.md`: NAME_files, where the pictures go, exists and is not a folder, or is a "
        "symbolic link (archdsl does not write through one).",
        "Choose another report name, or remove the file or link first."),
    Code("E650",
        "`archdsl draw`: the picture format cannot be told or does not match the file name.",
        "Name the file with its format's extension (.svg, .png, .pdf, .dot, .txt), or give `--format`."),
    Code("E651",
        "`archdsl draw`: the graphviz `dot` program is not installed. The .dot source is still written.",
        "Install graphviz (`apt-get install graphviz`, `brew install graphviz`), or draw `--format ascii`."),
    Code("E652",
        "`archdsl draw`: graphviz failed to draw.",
        "Draw `--format dot` and report the problem.", raised_as="RunError"),
    Code("E660",
        "`archdsl erf --layers` names no layer of the spec, or a layer that is not spatial (each unit of a gap, "
        "flatten or dense sees the whole input), or the spec has no spatial layer.",
        "Name spatial layers by the table's # column (`archdsl rf FILE`), or `--layers all`."),
    Code("E661",
        "`archdsl erf`: the run's best.keras or the .keras file is not a model of the spec (a layer is missing or "
        "makes another shape).",
        "Give the run or model trained from this spec."),
    Code("E662",
        "`archdsl erf --images N`: N is below 1 or more than the data's test split holds.",
        "Give a number from 1 to the test split's size, e.g. `--images 64`."),
    Code("E663",
        "`archdsl erf -o`: the file name does not end in .html, .svg or .png.",
        "Write e.g. `-o erf.html`."),
    Code("E670",
        "`archdsl export --to tflite|onnx`: the converter cannot express a layer of the model in that format (the "
        "message names the layer and the format: e.g. a grouped conv has no ONNX form through tf2onnx).",
        "Export to the other format, or replace the layer's op in the spec (docs/deploy.md lists what each format "
        "cannot express); `--verbose` shows the converter's own output.", raised_as="RunError"),
    Code("E671",
        "`archdsl export --to tflite|onnx`: the output file's extension is not the format's (.tflite, .onnx).",
        "Write e.g. `-o model.tflite` or `-o model.onnx`."),
    Code("E672",
        "`archdsl export`: the deploy options do not fit together: --int8 without calibration data (--data, or a "
        "run's own), --int8/--int8-io with --to onnx, --int8-io without --int8, --calibration below 1, or --last "
        "without a RUN_DIR.",
        "`--to tflite --int8 --data D` (or a RUN_DIR); `--last` only with a RUN_DIR."),
    Code("E673",
        "`archdsl eval` cannot load the .tflite or .onnx file (truncated, damaged, or not such a model).",
        "Export it again with `archdsl export FILE|RUN_DIR --to tflite|onnx`.", raised_as="RunError"),
    Code("E674",
        "`archdsl export --to tflite|onnx` or `archdsl eval` of a .tflite/.onnx file: a package it needs (LiteRT, "
        "tf2onnx, onnx, ONNX Runtime) is not installed.",
        "pip install 'archdsl[deploy]'."),
    Code("E680",
        "`archdsl tune --storage`: the URL is not a database URL the tuner can use (it does not parse, its scheme "
        "names no database archdsl knows, or it names no database).",
        "Write `postgresql://USER:PASSWORD@HOST:PORT/DATABASE`, `mysql+pymysql://...` or `sqlite:///PATH`; for one "
        "machine leave out `--storage` (a SQLite file in the tune folder)."),
    Code("E681",
        "`archdsl tune`: a package the tuner or its storage needs is not installed (Optuna, or the storage URL's "
        "database driver: psycopg2 for PostgreSQL, PyMySQL or mysqlclient for MySQL).",
        "pip install 'archdsl[tune]' (Optuna and psycopg2); for MySQL also the driver the URL names, e.g. "
        "`pip install pymysql` with `mysql+pymysql://`."),
    Code("E682",
        "`archdsl tune --storage`: the database server does not answer within the timeout (it is not running, the "
        "host or port is wrong, or a firewall drops the connection).",
        "Start the server or check host and port (`pg_isready -h HOST -p PORT`); for one machine leave out "
        "`--storage` (a SQLite file in the tune folder).", raised_as="RunError"),
    Code("E683",
        "`archdsl tune --storage`: the database server answers but will not keep the study: a wrong user or "
        "password, a database that does not exist, a server that does not let this host in (pg_hba.conf), a user "
        "without the right to make or use the study's tables, or what answers at the port is not such a server.",
        "Check the URL's user, password and database (docs/tuning.md shows how to create them) and the server's "
        "pg_hba.conf.", raised_as="RunError"),
    Code("E684",
        "`archdsl tune`: the study's storage cannot be used: the SQLite file cannot be opened or written or is not a "
        "database, or the database's tables were made by another Optuna version.",
        "Give a writable tune folder (or another `--storage`); for tables of an older Optuna run "
        "`optuna storage upgrade --storage URL`.", raised_as="RunError"),
    Code("E685",
        "`archdsl tune`: --trials, --epochs or --val-split is below 1, or --time is not more than 0 seconds.",
        "Give e.g. `--trials 20 --epochs 5`, or leave the flag out (its default is in `archdsl tune --help`)."),
    Code("E686",
        "`archdsl tune`: the tune folder (<out>/<study>/) or the study holds another tune: another study's, "
        "another spec's (or this spec's before an edit: the trials would not be comparable), one kept in another "
        "storage, or the folder holds files that are not a tune's.",
        "Give another --study or --out; or tune the spec as it was, with the --storage it was started with."),
    Code("E687",
        "`archdsl tune`: the study already has finished trials, no worker is running one of its trials, and "
        "--resume is not given; or --resume or --leaderboard names a study (or tune folder) that does not exist.",
        "Add --resume to continue the study (finished trials are not repeated); check --out, --study and --storage."),
    Code("E688",
        "`archdsl tune` (--resume, or another worker): a setting (--data, --limit, --test-limit, --epochs, "
        "--val-split, --seed, --sampler, --pruner) differs from the study's: every trial of a study trains with "
        "the same settings.",
        "Leave the flag out (the study's value is used), or start another --study."),
    Code("E689",
        "`archdsl tune --report`: the file name does not end in .html (the report is an HTML page).",
        "Write e.g. `--report tune.html`."),
)


# W3xx: what the analysis says of a spec it accepts (archdsl/analysis/warnings.py); docs/warnings.md shows each
WARNINGS: dict[str, Code] = _table(
    Code("W301",
        "A layer's window adds no context: every unit of its input, the corner units included, already sees the "
        "whole input image. The layer adds depth (and parameters), not a wider view.",
        "Downsample earlier (a stride or a pool), so that fewer layers reach the whole image, or drop layers; "
        "if the depth is deliberate, `allow W301`."),
    Code("W302",
        "The paths of a residual or parallel block reach the merge with receptive fields centred on different "
        "pixels: the merge adds features of neighbouring places. The message names the layer that shifts a path.",
        "Centre that layer's windows like the other path's: symmetric `pad` instead of TF's `same` with a stride "
        "on an even size, an odd kernel instead of an even one; if the shift is deliberate, `allow W302`."),
    Code("W303",
        "An `allow` (or `# allow`) names a warning that nothing there gets: what it allowed is no longer in the "
        "spec, and the line would silently hide the warning should it come back somewhere else.",
        "Delete the code from the line; `allow W303` keeps such lines quiet for the whole file."),
)
