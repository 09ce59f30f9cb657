"""``kblm inspect``: what a bundle holds, verified. numpy + ai_edge_litert only."""
import collections

from export.bundle import load_bundle


def weight_buffers(model_path, top=8):
    """[(bytes, tensor names, dtype)] of the largest constant buffers of the .tflite."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(model_path))
    users = collections.defaultdict(set)
    types = {}
    for subgraph in model.subgraphs:
        for tensor in subgraph.tensors:
            name = tensor.name.decode() if isinstance(tensor.name, bytes) else tensor.name
            users[tensor.buffer].add(name)
            types[tensor.buffer] = flatbuffer_utils.type_to_name(tensor.type)
    sizes = [(len(buffer.data), index) for index, buffer in enumerate(model.buffers)
             if buffer.data is not None and len(buffer.data)]
    total = sum(size for size, _ in sizes)
    rows = [(size, sorted(users[index]), types.get(index, "?")) for size, index in sorted(sizes, reverse=True)[:top]]
    return rows, total


def describe(path):
    bundle = load_bundle(path)  # verifies every checksum and the format version
    m = bundle.manifest
    lines = [f"bundle {path}: format {m['format_version']}, checksums OK",
             f"quantization {m['quantization']}, {m['parameters']:,} parameters, tokenizer spec "
             f"{m['tokenizer']['spec_version']} (lowercase={m['tokenizer']['lowercase']}), "
             f"vocabulary {m['signature']['vocabulary_size']:,}",
             f"from run {m['run']['path']} (corpus {m['run']['corpus']['name']})", "",
             "signature step:"]
    for kind in ("inputs", "outputs"):
        lines.append(f"  {kind}: " + ", ".join(f"{t['name']} {t['dtype']}{t['shape']}" for t in m["signature"][kind]))
    lines += ["", "files:"]
    lines += [f"  {name:<14} {info['bytes']:>10,} bytes  sha256 {info['sha256'][:16]}…" for name, info in m["files"].items()]
    rows, total = weight_buffers(bundle.model_path)
    lines += ["", f"weights: {total:,} bytes in constant buffers; largest:"]
    lines += [f"  {size:>10,}  {dtype:<8} {', '.join(names)[:70]}" for size, names, dtype in rows]
    lines += ["", "ops: " + ", ".join(f"{op} x{count}" for op, count in m["ops"].items())]
    metrics = m["metrics"]
    lines += ["", f"measured on {metrics['held_out']}:"]
    for key in ("keras_float32", "tflite"):
        r = metrics[key]
        lines.append(f"  {key:<14} perplexity {r['perplexity']:8.2f}  top-1 {r['top1']:.2%}  top-3 {r['top3']:.2%}  "
                     f"({r['tokens']:,} tokens)")
    lines.append(f"  top-3 relative change {metrics['top3_relative_change']:+.2%} (tolerance {metrics['tolerance']:.0%}"
                 f"{', forced' if metrics['forced'] else ''})")
    return "\n".join(lines)
