"""Many users on a Ray cluster: ``kblm personalize --users DIR --cluster ray[:ADDRESS]``.

Input: the users still to do (name, text source, output folder), the base, the options.
Output: (name, result) pairs as users finish, the same results ``--jobs`` gives; each
user's run folder is written on this machine (temp folder, then renamed), whatever node
computed it.

How: each user is one Ray task asking ``task_cpus`` CPUs and ``task_memory_gb`` of memory.
What every task shares (the base run's files, the base bundle, the general messages, the
base corpus's tarball) is packed once into one tar in Ray's object store; a node unpacks it
once into its temp directory (a copy of this batch's own, removed at the end), so nodes need
no shared disk. A user's text travels with
their task (read when the task is submitted, so a folder that vanished is that user's
failure), and the finished run folder comes back as a tar. A task whose worker or node dies
is retried ``RETRIES`` times by Ray, then reported. Application errors are results, not
retries: the same bad text fails the same way everywhere. Without ADDRESS a local Ray starts
(and stops at the end); with one, the batch joins that running cluster.

Kept free of TensorFlow (the driver only packs, submits and unpacks); Ray is imported only
here, and only when ``--cluster`` is given.
"""
import contextlib
import hashlib
import io
import json
import os
import secrets
import shutil
import socket
import tarfile
import tempfile
from pathlib import Path

from data_pipeline.errors import KblmError

RETRIES = 2  # attempts after the first when a task's worker or node dies
CONNECT_SECONDS = 5  # to reach a cluster's address before giving up
BASE_FILES = ("config.json", "best.keras", "best.json", "metrics.json", "vocab")


def parse_cluster(spec):
    """``ray`` -> None (a local Ray), ``ray:ADDRESS`` -> ADDRESS; anything else is refused."""
    engine, _, address = spec.partition(":")
    if engine != "ray" or (spec.endswith(":") and not address):
        raise ValueError(f"{spec!r}: give ray (a local Ray) or ray:ADDRESS (a running cluster)")
    return address or None


def _import_ray():
    try:
        import ray
    except ImportError:
        raise KblmError("--cluster ray needs Ray: pip install 'keyboard-lm[cluster]'") from None
    return ray


def _check_reachable(address):
    """One line naming ``address`` if nothing answers there (before Ray tries for minutes)."""
    if address == "auto":
        return
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise KblmError(f"--cluster ray:{address}: give the head's HOST:PORT (as `ray start --head` printed it)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as error:
        raise KblmError(f"ray cluster {address}: unreachable ({(error.strerror or str(error)).lower()})") from None


@contextlib.contextmanager
def _environment(values):
    """``os.environ`` with ``values`` set for the block (what Ray's processes inherit)."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def connected(address):
    """Ray initialised for this batch (joined at ``address``, or a local Ray started), then shut down."""
    import logging

    ray = _import_ray()
    if address:
        _check_reachable(address)
    local_workers = {} if address else {"RAY_worker_niceness": "0"}  # see below
    try:
        # A local Ray's workers run the batch itself, as the pool's processes do: at the same
        # priority, not Ray's default nice 15, under which they starve whenever anything else
        # runs on the machine (measured: 1.26-1.54x --jobs 2's time on a shared machine). A
        # running cluster's own setting is left alone.
        with _environment(local_workers):
            ray.init(address=address, include_dashboard=False if not address else None, log_to_driver=False,
                     logging_level=logging.ERROR, configure_logging=True)
    except Exception as error:  # ConnectionError, an authentication error...: one line
        where = f"ray cluster {address}" if address else "a local Ray"
        raise KblmError(f"{where}: could not start or join ({str(error).splitlines()[0]})") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def pack(files):
    """A tar (bytes) of {name inside the tar: file or directory}; symbolic links are followed
    (a dangling one is an OSError here, not a surprise on the node)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", dereference=True) as tar:
        for name, path in files.items():
            tar.add(path, arcname=name)
    return buffer.getvalue()


def unpack(data, target):
    """Extracts the tar ``data`` into the new directory ``target`` (safe paths only)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        tar.extractall(target, filter="data")


def shared_package(base, base_bundle, general_messages, cache_dir):
    """(tar bytes, sha256) of what every task needs: the base, its bundle, general text, the corpus."""
    from data_pipeline.corpora import PACKAGES, fetch

    files = {f"base/{name}": Path(base) / name for name in BASE_FILES if (Path(base) / name).exists()}
    if base_bundle:
        files["base-bundle"] = Path(base_bundle)
    spec = json.loads((Path(base) / "config.json").read_text())["corpus"]["spec"]
    if spec in PACKAGES:  # a path-named corpus must be at that path on the nodes (a shared disk)
        tarball = fetch(spec, cache_dir)
        files[f"cache/{tarball.name}"] = tarball
    with tempfile.TemporaryDirectory() as scratch:
        general = Path(scratch) / "general.json"
        general.write_text(json.dumps(general_messages))
        files["general.json"] = general
        data = pack(files)
    return data, hashlib.sha256(data).hexdigest()


def _node_copy(package, copy_name):
    """The package unpacked in this node's temp directory (once per node and batch; racing
    tasks agree)."""
    root = Path(tempfile.gettempdir()) / copy_name
    if not root.exists():
        tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}-", suffix=".tmp"))
        unpack(package, tmp)
        try:
            os.rename(tmp, root)
        except OSError:  # another task on this node got there first
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def personalize_task(package, copy_name, name, source_name, source, options, recorded_as):
    """One user on a Ray worker: unpack, personalize, return the report and the run folder's tar
    (or {"error": ...}: an error of the task is a result, the same on any node, never retried)."""
    try:
        return _personalize_here(package, copy_name, name, source_name, source, options, recorded_as)
    except Exception as error:
        return {"error": f"{type(error).__name__}: {error}"}


def _personalize_here(package, copy_name, name, source_name, source, options, recorded_as):
    from keyboard_lm.personalize.many import run_one_user

    root = _node_copy(package, copy_name)
    # Inside the batch's copy: a worker killed mid-user leaves it to the batch's clean-up.
    with tempfile.TemporaryDirectory(dir=root, prefix="user-") as scratch:
        scratch = Path(scratch)
        unpack(source, scratch / "in")
        out = scratch / "out" / name
        result = run_one_user(dict(base=root / "base", texts=scratch / "in" / source_name, out=out, options=options,
                                   general=json.loads((root / "general.json").read_text()),
                                   base_bundle=root / "base-bundle" if (root / "base-bundle").exists() else None,
                                   cache_dir=root / "cache", recorded_as=recorded_as))
        if "error" in result:  # it names the user's and the base's own paths, not this node's copies
            for copy, original in ((scratch / "in" / source_name, recorded_as["texts"]), (root / "base", recorded_as["base"])):
                result["error"] = result["error"].replace(str(copy), original)
            return result
        return {"report": result, "run": pack({".": out})}


def _forget(copy_name):
    shutil.rmtree(Path(tempfile.gettempdir()) / copy_name, ignore_errors=True)


def run_on_ray(ray, todo, base, options, general_messages, base_bundle, cache_dir, task_cpus, task_memory_gb):
    """Yields (name, result) as users finish; ``todo``: [(name, source, out)]. A result is
    the report, or {"error": ...}; a finished run folder is already in place at ``out``."""
    from data_pipeline.textio import atomic_directory

    package, digest = shared_package(base, base_bundle, general_messages, cache_dir)
    # The nodes' copies are this batch's own: another batch of the same base on the same
    # nodes has its own, so neither removes what the other still reads.
    copy_name = f"kblm-ray-{digest[:16]}-{secrets.token_hex(4)}"
    shared = ray.put(package)
    task = ray.remote(personalize_task).options(
        num_cpus=task_cpus, memory=int(task_memory_gb * 2**30), max_retries=RETRIES, retry_exceptions=False,
        name="kblm-personalize")
    window = max(2, 2 * int(ray.cluster_resources().get("CPU", 1) // task_cpus))  # texts in flight
    pending, queue = {}, list(todo)
    try:
        while queue or pending:
            while queue and len(pending) < window:
                name, source, out = queue.pop(0)
                try:
                    text = pack({source.name: source})
                except OSError as error:  # the user's folder vanished since the batch listed it
                    yield name, {"error": f"{source}: {(error.strerror or str(error)).lower()}"}
                    continue
                recorded = {"base": str(base), "texts": str(source)}
                pending[task.remote(shared, copy_name, name, source.name, text, options, recorded)] = (name, out)
            if not pending:
                continue
            [done], _ = ray.wait(list(pending), num_returns=1)
            name, out = pending.pop(done)
            try:
                result = ray.get(done)
            except Exception as error:  # the worker or node died more than RETRIES times (errors of
                kind = type(error).__name__  # the task itself are results: personalize_task)
                yield name, {"error": f"its Ray worker died {RETRIES + 1} times ({kind}); rerun the batch to retry"}
                continue
            if "error" in result:
                yield name, result
                continue
            with atomic_directory(out) as tmp:  # the run folder appears whole or not at all
                unpack(result["run"], tmp)
            yield name, result["report"]
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        _forget_everywhere(ray, copy_name)


def _forget_everywhere(ray, copy_name):
    """Removes the unpacked package from every node still alive (best effort)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    forget = ray.remote(_forget)
    refs = [forget.options(num_cpus=0, max_retries=0, scheduling_strategy=NodeAffinitySchedulingStrategy(
                node["NodeID"], soft=False)).remote(copy_name) for node in ray.nodes() if node.get("Alive")]
    with contextlib.suppress(Exception):
        ray.get(refs, timeout=30)
