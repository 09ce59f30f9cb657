"""``personalize_many``: one personalized run per user of a users directory.

Input: a base run, a directory with one file or subdirectory per user, the options.
Output: ``out_root/USER/`` per user (see ``personalize``), ``summary.json`` and
``summary.md``. Users run in parallel processes (spawned: TensorFlow does not survive a
fork), or as tasks on a Ray cluster (cluster.py); either way users already done with the
same options are skipped, so a batch that stopped resumes, and one user's failure is a row
of the summary, not the end of the batch.
"""
import dataclasses
import json
import shutil
from pathlib import Path

from data_pipeline.errors import KblmError
from data_pipeline.textio import atomic_write_text
from keyboard_lm.personalize.options import PersonalizeOptions
from keyboard_lm.personalize.report import format_summary, summary_row
from keyboard_lm.personalize.single import personalize


def user_sources(users_dir):
    """{user name: file or directory} for each non-hidden entry of ``users_dir``."""
    users_dir = Path(users_dir)
    if not users_dir.is_dir():
        raise KblmError(f"{users_dir}: not a directory (give one file or subdirectory per user)")
    users = {}
    for entry in sorted(users_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        name = entry.stem if entry.is_file() else entry.name
        if name in users:
            raise KblmError(f"{entry}: user name {name!r} is used twice in {users_dir}")
        users[name] = entry
    if not users:
        raise KblmError(f"{users_dir}: no users (no files or subdirectories)")
    return users


def run_one_user(arguments):
    """``personalize(**arguments)`` quietly; a failure is returned as {"error": ...}, not raised."""
    try:
        return personalize(**arguments, progress=False)
    except KblmError as error:
        return {"error": str(error)}
    except Exception as error:  # one user's failure must not stop the batch: reported, not raised
        return {"error": f"{type(error).__name__}: {error}"}


def _run_in_pool(todo, jobs, arguments):
    """Yields (name, result) as users finish, ``jobs`` spawned processes at a time."""
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # TensorFlow does not survive fork
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context) as pool:
        futures = {pool.submit(run_one_user, dict(arguments, texts=source, out=out)): name
                   for name, source, out in todo}
        for future in concurrent.futures.as_completed(futures):
            try:
                yield futures[future], future.result()
            except concurrent.futures.process.BrokenProcessPool as error:  # a worker was killed (OOM?)
                yield futures[future], {"error": f"its process died ({error}); rerun the batch to retry"}


def personalize_many(base, users_dir, out_root, options=PersonalizeOptions(), jobs=1, general=None,
                     cache_dir=None, progress=True, cluster=None, task_cpus=1, task_memory_gb=2.0):
    """One personalized run per user under ``out_root``; returns the summary rows.
    ``cluster``: None (a local process pool of ``jobs``), "ray" or "ray:ADDRESS" (cluster.py)."""
    import multiprocessing

    from data_pipeline.progress import progress as tqdm

    from keyboard_lm.training.run import load_run_config

    load_run_config(base)  # a bad base fails once, before any process starts
    users = user_sources(users_dir)
    out_root = Path(out_root)
    rows, todo = {}, []
    for name, source in users.items():
        if finished(out_root / name, base, options):
            report = json.loads((out_root / name / "report.json").read_text())
            rows[name] = {"user": name, "status": "done earlier", **summary_row(report)}
        else:
            todo.append((name, source, out_root / name))
    # A cluster is joined (or refused) before anything is exported or written; not at all if
    # every user is done.
    with _engine(cluster if todo else None) as ray:
        out_root.mkdir(parents=True, exist_ok=True)
        base_bundle = None
        if todo and options.quantize and options.ksr_limit:  # exported once, shared by every user's KSR
            from export.exporter import export_run

            base_bundle = out_root / f".base-bundle-{options.quantize}"
            if not _exported_from(base_bundle, base):  # missing, or made from another (state of the) base
                export_run(base, options.quantize, base_bundle, cache_dir=cache_dir)
        for stale in out_root.glob(".*.tmp"):  # left by a batch that was killed mid-user
            shutil.rmtree(stale, ignore_errors=True)
        if ray is None:
            threads = options.threads or max(1, (multiprocessing.cpu_count() // max(jobs, 1)))
            arguments = dict(base=base, options=dataclasses.replace(options, threads=threads), general=general,
                             base_bundle=base_bundle, cache_dir=cache_dir)
            results = _run_in_pool(todo, jobs, arguments)
        else:
            from keyboard_lm.personalize.cluster import run_on_ray
            from keyboard_lm.personalize.single import general_messages

            threads = options.threads or max(1, int(task_cpus))
            results = run_on_ray(ray, todo, base, dataclasses.replace(options, threads=threads),
                                 general_messages(base, general, options.general_limit, cache_dir), base_bundle,
                                 cache_dir, task_cpus, task_memory_gb)
        for name, result in tqdm(results, total=len(todo), desc="users", unit=" user", disable=not progress):
            if "error" in result:
                rows[name] = {"user": name, "status": "failed", "error": result["error"]}
            else:
                rows[name] = {"user": name, "status": "personalized", **summary_row(result)}
    summary = [rows[name] for name in users]
    atomic_write_text(out_root / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out_root / "summary.md", format_summary(summary) + "\n")
    return summary


def _engine(cluster):
    """A context giving None (the local pool) or the connected ``ray`` module."""
    import contextlib

    if cluster is None:
        return contextlib.nullcontext(None)
    from keyboard_lm.personalize.cluster import connected, parse_cluster

    return connected(parse_cluster(cluster))


def _exported_from(bundle_dir, run):
    """True if the bundle was exported from the run as it is now (same config and best model)."""
    import hashlib

    from keyboard_lm.training.run import RunPaths

    try:
        source = json.loads((Path(bundle_dir) / "manifest.json").read_text())["run"]
    except (OSError, ValueError, KeyError):
        return False
    paths = RunPaths(run)
    best = json.loads(paths.best_record.read_text()) if paths.best_record.exists() else None
    return (source.get("config_sha256") == hashlib.sha256(paths.config.read_bytes()).hexdigest()
            and source.get("best") == best)


def finished(out, base, options):
    """True if ``out`` holds a finished personalization of ``base`` with these options."""
    try:
        config = json.loads((Path(out) / "config.json").read_text())["personalization"]
        json.loads((Path(out) / "report.json").read_text())
    except (OSError, ValueError, KeyError):
        return False
    wanted = {k: v for k, v in dataclasses.asdict(options).items() if k != "threads"}
    # Options added since, as runs made before them behaved (a run that finished without the
    # fallback never needed it).
    older = {"dropout": None, "final_pass": False, "quantize_fallback": "float16", "paragraphs": False,
             "replace_bad_bytes": False, "max_forgetting": None}
    had = {k: v for k, v in {**older, **config["options"]}.items() if k != "threads"}
    return config["base"] == str(base) and had == wanted
