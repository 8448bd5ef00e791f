"""``python -m assistant.cli``: the ``lorag`` command, for launchers that start a module
(``torchrun -m assistant.cli finetune ...``, ``accelerate launch -m assistant.cli ...``)."""

from assistant.cli import app

app(prog_name="lorag")
