"""stsq-collect: `stsq-tui calibrate` on PyTorch, for checkpoints calibrated where the GPUs are.
See tools/README.md ("stsq-collect") and the README's "Real OpenSora" section."""
from .cache import Key, load_cache, save_cache  # noqa: F401
from .checkpoint import open_checkpoint  # noqa: F401
from .statistics import LayerStepStatistics  # noqa: F401
