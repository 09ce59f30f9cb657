"""``kblm inspect``: what a bundle holds, verified. numpy + ai_edge_litert only."""
import collections
import struct

from data_pipeline.errors import KblmError
from keyboard_lm.phone.bundle import load_bundle


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


def _at(mapping, *keys):
    """mapping[k1][k2]... or None where the manifest does not record it."""
    for key in keys:
        if not isinstance(mapping, dict) or key not in mapping:
            return None
        mapping = mapping[key]
    return mapping


def _number(value, spec):
    """``value`` formatted by ``spec`` if it is a number; "?" if it is absent or not one."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, spec)
    return "?" if value is None else str(value)


def describe(path):
    """The bundle's manifest, signature, engine options (strip size: docs/engine.md §3), sizes,
    ops and metrics, after verifying it all (load_bundle). The informational parts
    (parameters, run, ops, metrics) are printed as far as the manifest records them."""
    bundle = load_bundle(path)  # verifies every field, checksum, version and the model's signature
    m = bundle.manifest
    signature, tokenizer = m["signature"], m["tokenizer"]
    options = ", ".join(f"{key}={value}" for key, value in tokenizer.items() if key != "spec_version")
    lines = [f"bundle {path}: format {m['format_version']}, checksums OK",
             f"quantization {m['quantization']}, {_number(m.get('parameters'), ',')} parameters, tokenizer spec "
             f"{tokenizer['spec_version']} ({options or 'default options'}), "
             f"vocabulary {signature['vocabulary_size']:,}",
             f"engine: strip of {bundle.strip_size} words"
             + ("" if _at(m, "engine", "strip_size") is not None else " (default: the manifest sets no engine.strip_size)")
             + f", sentence context {m.get('sentence_context', 'reset')}"]
    lexicon = m.get("lexicon")
    lines.append(f"lexicon: {lexicon['words']:,} words outside the vocabulary (format {lexicon['format_version']}"
                 + (f"; {' + '.join(map(str, lexicon['sources']))}" if isinstance(lexicon.get("sources"), list) else "")
                 + f"), {m['files']['lexicon.tsv.gz']['bytes']:,} bytes, checked" if isinstance(lexicon, dict)
                 else "lexicon: none (the strip offers vocabulary words only)")
    adapter = bundle.adapter_block
    lines.append(f"on-device training: signature train, adapter rank {adapter['rank']} on {adapter['feature_size']} "
                 f"features, windows of {adapter['window']} tokens, {adapter['optimizer']['name']} "
                 f"(docs/engine.md §18; kblm adapt)" if adapter else
                 "on-device training: none (no train signature; kblm export --adapter-rank > 0 adds one)")
    if adapter:
        general = adapter.get("general")
        lines.append(f"forgetting guard: {general['messages']:,} general messages, "
                     f"{m['files'][general['file']]['bytes']:,} bytes, checked (docs/engine.md §18.3)" if general else
                     "forgetting guard: none (no general sample; kblm export --general-messages > 0 adds one)")
    if isinstance(m.get("run"), dict):
        corpus = _at(m, "run", "corpus", "name")
        lines.append(f"from run {_at(m, 'run', 'path') or '?'}" + (f" (corpus {corpus})" if corpus else ""))
    else:
        lines.append("from run: not recorded")
    lines += ["", f"signature {signature['name']}:"]
    for kind in ("inputs", "outputs"):
        lines.append(f"  {kind}: " + ", ".join(f"{t['name']} {t['dtype']}{t['shape']}" for t in signature[kind]))
    lines += ["", "files:"]
    lines += [f"  {name:<14} {info['bytes']:>10,} bytes  sha256 {info['sha256'][:16]}…" for name, info in m["files"].items()]
    try:
        rows, total = weight_buffers(bundle.model_path)
    except (struct.error, ValueError, IndexError, TypeError, AttributeError, UnicodeDecodeError) as e:
        raise KblmError(f"{bundle.names('model.tflite')}: its flatbuffer cannot be read ({e})") from None
    lines += ["", f"weights: {total:,} bytes in constant buffers; largest:"]
    lines += [f"  {size:>10,}  {dtype:<8} {', '.join(names)[:70]}" for size, names, dtype in rows]
    ops = m.get("ops")
    lines += ["", "ops: " + (", ".join(f"{op} x{count}" for op, count in ops.items())
                             if isinstance(ops, dict) and ops else "not recorded")]
    metrics = m.get("metrics")
    if not isinstance(metrics, dict):
        return "\n".join(lines + ["", "metrics: not recorded"])
    lines += ["", f"measured on {metrics.get('held_out', '?')}:"]
    for key in ("keras_float32", "tflite"):
        r = metrics.get(key)
        if not isinstance(r, dict):
            lines.append(f"  {key:<14} not recorded")
            continue
        lines.append(f"  {key:<14} perplexity {_number(r.get('perplexity'), '8.2f')}  top-1 {_number(r.get('top1'), '.2%')}"
                     f"  top-3 {_number(r.get('top3'), '.2%')}  ({_number(r.get('tokens'), ',')} tokens)")
    if "top3_relative_change" in metrics or "tolerance" in metrics:
        lines.append(f"  top-3 relative change {_number(metrics.get('top3_relative_change'), '+.2%')} "
                     f"(tolerance {_number(metrics.get('tolerance'), '.0%')}{', forced' if metrics.get('forced') else ''})")
    return "\n".join(lines)
