#!/usr/bin/env bash
# Every GPU check upseg has not been able to run on a CPU-only machine, in one go (docs/benchmarks.md, "GPU").
#   bash scripts/gpu_check.sh [OUT]        (default OUT: docs/benchmarks/gpu-<date>)
# Writes per check a folder under OUT and a log; stops at the first failure. About 10 minutes on one H100.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/benchmarks/gpu-$(date +%F)}
mkdir -p "$OUT"
QUIET=(trainer.enable_progress_bar=false trainer.enable_model_summary=false '~callbacks.rich_progress_bar')
python - <<'PY' | tee "$OUT/device.txt"
import lightning, torch
assert torch.cuda.is_available(), "no CUDA device: run this on a GPU machine"
print(torch.cuda.get_device_name(0), "| torch", torch.__version__, "| CUDA", torch.version.cuda, "| lightning", lightning.__version__)
PY
step() { echo "== $1"; shift; "$@" 2>&1 | tee -a "$OUT/log.txt" | tail -25; }

# 0. The reassembly's Triton kernels compiled on CUDA (CI runs the same checks under Triton's interpreter), then each
#    reassembly path of CARAFE and FADE timed against the others in fp32 and bf16.
step "triton kernels" python -m pytest -q tests/upsample/reassembly_triton_checks.py
step "reassembly paths" python scripts/benchmark.py --device cuda --dtypes fp32,bf16 --out "$OUT/reassembly" \
    --upsamplers 'transpose,carafe[unfold],carafe[torch],carafe[triton],fade[unfold],fade[torch],fade[triton]'
# 1. Layer benchmarks in fp32 and bf16 (peak memory from the allocator), and the U-Net training step.
step "layers" python scripts/benchmark.py --device cuda --dtypes fp32,bf16 --out "$OUT/layers"
step "unet 256" python scripts/benchmark.py --device cuda --no-layers --unet 256 --out "$OUT/unet"
# 2. Every upsampler on the GPU: float64 values against the CPU's, and compiled with inductor in bf16.
step "upsamplers" python - <<'PY'
import torch
from upseg.upsample import UPSAMPLERS, build_upsampler, needs_guide

for name in sorted(UPSAMPLERS):
    options = {"guide_channels": 3} if needs_guide(name) else {}
    layer = build_upsampler(name, 16, 8, 2, **options).double()
    x = torch.randn(2, 16, 24, 24, dtype=torch.float64)
    extra = (torch.randn(2, 3, 48, 48, dtype=torch.float64),) if needs_guide(name) else ()
    expected = layer(x, *extra)
    got = layer.cuda()(x.cuda(), *(t.cuda() for t in extra))
    torch.testing.assert_close(got.cpu(), expected)
    compiled = torch.compile(layer.float(), fullgraph=True)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = compiled(x.float().cuda(), *(t.float().cuda() for t in extra))
    out.float().square().mean().backward()
    print(f"{name}: float64 GPU = CPU, compiled bf16 forward/backward ok, output {tuple(out.shape)}")
PY
# 3. Training on the GPU: bf16 mixed precision, RunStats timed by CUDA events (no per-step synchronisation).
for decoder in transpose direct carafe dysample fade; do
    step "train $decoder" python scripts/train.py experiment=quickstart trainer=gpu decoder=$decoder "${QUIET[@]}" \
        hydra.run.dir="$OUT/train-$decoder"
done
# 4. direct compiled with inductor and channels_last: same loss curve as without, faster steps.
step "train direct compiled" python scripts/train.py experiment=quickstart trainer=gpu decoder=direct \
    model.compile=true model.channels_last=true "${QUIET[@]}" hydra.run.dir="$OUT/train-direct-compiled"
python - "$OUT" <<'PY' | tee "$OUT/summary.md"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
print("| run | test mIoU | test bIoU | train images/s | inference ms/image | peak MB |\n|---|---|---|---|---|---|")
for run in sorted(out.glob("train-*/metrics.json")):
    m = json.loads(run.read_text())
    print(f"| {run.parent.name} | {m['test/mIoU']:.4f} | {m['test/bIoU']:.4f} | {m['train_images_per_second']} "
          f"| {m['inference_ms_per_image']} | {m['peak_memory_mb']} |")
PY
