"""Helpers shared by the benchmark scripts: timing medians, JSON + Markdown table output."""
import json
import platform
import statistics
import time
from pathlib import Path

import keyboard_lm  # noqa: F401  (before TensorFlow loads: the same CPU kernels as the kblm command)

RESULTS = Path(__file__).with_name("results")


def median_rate(work, units_per_call, repeats=5, calls_per_repeat=20, warmup=5):
    """Median over ``repeats`` of units/second, each repeat timing ``calls_per_repeat`` calls."""
    for _ in range(warmup):
        work()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls_per_repeat):
            work()
        rates.append(units_per_call * calls_per_repeat / (time.perf_counter() - start))
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates), "repeats": repeats}


def _cpuinfo():
    """(model name, set of flags) from /proc/cpuinfo (x86 ``flags``, ARM ``Features``); the
    platform's processor name and no flags elsewhere."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() in ("flags", "Features"):
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return model, flags


def cpu():
    """The CPU's model name and the vector extensions that matter for TensorFlow and LiteRT."""
    model, flags = _cpuinfo()
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "neon", "asimd")
    return {"model": model, "vector_extensions": [f for f in wanted if f in flags]}


def cpu_line():
    """One line for a table's notes: the CPU model, its cores and every vector extension it has
    among avx*, fma*, amx*, sve*, neon/asimd (not only ``cpu()``'s short list), and which of
    AVX-512 / AMX an x86 CPU lacks, e.g. ``AMD EPYC, 2 cores, avx avx2 fma (no AVX-512, no AMX)``."""
    import os

    model, flags = _cpuinfo()
    vector = sorted(f for f in flags if f.startswith(("avx", "fma", "amx", "sve")) or f in ("neon", "asimd"))
    lacks = [name for name, prefix in (("AVX-512", "avx512"), ("AMX", "amx")) if not any(f.startswith(prefix) for f in vector)]
    missing = f" (no {', no '.join(lacks)})" if lacks and any(f.startswith("avx") for f in vector) else ""
    return f"{model}, {os.cpu_count()} cores, {' '.join(vector) or 'no vector extensions listed'}{missing}"


def machine():
    import os

    return {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine(),
            "cpu": cpu()}


def format_number(value):
    """Three significant digits for small values, thousands separators for large ones."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def write_results(name, rows, columns, extra=None, notes=None):
    """Writes benchmarks/results/NAME.json and NAME.md (a Markdown table, then ``notes``, one
    paragraph each, if given); returns the Markdown."""
    RESULTS.mkdir(exist_ok=True)
    payload = {"benchmark": name, "machine": machine(), "rows": rows, **(extra or {})}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    header = "| " + " | ".join(title for _, title in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    lines = [header, rule]
    for row in rows:
        cells = []
        for key, _ in columns:
            value = row.get(key, "")
            cells.append(format_number(value) if isinstance(value, float) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    if notes:
        table += "\n\n" + "\n\n".join(notes)
    (RESULTS / f"{name}.md").write_text(table + "\n")
    return table
