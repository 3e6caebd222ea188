"""Encoder: closed-form parity with a straightforward per-band implementation, layout, outputs and errors."""

from __future__ import annotations

import pytest
import torch
from timm.layers import resample_abs_pos_embed

from smarties_terratorch.models.vit import (
    SmartiesViT,
    smarties_vit_base_patch16,
    smarties_vit_large_patch16,
    smarties_vit_tiny_patch16,
)
from smarties_terratorch.spectrum import resolve_bands

TOL = 1e-5
BAND_SETS = {
    "s2_l2a": dict(sensor="S2-L2A"),
    "s1": dict(sensor="S1"),
    "rgb": dict(sensor="RGB"),
    "s1_s2": dict(bands=["B02", "B03", "B04", "B08", "B11", "VV", "VH"]),
    "landsat_averaged": dict(bands=["L8:B2", "L8:B3", "L8:B4", "L8:B10"]),
    "landsat_inverse": dict(bands=["L8:B2", "L8:B10"], weighting="inverse_distance"),
}


def reference_tokens(model: SmartiesViT, x: torch.Tensor, bands: list) -> tuple[torch.Tensor, torch.Tensor]:
    """The released formula written out band by band: last-block tokens and normed CLS."""
    b, c, h, w = x.shape
    p = model.patch_size
    patches = x.unfold(2, p, p).unfold(3, p, p)  # [B, C, h, w, p, p], row-major inside each patch
    patches = patches.reshape(b, c, (h // p) * (w // p), p * p)
    per_band = []
    for ci, band in enumerate(bands):
        e = 0
        for k, weight in band.sources:
            e = e + weight * model.spectrum_projection.spectrum_embeds[k].proj(patches[:, ci])
        per_band.append(e)
    tokens = 12 * torch.stack(per_band).mean(0)
    pos = resample_abs_pos_embed(model.pos_embed, [h // p, w // p], list(model.grid_size), 1, antialias=False)
    z = torch.cat([model.cls_token.expand(b, -1, -1), tokens], 1) + pos
    for block in model.blocks:
        z = block(z)
    return z[:, 1:], model.norm(z)[:, 0]


@pytest.fixture(scope="module")
def tiny() -> SmartiesViT:
    torch.manual_seed(1)
    model = smarties_vit_tiny_patch16(embed_dim=96, num_heads=3).eval()
    with torch.no_grad():  # non-trivial biases so that the bias folding is tested too
        for emb in model.spectrum_projection.spectrum_embeds:
            emb.proj.bias.normal_(std=0.1)
    return model


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("size", [(224, 224), (96, 160)])
@pytest.mark.parametrize("name", sorted(BAND_SETS))
def test_closed_form_parity(tiny: SmartiesViT, name: str, size: tuple[int, int], dtype: torch.dtype) -> None:
    spec = dict(BAND_SETS[name])
    weighting = spec.pop("weighting", "released")
    bands = resolve_bands(weighting=weighting, **spec)
    model = tiny.to(dtype)
    x = torch.randn(2, len(bands), *size, dtype=dtype)
    try:
        with torch.inference_mode():
            ref_tokens, ref_cls = reference_tokens(model, x, bands)
            dense = model.forward_dense(x, bands=bands)
            cls = model(x, bands=bands)
    finally:
        tiny.float()
    h, w = size[0] // 16, size[1] // 16
    assert dense.shape == (2, 96, h, w)
    # float64 checks the formula itself; in float32 both sides round differently, so the bound scales with the
    # token magnitude (O(10) here, from the x12 band-mean scaler and the residual stream).
    scale = 1.0 if dtype == torch.float64 else max(1.0, ref_tokens.abs().max().item())
    assert (dense.flatten(2).transpose(1, 2) - ref_tokens).abs().max() <= TOL * scale
    assert (cls - ref_cls).abs().max() <= TOL


def _layout(model: SmartiesViT) -> tuple[int, int, dict[str, tuple[int, ...]]]:
    sd = model.state_dict()
    return len(sd), sum(v.numel() for v in sd.values()), {k: tuple(v.shape) for k, v in sd.items()}


@pytest.mark.parametrize(
    ("factory", "dim", "depth", "tensors", "values"),
    [
        (smarties_vit_base_patch16, 768, 12, 182, 88_563_456),
        (smarties_vit_large_patch16, 1024, 24, 326, 306_988_032),
    ],
)
def test_released_state_dict_layout(factory, dim: int, depth: int, tensors: int, values: int) -> None:
    with torch.device("meta"):
        model = factory()
    n, total, shapes = _layout(model)
    assert (n, total) == (tensors, values)
    expected = {"cls_token": (1, 1, dim), "pos_embed": (1, 197, dim), "norm.weight": (dim,), "norm.bias": (dim,)}
    for i in range(depth):
        for norm in ("norm1", "norm2"):
            expected[f"blocks.{i}.{norm}.weight"] = expected[f"blocks.{i}.{norm}.bias"] = (dim,)
        expected |= {
            f"blocks.{i}.attn.qkv.weight": (3 * dim, dim),
            f"blocks.{i}.attn.qkv.bias": (3 * dim,),
            f"blocks.{i}.attn.proj.weight": (dim, dim),
            f"blocks.{i}.attn.proj.bias": (dim,),
            f"blocks.{i}.mlp.fc1.weight": (4 * dim, dim),
            f"blocks.{i}.mlp.fc1.bias": (4 * dim,),
            f"blocks.{i}.mlp.fc2.weight": (dim, 4 * dim),
            f"blocks.{i}.mlp.fc2.bias": (dim,),
        }
    for k in range(17):
        expected[f"spectrum_projection.spectrum_embeds.{k}.proj.weight"] = (dim, 256)
        expected[f"spectrum_projection.spectrum_embeds.{k}.proj.bias"] = (dim,)
    assert shapes == expected


def test_global_pool_swaps_norm_for_fc_norm() -> None:
    model = smarties_vit_tiny_patch16(global_pool="avg", sensor="S1").eval()
    keys = set(model.state_dict())
    assert {"fc_norm.weight", "fc_norm.bias"} <= keys and "norm.weight" not in keys
    x = torch.randn(2, 2, 32, 32)
    with torch.inference_mode():
        expected = model.fc_norm(model.forward_features(x)[:, 1:].mean(1))
        assert torch.allclose(model(x), expected)


def test_forward_intermediates_formats(tiny: SmartiesViT) -> None:
    x = torch.randn(2, 3, 64, 96)
    with torch.inference_mode():
        final, inter = tiny.forward_intermediates(x, indices=[0, -1], bands=["R", "G", "B"], sensor="RGB")
        nlc = tiny.forward_intermediates(x, 2, sensor="RGB", output_fmt="NLC", intermediates_only=True)
        pairs = tiny.forward_intermediates(x, [1], sensor="RGB", return_prefix_tokens=True, intermediates_only=True)
        normed = tiny.forward_intermediates(x, [1], sensor="RGB", norm=True, intermediates_only=True)
        raw = tiny.forward_block_tokens(x, [1], sensor="RGB")
        features = tiny.forward_features(x, sensor="RGB")
        expected_normed = tiny.norm(raw[0])[:, 1:].transpose(1, 2).reshape(2, 96, 4, 6)
    assert final.shape == (2, 1 + 4 * 6, 96) and torch.allclose(final, features)
    assert [t.shape for t in inter] == [(2, 96, 4, 6)] * 2
    assert [t.shape for t in nlc] == [(2, 24, 96)] * 2
    assert torch.equal(nlc[1], inter[1].flatten(2).transpose(1, 2))
    spatial, prefix = pairs[0]
    assert prefix.shape == (2, 1, 96) and torch.equal(torch.cat([prefix, spatial.flatten(2).transpose(1, 2)], 1), raw[0])
    assert torch.allclose(normed[0], expected_normed)
    with pytest.raises(ValueError, match="output_fmt"):
        tiny.forward_intermediates(x, sensor="RGB", output_fmt="NHWC")


def test_fusion(tiny: SmartiesViT) -> None:
    s2, s1 = torch.randn(2, 12, 32, 32), torch.randn(2, 2, 32, 32)
    with torch.inference_mode():
        late = tiny.forward_multimodal({"S2": s2, "S1": s1}, fusion="late")
        early = tiny.forward_multimodal({"S2": s2, "S1": s1}, fusion="early")
        separate = torch.cat([tiny(s2, sensor="S2"), tiny(s1, sensor="S1")], -1)
        stacked = tiny(torch.cat([s2, s1], 1), bands=resolve_bands(sensor="S2").names + ["VV", "VH"])
    assert late.shape == (2, 192) and torch.allclose(late, separate)
    assert early.shape == (2, 96) and torch.allclose(early, stacked, atol=1e-6)
    with pytest.raises(ValueError, match="fusion"):
        tiny.forward_multimodal({"S1": s1}, fusion="middle")


def test_late_fusion_head() -> None:
    model = smarties_vit_tiny_patch16(num_classes=19, head_type="linprobe", num_modalities=2).eval()
    out = model.forward_multimodal({"S2": torch.randn(3, 12, 32, 32), "S1": torch.randn(3, 2, 32, 32)})
    assert out.shape == (3, 19)


def test_conv_head_segments_dense_tokens() -> None:
    model = smarties_vit_tiny_patch16(num_classes=8, head_type="conv", sensor="S2").eval()
    assert model(torch.randn(1, 12, 224, 224)).shape == (1, 8, 96, 96)


@pytest.mark.parametrize(
    ("shape", "kwargs", "message"),
    [
        ((1, 3, 64, 64), {"sensor": "S2"}, "3 channels but 12 bands"),
        ((1, 2, 40, 64), {"sensor": "S1"}, "not divisible by the patch size"),
        ((2, 64, 64), {"sensor": "S1"}, r"\[B, C, H, W\]"),
        ((1, 2, 64, 64), {}, "No bands given"),
    ],
)
def test_input_errors(tiny: SmartiesViT, shape: tuple, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny(torch.randn(*shape), **kwargs)


def test_default_bands_and_per_call_override() -> None:
    model = smarties_vit_tiny_patch16(bands=["B04", "B03", "B02"]).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(model(x), model(x, bands=["red_2", "green_2", "blue_1"]))
        assert not torch.allclose(model(x), model(x, sensor="RGB"))


def test_gradients_reach_only_used_projections(tiny: SmartiesViT) -> None:
    model = smarties_vit_tiny_patch16(sensor="S1")
    out = model(torch.randn(2, 2, 32, 32))
    (out * torch.randn_like(out)).sum().backward()  # a plain sum of LayerNorm outputs has zero gradient
    grads = [e.proj.weight.grad for e in model.spectrum_projection.spectrum_embeds]
    assert all(g is not None and g.abs().sum() > 0 for g in grads[15:17])
    assert all(g is None or g.abs().sum() == 0 for g in grads[:15])


def test_bf16_autocast_close_to_fp32(tiny: SmartiesViT) -> None:
    x = torch.randn(2, 12, 64, 64)
    with torch.inference_mode():
        ref = tiny(x, sensor="S2")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = tiny(x, sensor="S2")
    assert torch.nn.functional.cosine_similarity(ref, low.float()).min() > 0.99


def test_compiles_without_graph_breaks() -> None:
    # Bands fixed at construction (or pre-resolved with model.resolve) keep band resolution out of the graph.
    model = smarties_vit_tiny_patch16(sensor="S2").eval()
    rgb = model.resolve(["B04", "B03", "B02"])
    x = torch.randn(2, 12, 64, 64)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    compiled_rgb = torch.compile(lambda t: model(t, bands=rgb), backend="eager", fullgraph=True)
    with torch.inference_mode():
        assert torch.allclose(compiled(x), model(x), atol=1e-6)
        assert torch.allclose(compiled_rgb(x[:, :3]), model(x[:, :3], bands=rgb), atol=1e-6)


def test_torch_export_matches_eager() -> None:
    model = smarties_vit_tiny_patch16(sensor="S2").eval()
    x = torch.randn(2, 12, 64, 64)
    program = torch.export.export(model, (x,))
    with torch.inference_mode():
        assert (program.module()(x) - model(x)).abs().max() <= 1e-5


def test_chunked_inference_embedding_equals_one_gemm(tiny: SmartiesViT) -> None:
    # Eager inference patchifies a few images at a time (memory); training/compiling uses one GEMM.
    embed, bands = tiny.spectrum_projection, resolve_bands(sensor="S2")
    x = torch.randn(2 * embed.inference_chunk + 1, 12, 64, 48)
    with torch.no_grad():
        chunked = embed(x, bands)
    with torch.enable_grad():
        whole = embed(x, bands)
    assert chunked.shape == (x.shape[0], 12, 96)
    assert torch.equal(chunked, whole.detach())


def test_inference_weight_cache_follows_parameter_updates() -> None:
    model = smarties_vit_tiny_patch16(sensor="S1").eval()
    x = torch.randn(2, 2, 32, 32)
    with torch.inference_mode():
        before = model(x)
        assert torch.equal(model(x), before)  # served from the fused-weight cache
    with torch.no_grad():
        model.spectrum_projection.spectrum_embeds[15].proj.weight.mul_(2)  # in place, like an optimizer step
    with torch.inference_mode():
        after = model(x)
    with torch.enable_grad():
        reference = model(x)  # grad mode never uses the cache
    assert not torch.allclose(after, before) and torch.allclose(after, reference, atol=1e-6)
