"""OpenSora's own modules (tag v1.2.0) on the bundled checkpoint: their forward against the
reference modules, and the collector's statistics with them against the engine's.

Manual (needs the original source, never committed, and its pure-Python dependencies):

    git -C Open-Sora archive v1.2.0 opensora | tar -x -C /tmp/opensora-v1.2.0
    tools/.venv/bin/pip install timm einops rotary-embedding-torch transformers
    OPENSORA_SRC=/tmp/opensora-v1.2.0 make test    # or pytest this file

Stubs stand in for the GPU-only and training-only imports only: xformers (its block-diagonal
memory-efficient attention, written out in float32), colossalai, mmengine's registry, torchvision's
downloader. Skipped, saying why, when OPENSORA_SRC is unset."""
import os
import sys
import types

import pytest
import torch

from conftest import DEMO

SOURCE = os.environ.get("OPENSORA_SRC")
pytestmark = pytest.mark.skipif(not SOURCE, reason="OPENSORA_SRC (an Open-Sora v1.2.0 source tree) is not set")


def _module(name, **attributes):
    m = types.ModuleType(name)
    m.__dict__.update(attributes)
    sys.modules[name] = m
    return m


class _BlockDiagonalMask:
    """xformers' mask: query block i attends to key block i only."""

    def __init__(self, q_seqlen, kv_seqlen):
        self.q_seqlen, self.kv_seqlen = list(q_seqlen), list(kv_seqlen)

    @classmethod
    def from_seqlens(cls, q_seqlen, kv_seqlen=None):
        return cls(q_seqlen, kv_seqlen if kv_seqlen is not None else q_seqlen)

    def dense(self):
        allowed = torch.zeros(sum(self.q_seqlen), sum(self.kv_seqlen), dtype=torch.bool)
        q0 = k0 = 0
        for nq, nk in zip(self.q_seqlen, self.kv_seqlen):
            allowed[q0:q0 + nq, k0:k0 + nk] = True
            q0, k0 = q0 + nq, k0 + nk
        return allowed


def _memory_efficient_attention(q, k, v, p=0.0, attn_bias=None):
    """[B, M, H, K] layout, softmax(q·kᵀ/√K) v in float32."""
    q, k, v = (t.permute(0, 2, 1, 3).to(torch.float32) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    if attn_bias is not None:
        scores = scores.masked_fill(~attn_bias.dense(), float("-inf"))
    return (scores.softmax(-1) @ v).permute(0, 2, 1, 3).contiguous()


def install_original():
    """Imports OpenSora's STDiT3 from SOURCE with the stubs in place; returns the module."""
    fmha = _module("xformers.ops.fmha", BlockDiagonalMask=_BlockDiagonalMask)
    ops = _module("xformers.ops", memory_efficient_attention=_memory_efficient_attention, fmha=fmha)
    _module("xformers", ops=ops)
    _module("colossalai", booster=_module("colossalai.booster", Booster=object),
            checkpoint_io=_module("colossalai.checkpoint_io", GeneralCheckpointIO=object))

    class Registry:
        def __init__(self, *args, **kwargs):
            pass

        def register_module(self, name=None, force=False, module=None):
            return (lambda cls: cls) if module is None else module
    _module("mmengine", registry=_module("mmengine.registry", Registry=Registry))
    if "torchvision.datasets.utils" not in sys.modules:
        try:
            import torchvision.datasets.utils  # noqa: F401
        except ImportError:
            _module("torchvision.datasets.utils", download_url=None)
    # The packages' __init__ files import every model (VAE, T5, …); only STDiT3 is wanted.
    for package in ("opensora", "opensora.models", "opensora.models.stdit"):
        m = _module(package)
        m.__path__ = [os.path.join(SOURCE, *package.split("."))]
    import importlib
    return importlib.import_module("opensora.models.stdit.stdit3")


def test_original_forward_and_statistics(stsq_tui, tmp_path):
    install_original()
    from stsq_collect import cache
    from stsq_collect.checkpoint import open_checkpoint
    from stsq_collect.__main__ import main

    from test_against_engine import compare

    torch.manual_seed(0)
    original = open_checkpoint(str(DEMO), modules="opensora")
    reference = open_checkpoint(str(DEMO), modules="reference")
    assert original.modules == "opensora" and type(original.model).__module__ == "opensora.models.stdit.stdit3"
    y, mask = reference.text_encoder.encode(["a red circle moving left on a blue background", "a green square growing"])
    y = torch.cat([y, reference.null_caption[None, None].expand(2, 1, *reference.null_caption.shape)])
    x = torch.randn(4, 3, 8, 32, 32)
    kwargs = dict(mask=mask, fps=torch.tensor([24.0]), height=torch.tensor([32.0]), width=torch.tensor([32.0]))
    t = torch.full((4,), 700.0)
    with torch.no_grad():
        a = original.model(x, t, y, **kwargs)
        b = reference.model(x, t, y, **kwargs)
    relative = float((a - b).abs().max() / b.abs().max())
    print(f"OpenSora v1.2.0 modules vs reference: max |Δ| / max |out| = {relative:.2e}")
    assert relative < 1e-5

    prompts = tmp_path / "p.txt"
    prompts.write_text("a red circle moving left on a blue background\na green square growing on a black background\n")
    stsq_tui("calibrate", "--prompts", prompts, "--steps", 3, "--cache-directory", tmp_path / "swift")
    assert main([str(DEMO), "--prompts", str(prompts), "--steps", "3", "--cache-directory", str(tmp_path / "py"),
                 "--modules", "opensora", "--threads", "1", "--quiet"]) == 0
    (folder,) = os.listdir(tmp_path / "swift")
    _, swift = cache.load_cache(str(tmp_path / "swift" / folder))
    _, ours = cache.load_cache(str(tmp_path / "py" / folder))
    worst, moved, total = compare(ours, swift)
    print(f"collector on OpenSora's modules vs stsq-tui calibrate: worst {worst:.2e}, {moved} of {total} values in another bin")
