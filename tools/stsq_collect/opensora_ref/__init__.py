"""Independent float32 PyTorch reference of OpenSora STDiT (v1.0) and STDiT3 (v1.2), written from
/work/shared/OPENSORA.md. Used to produce the engine fixtures under Tests/Fixtures/engine/."""
from .layers import block_linear_names, capture_linears  # noqa: F401
from .stdit import STDiT  # noqa: F401
from .stdit3 import STDiT3  # noqa: F401


def build_model(cfg):
    """STDiT3 or STDiT from a config.json-style dict (model_type decides)."""
    kind = cfg.get("model_type", "STDiT3")
    if kind == "STDiT3":
        return STDiT3(cfg)
    if kind == "STDiT":
        return STDiT(cfg)
    raise ValueError(f"unknown model_type {kind!r}")
