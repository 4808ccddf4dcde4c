"""`archdsl` with a pause at a chosen point, so that tests/test_faults.py can SIGKILL it exactly there.

    python tests/fault_driver.py train spec.arch --data ... --out ...

ARCHDSL_FAULT_PAUSE says where to stop (print a line `FAULT-PAUSE <where>` to stderr, then sleep until killed):
    batch:E:B        before training batch B (1-based) of epoch E (1-based): inside an epoch
    replace:NAME:N   before the Nth os.replace onto a file named NAME: every file of a run is written to a
                     temporary file and then renamed, so this is inside the write, after the data and before
                     the rename (e.g. `replace:state.json:3`, the commit of epoch 2: state.json is first
                     written when the run starts)
Nothing else changes: the command is archdsl.cli.main.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PAUSE = tuple(os.environ.get("ARCHDSL_FAULT_PAUSE", "").split(":")) if os.environ.get("ARCHDSL_FAULT_PAUSE") else ()


def _pause(where: str) -> None:
    print(f"FAULT-PAUSE {where}", file=sys.stderr, flush=True)
    time.sleep(3600)


_real_replace = os.replace
_replaced: dict[str, int] = {}


def _replace(src, dst, *args, **kwargs):
    name = os.path.basename(os.fspath(dst))
    _replaced[name] = _replaced.get(name, 0) + 1
    if PAUSE[:1] == ("replace",) and PAUSE[1:] == (name, str(_replaced[name])):
        _pause(":".join(PAUSE))
    return _real_replace(src, dst, *args, **kwargs)


def _patch_fit() -> None:
    """Add a callback to Model.fit that pauses before the chosen batch."""
    import keras

    fit = keras.Model.fit

    class Pause(keras.callbacks.Callback):
        epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1

        def on_train_batch_begin(self, batch, logs=None):
            if PAUSE[1:] == (str(self.epoch), str(batch + 1)):
                _pause(":".join(PAUSE))

    def patched(self, *args, callbacks=None, **kwargs):
        return fit(self, *args, callbacks=list(callbacks or []) + [Pause()], **kwargs)

    keras.Model.fit = patched


def main() -> int:
    os.replace = _replace
    if PAUSE[:1] == ("batch",):
        _patch_fit()
    from archdsl.cli import main as archdsl_main
    return archdsl_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
