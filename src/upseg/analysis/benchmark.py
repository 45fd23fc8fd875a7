"""Forward+backward time (and, on CUDA, peak memory) of every upsampler at decoder shapes.

For each shape ``C_in→C_out at H×W`` and each variant (every registered upsampler; ``direct`` once per ``impl``; on
request ``carafe`` and ``fade`` once per reassembly path, :func:`reassembly_variants`) one
step is ``y = up(x)`` on ``x`` of ``N×C_in×H×W`` → ``N×C_out×sH×sW`` followed by the gradients of ``⟨y, g⟩``
w.r.t. ``x`` and every parameter (as in a decoder, the input needs its gradient too). The time is the median over
``repeats`` steps after ``warmup`` unmeasured ones; the variants take turns step by step, so that a slow spell of a
shared machine falls on all of them alike. CPU steps are timed with ``time.perf_counter`` (wall clock) and, as
``cpu_ms``, with ``time.process_time`` (CPU time of all of this process's threads, which another job's load on the
same cores barely changes), of which ``sys_ms`` is kernel time (from ``getrusage``; mostly the zeroing of freshly
mapped pages for large tensors, which the allocator returns to the system after every step); CUDA steps with CUDA
events. Each row's ``ratio`` is its median wall time over that of ``transpose`` (``nn.ConvTranspose2d``) at the same
shape, ``cpu_ratio`` likewise for CPU time.

Cost (:mod:`upseg.analysis.cost`): ``parameters``; ``gflops``, the FLOPs of one forward pass; ``peak_mib``, the peak
of the tensors one forward+backward step creates (outputs, saved activations, gradients; not inputs or parameters), on
every device; on CUDA also ``cuda_peak_mib``, ``torch.cuda.max_memory_allocated`` over one step (inputs and parameters
included); on the CPU on request (``resident``) ``rss_mib``, the peak resident memory of a fresh process that runs the
step (:func:`process_peak_rss_mib`: what the allocator takes from the system, torch's own footprint included). An
upsampler that takes a guide (``fade``) gets one of ``C_out`` channels at the output resolution, as a
U-Net skip has, and its gradient is taken too.

:func:`unet_throughput` times whole training steps (forward, cross-entropy, backward, AdamW) of the U-Net with each
upsampler as its decoder: images per second, median over steps.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from upseg.analysis.cost import forward_flops, parameter_count, peak_tensor_bytes
from upseg.models import build_network
from upseg.upsample import UPSAMPLERS, build_upsampler, needs_guide
from upseg.upsample.ops.direct_conv import IMPLS
from upseg.upsample.ops.reassembly import IMPLS as REASSEMBLY_IMPLS

BASELINE = "transpose"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp64": torch.float64}


@dataclass(frozen=True)
class Shape:
    """One decoder upsampling: ``in_channels → out_channels`` at ``size×size`` input."""

    in_channels: int
    out_channels: int
    size: int

    def __str__(self) -> str:
        return f"{self.in_channels}→{self.out_channels} @ {self.size}²"


DECODER_SHAPES = (Shape(512, 256, 32), Shape(256, 128, 64), Shape(128, 64, 128), Shape(64, 32, 256))


@dataclass(frozen=True)
class Variant:
    """An upsampler as benchmarked: registry name and options, shown as ``label``."""

    label: str
    name: str
    options: tuple[tuple[str, str], ...] = ()


@dataclass
class Row:
    """One variant at one shape."""

    variant: str
    shape: str
    batch: int
    dtype: str
    device: str
    median_ms: float
    times_ms: list[float]
    cpu_ms: float | None
    sys_ms: float | None
    peak_mib: float | None
    parameters: int | None = None
    gflops: float | None = None
    cuda_peak_mib: float | None = None
    ratio: float | None = None
    cpu_ratio: float | None = None
    rss_mib: float | None = None  # peak resident memory of a fresh process running this step (CPU, on request)


def default_variants() -> list[Variant]:
    """Every registered upsampler, with ``direct`` once per ``impl``."""
    variants = []
    for name in sorted(UPSAMPLERS):
        if name == "direct":
            variants.extend(Variant(f"direct[{impl}]", name, (("impl", impl),)) for impl in IMPLS)
        else:
            variants.append(Variant(name, name))
    return variants


def reassembly_variants() -> list[Variant]:
    """CARAFE and FADE once per forced reassembly path (``carafe[unfold]``, the first implementation, ``carafe[torch]``,
    ``carafe[triton]``, likewise for ``fade``), for before/after tables: not in the default run, where ``carafe`` and
    ``fade`` take ``impl="auto"``; pick them with ``--upsamplers``."""
    forced = [impl for impl in REASSEMBLY_IMPLS if impl != "auto"]
    return [Variant(f"{name}[{impl}]", name, (("impl", impl),)) for name in ("carafe", "fade") for impl in forced]


def known_variants() -> list[Variant]:
    """Every variant a label can name: the default ones and the reassembly paths."""
    return default_variants() + reassembly_variants()


def parse_shape(text: str) -> Shape:
    """``"512x256@32"`` → ``Shape(512, 256, 32)``."""
    channels, _, size = text.partition("@")
    in_channels, _, out_channels = channels.partition("x")
    try:
        return Shape(int(in_channels), int(out_channels), int(size))
    except ValueError:
        raise ValueError(f"shape must look like C_inxC_out@H (e.g. 512x256@32), got {text!r}") from None


def _kernel_seconds() -> float | None:
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


Timing = tuple[float, float | None, float | None]  # wall, CPU and kernel milliseconds


def _timer(device: torch.device) -> Callable[[Callable[[], object]], Timing]:
    """A function that runs a step and returns its (wall, CPU, kernel) durations in milliseconds; the last two are
    None on CUDA."""
    if device.type == "cuda":

        def cuda_time(step: Callable[[], object]) -> Timing:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            torch.cuda.synchronize(device)
            return start.elapsed_time(end), None, None

        return cuda_time

    def cpu_time(step: Callable[[], object]) -> Timing:
        wall, cpu, kernel = time.perf_counter(), time.process_time(), _kernel_seconds()
        step()
        wall, cpu = (time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3
        kernel_after = _kernel_seconds()
        return wall, cpu, None if kernel is None or kernel_after is None else (kernel_after - kernel) * 1e3

    return cpu_time


def _step(module: nn.Module, args: tuple[Tensor, ...], grad: Tensor) -> Callable[[], object]:
    inputs = (*args, *module.parameters())
    return lambda: torch.autograd.grad(module(*args), inputs, grad)


def _cuda_peak_mib(step: Callable[[], object], device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**20


def _step_inputs(
    shape: Shape, batch: int, dtype: torch.dtype, device: torch.device, scale_factor: int
) -> tuple[Tensor, Tensor, Tensor]:
    """The input ``x``, a guide at the output resolution and the output gradient, the same for every variant."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, shape.in_channels, shape.size, shape.size, generator=generator)
    x = x.to(device=device, dtype=dtype).requires_grad_(True)
    out_size = shape.size * scale_factor
    guide = torch.randn(batch, shape.out_channels, out_size, out_size, generator=generator)
    guide = guide.to(device=device, dtype=dtype).requires_grad_(True)
    grad = torch.randn(batch, shape.out_channels, out_size, out_size, generator=generator).to(device, dtype)
    return x, guide, grad


def _variant_step(
    variant: Variant, shape: Shape, inputs: tuple[Tensor, Tensor, Tensor], scale_factor: int
) -> tuple[Callable[[], object], nn.Module, tuple[Tensor, ...]]:
    """One forward+backward step of ``variant`` on ``inputs``, its module and the arguments it takes."""
    x, guide, grad = inputs
    torch.manual_seed(0)
    options = dict(variant.options)
    guided = needs_guide(variant.name)
    if guided:
        options["guide_channels"] = shape.out_channels
    module = build_upsampler(variant.name, shape.in_channels, shape.out_channels, scale_factor, **options)
    module = module.to(device=x.device, dtype=x.dtype)
    args = (x, guide) if guided else (x,)
    return _step(module, args, grad), module, args


def _peak_rss_in_this_process(
    shape: Shape, variant: Variant, batch: int, dtype_name: str, scale_factor: int, steps: int
) -> float:
    """Run ``steps`` CPU steps here and return this process's resident high-water mark in MiB."""
    dtype = DTYPES[dtype_name]
    inputs = _step_inputs(shape, batch, dtype, torch.device("cpu"), scale_factor)
    step, _, _ = _variant_step(variant, shape, inputs, scale_factor)
    for _ in range(steps):
        step()
    return resident_high_water_mib()


def resident_high_water_mib() -> float:
    """This process's peak resident memory so far, in MiB."""
    # VmHWM belongs to this process's own address space; getrusage's ru_maxrss would also count the parent's
    # resident memory at fork time, which Linux carries over the exec (a benchmark parent holds gigabytes).
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, bytes on macOS: rough there


def process_peak_rss_mib(
    shape: Shape, variant: Variant, *, batch: int, dtype: torch.dtype, scale_factor: int = 2, steps: int = 2
) -> float:
    """The peak resident memory (MiB) of a fresh Python process that imports torch, builds ``variant`` and its inputs
    and runs ``steps`` forward+backward steps on the CPU: what the allocator really takes from the system, including
    torch's own footprint (the same in every process, so differences between variants are theirs)."""
    dtype_name = next(name for name, value in DTYPES.items() if value == dtype)
    arguments = json.dumps([asdict(shape), asdict(variant), batch, dtype_name, scale_factor, steps])
    code = (
        "import json, sys; from upseg.analysis.benchmark import Shape, Variant, _peak_rss_in_this_process as peak; "
        "s, v, *rest = json.loads(sys.argv[1]); "
        "v['options'] = tuple(map(tuple, v['options'])); print(peak(Shape(**s), Variant(**v), *rest))"
    )
    result = subprocess.run([sys.executable, "-c", code, arguments], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the resident-memory process of {variant.label} failed: {result.stderr.strip()[-2000:]}")
    return float(result.stdout.strip().splitlines()[-1])


def benchmark_shape(
    shape: Shape,
    variants: Sequence[Variant],
    *,
    batch: int,
    dtype: torch.dtype,
    device: torch.device,
    repeats: int,
    warmup: int = 1,
    scale_factor: int = 2,
    resident: bool = False,
) -> list[Row]:
    """One row per variant at ``shape``: median forward+backward time over ``repeats`` steps, taken in turns; with
    ``resident`` (CPU only) also each variant's peak resident memory in a fresh process."""
    inputs = _step_inputs(shape, batch, dtype, device, scale_factor)
    steps, costs = {}, {}
    for variant in variants:
        step, module, args = _variant_step(variant, shape, inputs, scale_factor)
        steps[variant.label] = step
        costs[variant.label] = (parameter_count(module), forward_flops(module, *args) / 1e9)

    timer = _timer(device)
    for step in steps.values():
        for _ in range(warmup):
            timer(step)
    times: dict[str, list[Timing]] = {label: [] for label in steps}
    for _ in range(repeats):
        for label, step in steps.items():
            times[label].append(timer(step))
    rows = []
    for label, step in steps.items():
        cpu = [t[1] for t in times[label] if t[1] is not None]
        kernel = [t[2] for t in times[label] if t[2] is not None]
        rows.append(
            Row(
                variant=label,
                shape=str(shape),
                batch=batch,
                dtype=str(dtype).removeprefix("torch."),
                device=str(device),
                median_ms=statistics.median(t[0] for t in times[label]),
                times_ms=[t[0] for t in times[label]],
                cpu_ms=statistics.median(cpu) if cpu else None,
                sys_ms=statistics.median(kernel) if kernel else None,
                peak_mib=peak_tensor_bytes(step) / 2**20,
                parameters=costs[label][0],
                gflops=costs[label][1],
                cuda_peak_mib=_cuda_peak_mib(step, device),
            )
        )
    if resident and device.type == "cpu":
        for row, variant in zip(rows, variants, strict=True):
            row.rss_mib = process_peak_rss_mib(shape, variant, batch=batch, dtype=dtype, scale_factor=scale_factor)
    baseline = next((row for row in rows if row.variant == BASELINE), None)
    for row in rows:
        if baseline is not None:
            row.ratio = row.median_ms / baseline.median_ms
            if row.cpu_ms is not None and baseline.cpu_ms:
                row.cpu_ratio = row.cpu_ms / baseline.cpu_ms
    return rows


def run_benchmark(
    shapes: Sequence[Shape] = DECODER_SHAPES,
    variants: Sequence[Variant] | None = None,
    *,
    batch: int = 16,
    dtypes: Sequence[torch.dtype] = (torch.float32,),
    device: torch.device | str = "cpu",
    repeats: int = 5,
    warmup: int = 1,
    scale_factor: int = 2,
    resident: bool = False,
    progress: Callable[[Row], None] | None = None,
) -> list[Row]:
    """Rows for every dtype × shape × variant (see module doc); ``progress`` is called with each row."""
    device = torch.device(device)
    variants = default_variants() if variants is None else variants
    rows = []
    for dtype in dtypes:
        for shape in shapes:
            for row in benchmark_shape(
                shape,
                variants,
                batch=batch,
                dtype=dtype,
                device=device,
                repeats=repeats,
                warmup=warmup,
                scale_factor=scale_factor,
                resident=resident,
            ):
                rows.append(row)
                if progress is not None:
                    progress(row)
    return rows


@dataclass
class ThroughputRow:
    """Training-step throughput of the U-Net with one upsampler as decoder."""

    variant: str
    batch: int
    size: int
    dtype: str
    device: str
    images_per_second: float
    step_ms: float
    parameters: int
    ratio: float | None = None  # throughput over that of ``transpose``


def unet_throughput(
    variants: Sequence[Variant] | None = None,
    *,
    batch: int = 16,
    size: int = 128,
    depth: int = 4,
    base_width: int = 32,
    num_classes: int = 21,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    repeats: int = 5,
    warmup: int = 2,
) -> list[ThroughputRow]:
    """Images/s of full training steps of ``UNet(depth, base_width)`` on ``batch×3×size×size`` per variant.

    ``dtype`` other than float32 runs the step under autocast (mixed precision, as ``trainer=gpu`` does).
    """
    device = torch.device(device)
    variants = default_variants() if variants is None else variants
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, 3, size, size, generator=generator).to(device)
    masks = torch.randint(0, num_classes, (batch, size, size), generator=generator).to(device)
    timer = _timer(device)
    steps, parameters = {}, {}
    for variant in variants:
        torch.manual_seed(0)
        decoder = {"name": variant.name, "options": dict(variant.options)}
        net = build_network("unet", num_classes, decoder, depth=depth, base_width=base_width).to(device)
        optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
        parameters[variant.label] = sum(p.numel() for p in net.parameters())

        def step(net: nn.Module = net, optimizer: torch.optim.Optimizer = optimizer) -> None:
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                loss = nn.functional.cross_entropy(net(images), masks)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        steps[variant.label] = step
    for step in steps.values():
        for _ in range(warmup):
            timer(step)
    times: dict[str, list[float]] = {label: [] for label in steps}
    for _ in range(repeats):  # in turns, as in benchmark_shape
        for label, step in steps.items():
            times[label].append(timer(step)[0])
    rows = []
    for label in steps:
        median_ms = statistics.median(times[label])
        rows.append(
            ThroughputRow(
                variant=label,
                batch=batch,
                size=size,
                dtype=str(dtype).removeprefix("torch."),
                device=str(device),
                images_per_second=batch / (median_ms / 1000),
                step_ms=median_ms,
                parameters=parameters[label],
            )
        )
    baseline = next((row for row in rows if row.variant == BASELINE), None)
    for row in rows:
        if baseline is not None:
            row.ratio = row.images_per_second / baseline.images_per_second
    return rows


def throughput_markdown(rows: Sequence[ThroughputRow]) -> str:
    """A markdown table of U-Net training throughput per upsampler."""
    lines = [
        "| decoder | dtype | images/s | step | vs transpose | parameters |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}×"
        lines.append(
            f"| {row.variant} | {row.dtype} | {row.images_per_second:.1f} | {row.step_ms:.0f} ms | {ratio} | "
            f"{row.parameters:,} |"
        )
    return "\n".join(lines) + "\n"


def to_markdown(rows: Sequence[Row], cpu_time: bool = False) -> str:
    """A markdown table: one line per variant, a ``time (ratio)`` column per shape and dtype; wall-clock time, or
    with ``cpu_time`` the process CPU time."""
    columns = list(dict.fromkeys((row.shape, row.dtype) for row in rows))
    variants = list(dict.fromkeys(row.variant for row in rows))
    cells = {(row.variant, row.shape, row.dtype): row for row in rows}
    several_dtypes = len({dtype for _, dtype in columns}) > 1
    header = [f"{shape} {dtype}" if several_dtypes else shape for shape, dtype in columns]
    lines = ["| upsampler | " + " | ".join(header) + " |", "| --- |" + " ---: |" * len(columns)]
    for variant in variants:
        values = []
        for shape, dtype in columns:
            row = cells.get((variant, shape, dtype))
            if row is None:
                values.append("")
                continue
            time_ms, ratio = (row.cpu_ms, row.cpu_ratio) if cpu_time else (row.median_ms, row.ratio)
            if time_ms is None:
                values.append("n/a")
                continue
            text = f"{time_ms:.1f} ms"
            if ratio is not None:
                text += f" ({ratio:.2f}×)"
            if cpu_time and row.sys_ms is not None:
                text += f", sys {row.sys_ms:.0f}"
            values.append(text)
        lines.append(f"| {variant} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def cost_markdown(rows: Sequence[Row]) -> str:
    """One markdown table per shape and dtype: parameters, forward GFLOPs, forward+backward time and its ratio to
    ``transpose``, and peak tensor memory per variant."""
    text = ""
    for shape, dtype in dict.fromkeys((row.shape, row.dtype) for row in rows):
        text += f"\n{shape}, {dtype}, batch {rows[0].batch}:\n\n"
        resident = any(row.rss_mib is not None for row in rows)
        text += "| upsampler | parameters | GFLOPs (fwd) | fwd+bwd | vs transpose | peak MiB |"
        text += " process RSS MiB |\n" if resident else "\n"
        text += "| --- | ---: | ---: | ---: | ---: | ---: |" + (" ---: |\n" if resident else "\n")
        for row in rows:
            if (row.shape, row.dtype) != (shape, dtype):
                continue
            ratio = "" if row.ratio is None else f"{row.ratio:.2f}×"
            parameters = "" if row.parameters is None else f"{row.parameters:,}"
            gflops = "" if row.gflops is None else f"{row.gflops:.2f}"
            peak = "" if row.peak_mib is None else f"{row.peak_mib:.0f}"
            text += f"| {row.variant} | {parameters} | {gflops} | {row.median_ms:.1f} ms | {ratio} | {peak} |"
            text += (" " + ("" if row.rss_mib is None else f"{row.rss_mib:.0f}") + " |\n") if resident else "\n"
    return text


def write_results(
    rows: Sequence[Row], out_dir: Path, meta: dict[str, object], throughput: Sequence[ThroughputRow] = ()
) -> tuple[Path, Path]:
    """``benchmark.json`` (``meta`` and every row) and ``benchmark.md`` (the tables) in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = out_dir / "benchmark.json", out_dir / "benchmark.md"
    content = {"meta": meta, "rows": [asdict(row) for row in rows], "unet": [asdict(row) for row in throughput]}
    json_path.write_text(json.dumps(content, indent=2) + "\n")
    text = ""
    if rows:
        text += "Wall-clock time, median, and its ratio to `transpose`:\n\n" + to_markdown(rows)
        text += "\nCost per upsampler: parameters, forward FLOPs, time and peak tensor memory of a step:\n"
        text += cost_markdown(rows)
    if any(row.cpu_ms is not None for row in rows):
        text += "\nProcess CPU time (user + sys), median, its ratio to `transpose`, and the sys (kernel) part:\n\n"
        text += to_markdown(rows, cpu_time=True)
    if throughput:
        text += "\nU-Net training steps per decoder (forward, loss, backward, AdamW):\n\n" + throughput_markdown(
            throughput
        )
    markdown_path.write_text(text)
    return json_path, markdown_path


def device_description(device: torch.device | str) -> str:
    """The GPU's name, or the CPU model from ``/proc/cpuinfo`` with the core and intra-op thread counts."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    threads = torch.get_num_threads()
    return f"{model} ({os.cpu_count()} cores), {threads} intra-op thread{'s' if threads != 1 else ''}"
