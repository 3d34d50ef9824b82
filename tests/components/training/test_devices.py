"""nmt.components.training.devices: which device and precision a run gets."""

from __future__ import annotations

import pytest
import torch

from nmt.components.training.devices import describe, inference_device, native_bf16, resolve_precision


@pytest.mark.parametrize("explicit", ["32", "bf16-mixed", "16-mixed"])
def test_an_explicit_precision_is_kept(explicit):
    assert resolve_precision(explicit, "cpu") == explicit


@pytest.mark.parametrize("amx, avx512_bf16, expected", [(True, False, "bf16-mixed"), (False, True, "bf16-mixed"),
                                                         (False, False, "32")])
def test_auto_uses_bf16_on_a_cpu_only_where_it_is_native(monkeypatch, amx, avx512_bf16, expected):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    assert native_bf16("cpu") == (expected == "bf16-mixed")
    assert resolve_precision("auto", "cpu") == expected


def test_auto_on_a_gpu_falls_back_to_fp16_without_bf16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", "gpu") == "16-mixed"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", "gpu") == "bf16-mixed"


def test_labels_and_inference_device():
    assert describe("cpu") == "cpu"
    assert inference_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        assert describe(torch.device("cuda", 0)).startswith("cuda:0 (")
