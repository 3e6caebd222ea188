"""CPU benchmark of the SMARTIES spectrum-aware embedding: released per-range masked loop vs our fused GEMM.

Measures, in one run (fp32, ``torch.inference_mode``):

* (a) ``ref embed``  -- the released formula written independently here: patchify to ``[B, h, w, C, p*p]``, a zero
  buffer ``[B, h, w, C, D]``, a loop over ``unique(indices)`` with boolean masks, then ``12 * mean`` over C;
* (b) ``ours embed`` -- ``model.spectrum_projection(x, resolved)`` (one GEMM with the folded weights);
* (c) full encoders: ``ours`` (``model(x)``, 12 bands), ``ref`` (reference embedding + the *same* cls / pos_embed /
  blocks / norm, so only the embedding differs) and timm's ``vit_base_patch16_224`` (3 bands);
* this machine's large-matmul fp32 GFLOP/s (``torch.mm`` of two N x N matrices) and the achieved GFLOP/s of our
  encoder, with FLOPs counted by ``torch.utils.flop_counter.FlopCounterMode`` (cross-checked analytically).

Every measured callable runs in its own fresh subprocess (this script re-invoked with a hidden ``--_worker`` flag),
so models, allocator state and high-water marks of one measurement never leak into another. Run
``python benchmarks/bench_embedding.py --help`` for options; see ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from _common import count_flops, cpu_name, loadavg

RESULT_MARK = "@@BENCH_RESULT@@ "
MB = 1e6  # decimal megabytes (the spec quotes 231 MB for the B=32 reference buffer)

# (task name, label) of the timed callables, in run order.
CALLABLES = [
    ("embed_ref", "(a) ref embed (masked loop)"),
    ("embed_ours", "(b) ours embed (fused GEMM)"),
    ("full_ref", "(c) ref full encoder"),
    ("full_ours", "(c) ours full encoder"),
    ("full_timm", "(c) timm vit_base_patch16_224"),
]


# ---------------------------------------------------------------------------------------------------- arguments
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch", type=int, default=32, help="batch size B (default 32)")
    p.add_argument("--size", type=int, default=224, help="image side in pixels, multiple of 16 (default 224)")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats of each full encoder (default 3)")
    p.add_argument(
        "--embed-repeats", type=int, default=10, help="timed repeats of each embedding alone (cheap; default 10)"
    )
    p.add_argument("--warmup", type=int, default=1, help="untimed warm-up calls before timing (default 1)")
    p.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help=f"torch intra-op threads (default {os.cpu_count()})"
    )
    p.add_argument("--sensor", default="S2-L2A", help="band preset of our model (default S2-L2A, 12 bands)")
    p.add_argument("--matmul-size", type=int, default=4096, help="N of the N x N fp32 torch.mm (default 4096)")
    p.add_argument("--matmul-repeats", type=int, default=5, help="timed torch.mm repeats (default 5)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: batch 2, size 64, 1 repeat, 1024 matmul, all measurements in one subprocess",
    )
    p.add_argument(
        "--shared-process",
        action="store_true",
        help="run all measurements in one subprocess (faster start-up, less isolation; implied by --quick)",
    )
    p.add_argument("--json", metavar="PATH", help="also write all results as JSON to PATH")
    p.add_argument("--_worker", help=argparse.SUPPRESS)  # internal: run one measurement in this process
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.size, args.repeats, args.embed_repeats, args.warmup = 2, 64, 1, 2, 1
        args.matmul_size, args.matmul_repeats = 1024, 2
        args.shared_process = True
    if args.size % 16:
        p.error("--size must be a multiple of 16")
    return args


def forwarded_args(args: argparse.Namespace) -> list[str]:
    """The (already quick-resolved) settings, passed explicitly to each worker."""
    return [
        f"--batch={args.batch}",
        f"--size={args.size}",
        f"--repeats={args.repeats}",
        f"--embed-repeats={args.embed_repeats}",
        f"--warmup={args.warmup}",
        f"--threads={args.threads}",
        f"--sensor={args.sensor}",
        f"--matmul-size={args.matmul_size}",
        f"--matmul-repeats={args.matmul_repeats}",
    ]


# ---------------------------------------------------------------------------------------------------- reference
class ReferenceEmbedding:
    """The released per-range masked-loop embedding, written independently of ``smarties_terratorch``'s own code.

    Per channel c, ``e_c = Linear_{idx[c]}(16x16 patch of channel c, flattened row-major)``; averaged ranges
    (Landsat-8 indices 17, 18) use ``sum_i w_i Linear_i(patch)``; token = ``12 * mean_c e_c``. As in the release,
    the index is given per patch and channel (``[B, h, w, C]``, constant over patches downstream), a
    ``[B, h, w, C, D]`` zero buffer is filled with one masked assignment per unique index, then averaged over C.
    Only the ``Linear`` modules (parameters) are taken from the model.
    """

    def __init__(self, model: Any, resolved: Any) -> None:
        import torch

        self.embeds = model.spectrum_projection.spectrum_embeds
        self.patch = model.patch_size
        self.scale = float(model.spectrum_projection.projection_scale)  # the released constant 12
        indices = resolved.projection_indices
        if any(k is None for k in indices):
            raise ValueError("The reference needs released projection indices (no free wavelengths).")
        self.indices = torch.tensor(indices, dtype=torch.long)  # [C]
        # released index -> ((learned index, weight), ...); one (k, 1.0) pair for the 17 learned ranges.
        self.sources = {k: tuple(b.sources) for k, b in zip(indices, resolved)}

    def project(self, k: int, patches: Any) -> Any:
        sources = self.sources[k]
        if len(sources) == 1 and sources[0] == (k, 1.0):
            return self.embeds[k].proj(patches)
        out = None
        for j, w in sources:  # averaged range: weighted sum of two learned Linear layers (weights are floats)
            y = w * self.embeds[j].proj(patches)
            out = y if out is None else out + y
        return out

    def __call__(self, x: Any) -> Any:
        import torch

        b, c, hh, ww = x.shape
        p = self.patch
        h, w = hh // p, ww // p
        # [B, C, h, p, w, p] -> [B, h, w, C, p, p] -> [B, h, w, C, p*p] (element (r, q) -> 16 r + q: row-major)
        patches = x.reshape(b, c, h, p, w, p).permute(0, 2, 4, 1, 3, 5).reshape(b, h, w, c, p * p)
        indices = self.indices.view(1, 1, 1, c).expand(b, h, w, c)  # per-patch indices, as the release takes them
        buf = None
        for k in torch.unique(indices).tolist():  # host sync + data-dependent shapes, as released
            mask = indices == k
            y = self.project(k, patches[mask])  # [n, D]
            if buf is None:
                buf = torch.zeros(b, h, w, c, y.shape[-1], dtype=y.dtype, device=y.device)
            buf[mask] = y
        return (self.scale * buf.mean(dim=3)).reshape(b, h * w, -1)


def reference_full_forward(model: Any, ref_embed: ReferenceEmbedding, x: Any) -> Any:
    """Released encoder forward (CLS output) with the reference embedding and our model's cls/pos/blocks/norm."""
    import torch

    tokens = ref_embed(x)
    cls = model.cls_token.expand(tokens.shape[0], -1, -1)
    h = torch.cat([cls, tokens], dim=1) + model.pos_embed
    for blk in model.blocks:
        h = blk(h)
    return model.norm(h)[:, 0]


# ---------------------------------------------------------------------------------------------------- FLOPs
def vit_block_macs(dim: int, depth: int, tokens: int, mlp_ratio: float = 4.0) -> int:
    """MACs of ``depth`` pre-norm ViT blocks on ``tokens`` tokens (per image; norms, GELU, softmax not counted).

    Per block: qkv 3 N D^2, attention (QK^T and AV) 2 N^2 D, output projection N D^2, MLP 2 N D (r D).
    """
    n, d = tokens, dim
    return depth * (3 * n * d * d + 2 * n * n * d + n * d * d + int(2 * n * d * mlp_ratio * d))


def analytic_encoder_flops(batch: int, channels: int, grid: int, dim: int = 768, depth: int = 12) -> int:
    """2 x MACs of a ViT-B/16-like encoder: C-band patch projection (C*256 -> D per token) + blocks."""
    n_patches = grid * grid
    embed_macs = n_patches * channels * 256 * dim
    return 2 * batch * (embed_macs + vit_block_macs(dim, depth, n_patches + 1))



# ---------------------------------------------------------------------------------------------------- memory
# Peak-memory method. Each callable runs in a fresh process. After model + input creation, warm-up and timing:
#   1. glibc is switched to a fixed mmap threshold (mallopt(M_MMAP_THRESHOLD, 64 KiB), which also disables glibc's
#      dynamic threshold) and free heap memory is returned to the OS (malloc_trim). From then on every tensor
#      buffer >= 64 KiB is its own mmap, unmapped on free, so resident memory tracks live tensors instead of
#      holes glibc keeps in its heap; one call re-warms the process in that regime.
#   2. The kernel's RSS high-water mark is reset (``echo 5 > /proc/self/clear_refs``, Linux >= 4.0), the baseline
#      is the current VmRSS, one call runs, and the peak increase is VmHWM - baseline (from /proc/self/status).
# This "steady" number is the per-call transient + output footprint of a warmed-up callable (one-time library
# state such as MKL/oneDNN packing buffers is excluded); it is what the targets use. As a cross-check, the very
# first call of the process is also measured with ``getrusage(RUSAGE_SELF).ru_maxrss`` before/after ("cold":
# includes one-time library allocations; a lower bound on the peak if model building already touched more memory).
_LIBC = None


def _libc() -> Any:
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.mallopt  # noqa: B018 - glibc only
            _LIBC.malloc_trim  # noqa: B018
        except (OSError, AttributeError):
            _LIBC = False
    return _LIBC


def _proc_status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def maxrss_bytes() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r if sys.platform == "darwin" else r * 1024  # Linux reports KiB


def steady_peak_increase(fn: Callable[[], Any]) -> tuple[int | None, str]:
    libc = _libc()
    gc.collect()
    if libc:
        libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD = -3
        libc.malloc_trim(0)
    out = fn()  # re-warm under the fixed-threshold regime
    del out
    gc.collect()
    if libc:
        libc.malloc_trim(0)
    if not _reset_hwm() or _proc_status_kb("VmRSS") is None:
        return None, "unavailable (no /proc/self/clear_refs)"
    base = _proc_status_kb("VmRSS")
    out = fn()
    peak = _proc_status_kb("VmHWM")
    del out
    if libc:  # back to roughly glibc's warmed-up dynamic regime, for later measurements in a --shared-process run
        libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD: glibc's dynamic maximum on 64-bit
        libc.mallopt(-1, 64 * 1024 * 1024)  # M_TRIM_THRESHOLD: 2 x mmap threshold, as the dynamic rule sets it
    method = "VmHWM reset by clear_refs" + (", glibc mmap threshold 64KiB" if libc else "")
    return (peak - base) * 1024, method


# ---------------------------------------------------------------------------------------------------- workers
def _setup(args: argparse.Namespace) -> Any:
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return torch


def _build_ours(args: argparse.Namespace) -> tuple[Any, Any]:
    from smarties_terratorch.models.vit import smarties_vit_base_patch16

    model = smarties_vit_base_patch16(sensor=args.sensor, img_size=args.size).eval()
    return model, model.resolve(None)


def _time_it(fn: Callable[[], Any], warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        del out
    return times


def worker_callable(args: argparse.Namespace, task: str) -> dict[str, Any]:
    torch = _setup(args)
    b, s = args.batch, args.size
    if task == "full_timm":
        import timm

        model = timm.create_model("vit_base_patch16_224", pretrained=False, num_classes=0, img_size=s).eval()
        x = torch.randn(b, 3, s, s)
        fn = lambda: model(x)
        channels = 3
    else:
        model, resolved = _build_ours(args)
        channels = len(resolved)
        x = torch.randn(b, channels, s, s)
        ref = ReferenceEmbedding(model, resolved)
        fn = {
            "embed_ref": lambda: ref(x),
            "embed_ours": lambda: model.spectrum_projection(x, resolved),
            "full_ref": lambda: reference_full_forward(model, ref, x),
            "full_ours": lambda: model(x),
        }[task]
    repeats = args.embed_repeats if task.startswith("embed") else args.repeats
    with torch.inference_mode():
        gc.collect()
        before = maxrss_bytes()
        t0 = time.perf_counter()
        out = fn()  # first call: cold memory cross-check (and first warm-up)
        first_call_s = time.perf_counter() - t0
        cold = maxrss_bytes() - before
        out_shape = list(out.shape)
        del out
        for _ in range(max(args.warmup - 1, 0)):
            fn()
        # CPU time / wall time over the timed repeats: about --threads when the cores are ours, less when another
        # process competes for them (then the timings are not trustworthy).
        ru0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        times = _time_it(fn, 0, repeats)
        ru1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        cpu_util = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / (w1 - w0)
        steady, mem_method = steady_peak_increase(fn)
        flops = count_flops(fn)  # at the real batch: counts exactly what runs (incl. per-call weight folding)
    return {
        "task": task,
        "channels": channels,
        "input_shape": list(x.shape),
        "output_shape": out_shape,
        "first_call_s": first_call_s,
        "times_s": times,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "peak_increase_steady_bytes": steady,
        "peak_increase_cold_bytes": cold,
        "memory_method": mem_method,
        "cpu_utilisation": cpu_util,
        "flops": flops,
    }


def worker_matmul(args: argparse.Namespace) -> dict[str, Any]:
    torch = _setup(args)
    n = args.matmul_size
    a, bm = torch.randn(n, n), torch.randn(n, n)
    with torch.inference_mode():
        torch.mm(a, bm)  # warm-up
        ru0, w0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        times = _time_it(lambda: torch.mm(a, bm), 0, args.matmul_repeats)
        ru1, w1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    med = statistics.median(times)
    return {
        "n": n,
        "times_s": times,
        "median_s": med,
        "gflops": 2 * n**3 / med / 1e9,
        "best_gflops": 2 * n**3 / min(times) / 1e9,
        "cpu_utilisation": (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / (w1 - w0),
    }


def worker_check(args: argparse.Namespace) -> dict[str, Any]:
    """Numerical agreement of (a) and (b), and of the two full forwards; analytic FLOPs for the cross-check."""
    torch = _setup(args)

    model, resolved = _build_ours(args)
    ref = ReferenceEmbedding(model, resolved)
    c, s = len(resolved), args.size
    x = torch.randn(min(args.batch, 2), c, s, s)
    res: dict[str, Any] = {"bands": resolved.names, "projection_indices": resolved.projection_indices}
    with torch.inference_mode():
        e_ref, e_ours = ref(x), model.spectrum_projection(x, resolved)
        f_ref, f_ours = reference_full_forward(model, ref, x), model(x)
        # float64 ground truth of the released formula (same code, weights and input cast to fp64)
        model64 = model.double()
        e_64 = ReferenceEmbedding(model64, resolved)(x.double())
        model.float()
    res["embed_max_abs_diff"] = (e_ref - e_ours).abs().max().item()
    res["embed_max_abs_value"] = e_ref.abs().max().item()
    res["embed_rel_diff"] = res["embed_max_abs_diff"] / res["embed_max_abs_value"]
    res["embed_ref_vs_fp64"] = (e_ref.double() - e_64).abs().max().item()
    res["embed_ours_vs_fp64"] = (e_ours.double() - e_64).abs().max().item()
    res["full_max_abs_diff"] = (f_ref - f_ours).abs().max().item()
    res["full_max_abs_value"] = f_ref.abs().max().item()
    res["shapes"] = {"embed": list(e_ours.shape), "full": list(f_ours.shape)}

    grid = s // 16
    res["flops_analytic_batch"] = {
        "full_ours": analytic_encoder_flops(args.batch, c, grid),
        "full_timm": analytic_encoder_flops(args.batch, 3, grid),
        "embed": 2 * args.batch * grid * grid * c * 256 * 768,
    }
    res["flops_method"] = "torch.utils.flop_counter.FlopCounterMode (+ CPU SDPA registered) on the measured call"
    return res


def run_task(args: argparse.Namespace, task: str) -> dict[str, Any]:
    if task == "matmul":
        return worker_matmul(args)
    if task == "check":
        return worker_check(args)
    if task == "all":  # --shared-process: every measurement in this one process, in the normal order
        res = {t: run_task(args, t) for t in ["check", "matmul", *(name for name, _ in CALLABLES)]}
        for name, _ in CALLABLES:  # ru_maxrss is a process-wide high-water mark: only the first task's is meaningful
            res[name]["peak_increase_cold_bytes"] = None
        return res
    return worker_callable(args, task)


def run_worker(args: argparse.Namespace) -> None:
    res = run_task(args, args._worker)
    sys.stdout.write(RESULT_MARK + json.dumps(res) + "\n")
    sys.stdout.flush()


def spawn(args: argparse.Namespace, task: str) -> dict[str, Any]:
    """Run one measurement (or ``all``) in a fresh interpreter: this script with the hidden ``--_worker`` flag."""
    cmd = [sys.executable, os.path.abspath(__file__), f"--_worker={task}", *forwarded_args(args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr)
        raise RuntimeError(f"worker {task!r} failed (exit {proc.returncode})")
    return json.loads(lines[-1][len(RESULT_MARK) :])


# ---------------------------------------------------------------------------------------------------- report
def _fmt_mb(v: int | None) -> str:
    return f"{'n/a':>8s}" if v is None else f"{v / MB:8.1f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args._worker:
        run_worker(args)
        return 0

    # Workers import smarties_terratorch from this checkout even when the package is not installed.
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.environ["PYTHONPATH"] = repo + os.pathsep + os.environ.get("PYTHONPATH", "")
    import torch  # only for version reporting in the parent

    cpu = cpu_name()
    load_start = loadavg()
    print(
        f"SMARTIES embedding benchmark | B={args.batch} size={args.size} sensor={args.sensor} fp32 inference_mode | "
        f"threads={args.threads} (os.cpu_count()={os.cpu_count()}) | torch {torch.__version__} | CPU {cpu}"
    )
    mode = "all measurements in ONE subprocess" if args.shared_process else "each measurement in a fresh subprocess"
    print(
        f"repeats: full encoders {args.repeats}, embeddings {args.embed_repeats}, matmul {args.matmul_repeats}; "
        f"warm-up {args.warmup}; {mode}"
    )
    if load_start is not None:
        print(f"load average at start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}")
        if load_start[0] > 0.5:
            print(
                "WARNING: other processes are using the CPU; with --threads equal to the core count, timings of "
                "multi-threaded GEMMs can be several times slower and very noisy. Re-run on an idle machine."
            )
    print(flush=True)
    t_start = time.perf_counter()

    if args.shared_process:
        print("  running all measurements ...", flush=True)
        everything = spawn(args, "all")
        check, matmul = everything["check"], everything["matmul"]
        results = {task: everything[task] for task, _ in CALLABLES}
    else:
        print("  running numerical check ...", flush=True)
        check = spawn(args, "check")
        print("  running matmul ...", flush=True)
        matmul = spawn(args, "matmul")
        results = {}
        for task, label in CALLABLES:
            print(f"  running {label} ...", flush=True)
            results[task] = spawn(args, task)
    load_end = loadavg()

    print(f"\nNumerical check (batch {min(args.batch, 2)}, same weights and input):")
    print(
        f"  embedding ref vs ours: max|diff| = {check['embed_max_abs_diff']:.3e}  (max|value| = "
        f"{check['embed_max_abs_value']:.3e}, relative {check['embed_rel_diff']:.2e}); max|diff| to the fp64 "
        f"formula: ref {check['embed_ref_vs_fp64']:.2e}, ours {check['embed_ours_vs_fp64']:.2e}"
    )
    print(
        f"  full encoder CLS ref vs ours: max|diff| = {check['full_max_abs_diff']:.3e}  (max|value| = "
        f"{check['full_max_abs_value']:.3e})"
    )
    agree = check["embed_rel_diff"] <= 1e-5
    print(f"  agreement (max|diff| / max|value| <= 1e-5): {'OK' if agree else 'MISMATCH'}")
    print(
        f"\ntorch.mm {matmul['n']}x{matmul['n']} fp32: median {matmul['median_s'] * 1e3:.1f} ms -> "
        f"{matmul['gflops']:.1f} GFLOP/s (best {matmul['best_gflops']:.1f}), cpu/wall {matmul['cpu_utilisation']:.2f}\n"
    )

    head = (
        f"{'callable':31s} {'bands':>5s} {'ms/batch':>9s} {'min ms':>9s} {'img/s':>7s} {'GFLOP':>7s} "
        f"{'GFLOP/s':>7s} {'cpu/wall':>8s} {'peak +MB':>8s} {'cold +MB':>8s}"
    )
    print(head)
    print("-" * len(head))
    for task, label in CALLABLES:
        r = results[task]
        med = r["median_s"]
        r["images_per_s"] = args.batch / med
        r["gflops_per_s"] = r["flops"] / med / 1e9
        print(
            f"{label:31s} {r['channels']:5d} {med * 1e3:9.1f} {r['min_s'] * 1e3:9.1f} {r['images_per_s']:7.2f} "
            f"{r['flops'] / 1e9:7.1f} {r['gflops_per_s']:7.1f} {r['cpu_utilisation']:8.2f} "
            f"{_fmt_mb(r['peak_increase_steady_bytes'])} {_fmt_mb(r['peak_increase_cold_bytes'])}"
        )
    an = check["flops_analytic_batch"]
    print(
        f"\nms/batch: median of the timed repeats after warm-up. GFLOP: per batch, {check['flops_method']}; "
        f"analytic 2*MACs: ours full {an['full_ours'] / 1e9:.1f}, timm {an['full_timm'] / 1e9:.1f}, "
        f"C-band embedding {an['embed'] / 1e9:.2f}.\n"
        f"cpu/wall: process CPU time / wall time over the timed repeats (about --threads={args.threads} when the "
        f"cores are free).\n"
        f"peak +MB: steady-state peak RSS increase of one call over the post-warm-up baseline "
        f"({results['embed_ours']['memory_method']}); cold +MB: ru_maxrss increase of the process's first call "
        f"(includes one-time library buffers). 1 MB = 1e6 bytes.\n"
    )

    def mem(task: str) -> int | None:
        return results[task]["peak_increase_steady_bytes"]

    mem_ratio = mem("embed_ours") / mem("embed_ref") if mem("embed_ours") is not None and mem("embed_ref") else None
    targets = [
        ("embedding speed-up ours vs ref", results["embed_ref"]["median_s"] / results["embed_ours"]["median_s"],
         ">=", 3.0, "3x"),
        ("embedding peak memory ours/ref", mem_ratio, "<=", 1 / 12, "1/12"),
        ("full encoder speed-up ours vs ref", results["full_ref"]["median_s"] / results["full_ours"]["median_s"],
         ">=", 1.0, "1.0x"),
        ("throughput ours (12 bands) / timm (3 bands)",
         results["full_ours"]["images_per_s"] / results["full_timm"]["images_per_s"], ">=", 0.95, "0.95"),
        ("encoder GFLOP/s / matmul GFLOP/s", results["full_ours"]["gflops_per_s"] / matmul["gflops"],
         ">=", 0.9, "0.9"),
    ]  # fmt: skip
    print(f"{'target':45s} {'measured':>9s} {'goal':>8s}  result")
    print("-" * 72)
    target_rows = []
    for name, value, op, goal, goal_s in targets:
        ok = value is not None and (value >= goal if op == ">=" else value <= goal)
        shown = "n/a" if value is None else f"{value:.3f}"
        print(f"{name:45s} {shown:>9s} {op + ' ' + goal_s:>8s}  {'PASS' if ok else 'FAIL'}")
        target_rows.append({"target": name, "value": value, "op": op, "goal": goal, "pass": bool(ok)})
    print(
        f"{'numerical agreement (a) vs (b), relative':45s} {check['embed_rel_diff']:9.1e} {'<= 1e-5':>8s}  "
        f"{'PASS' if agree else 'FAIL'}"
    )
    ratio_best = results["full_ours"]["gflops_per_s"] / matmul["best_gflops"]
    print(f"(encoder GFLOP/s / best single matmul GFLOP/s: {ratio_best:.3f})")
    utils = {"matmul": matmul["cpu_utilisation"], **{t: results[t]["cpu_utilisation"] for t, _ in CALLABLES}}
    low = {t: u for t, u in utils.items() if u < 0.8 * args.threads}
    if args.threads > 1 and low:
        print(
            "\nWARNING: cpu/wall below 0.8 x threads for "
            + ", ".join(f"{t} ({u:.2f})" for t, u in low.items())
            + ": other processes probably competed for the cores (or the inputs are too small to use every "
            "thread, as with --quick); the timings and time ratios above are then unreliable."
        )
    if load_end is not None:
        print(f"\nload average at end: {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}")
    print(f"total wall time {time.perf_counter() - t_start:.0f} s")

    if args.json:
        payload = {
            "config": {k: v for k, v in vars(args).items() if not k.startswith("_")},
            "environment": {
                "torch": torch.__version__,
                "python": platform.python_version(),
                "cpu": cpu,
                "cpu_count": os.cpu_count(),
                "loadavg_start": load_start,
                "loadavg_end": load_end,
            },
            "check": check,
            "matmul": matmul,
            "results": results,
            "targets": target_rows,
            "numerical_agreement": agree,
            "cpu_utilisation": utils,
            "contended": bool(args.threads > 1 and low),
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(payload, f, indent=2)
        print(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
