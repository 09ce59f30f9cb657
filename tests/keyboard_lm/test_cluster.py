"""kblm personalize --users DIR --cluster ray[:ADDRESS]: real Ray (a local one, and a head and
a worker node started here as separate `ray start` processes), real fine-tunes of the toy run.

Both tests share one xdist group: one Ray at a time on the machine."""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from keyboard_lm.cli import main
from tests.keyboard_lm.test_personalize import write_user

ray = pytest.importorskip("ray", reason="the cluster extra (ray) is not installed")
pytestmark = pytest.mark.xdist_group("ray")
ROOT = Path(__file__).resolve().parents[2]
KBLM = [sys.executable, "-m", "keyboard_lm.cli"]
TIMINGS = ("seconds_total", "peak_rss_mb", "finetune_seconds", "seconds")


@pytest.fixture(autouse=True)
def ray_token(monkeypatch):
    """Ray's token authentication with a token of this test's own (nothing written to ~/.ray),
    for the processes the tests start (Ray reads it when it is imported)."""
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")


def kblm(*args, env=None):
    return subprocess.run(KBLM + list(args), cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, **(env or {})})


def _figures(report):
    """The report without its timings (which no two runs share)."""
    if isinstance(report, dict):
        return {k: _figures(v) for k, v in report.items() if k not in TIMINGS and not k.endswith("_seconds")}
    return [_figures(v) for v in report] if isinstance(report, list) else report


def _users(root, names):
    root.mkdir()
    for seed, name in enumerate(names):
        write_user(root / f"{name}.txt", seed=seed)
    return root


def test_a_local_ray_gives_the_reports_of_the_process_pool(toy_run, tmp_path):
    users = _users(tmp_path / "users", ["ann"])
    (users / "gone").symlink_to(tmp_path / "removed-folder")  # a user whose folder vanished after listing
    (users / "binary.txt").write_bytes(b"\x7fELF\x00\x01" * 100)  # bad text: the same one-line error both ways
    common = ["personalize", "--base", str(toy_run), "--users", str(users), "--epochs", "1", "--ksr-limit", "20",
              "--quantize", "dynamic_int8", "--general-limit", "100", "--threads", "1", "--seed", "3"]
    assert main([*common, "--out", str(tmp_path / "pool"), "--jobs", "1"]) == 1  # "gone" and "binary" failed
    node_temp = Path(tempfile.mkdtemp(prefix="/tmp/kt"))  # the local Ray's temp directory (short: sockets)
    try:
        on_ray = kblm(*common, "--out", str(tmp_path / "ray"), "--cluster", "ray", env={"TMPDIR": str(node_temp)})
        assert not list(node_temp.glob("kblm-ray-*"))  # the node's copy of the base is gone
    finally:
        shutil.rmtree(node_temp, ignore_errors=True)
    assert on_ray.returncode == 1 and on_ray.stderr.splitlines()[-1] == "kblm: error: 2 of 3 users failed: binary, gone (see the summary)"
    summary = {row["user"]: row for row in json.loads((tmp_path / "ray" / "summary.json").read_text())}
    assert summary["gone"]["status"] == "failed" and summary["gone"]["error"].startswith(f"{users / 'gone'}: ")
    pool_summary = {row["user"]: row for row in json.loads((tmp_path / "pool" / "summary.json").read_text())}
    assert summary["binary"]["error"] == pool_summary["binary"]["error"]  # names the user's file, not a node's copy
    assert summary["binary"]["error"].startswith(f"{users / 'binary.txt'}: line 1")
    for name in ("ann",):
        assert summary[name]["status"] == "personalized"
        pool, on_ray = (json.loads((tmp_path / where / name / "report.json").read_text()) for where in ("pool", "ray"))
        assert _figures(on_ray) == _figures(pool) and on_ray["ksr"]["after"]["ksr"] > 0
        configs = [json.loads((tmp_path / where / name / "config.json").read_text())["personalization"]
                   for where in ("pool", "ray")]
        assert configs[0] == configs[1] and configs[1]["texts"] == str(users / f"{name}.txt")
        assert (tmp_path / "ray" / name / "bundle" / "manifest.json").exists()
    assert not list((tmp_path / "ray").glob(".*.tmp"))
    stamp = (tmp_path / "ray" / "ann" / "report.json").stat().st_mtime_ns
    (users / "gone").unlink()  # nothing left to do: resumes without starting Ray
    (users / "binary.txt").unlink()
    assert kblm(*common, "--out", str(tmp_path / "ray"), "--cluster", "ray").returncode == 0
    assert (tmp_path / "ray" / "ann" / "report.json").stat().st_mtime_ns == stamp


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session(pid):
    """The pids of the processes of the session ``pid`` leads (a `ray start` and all it spawned)."""
    out = subprocess.run(["ps", "-ww", "-eo", "pid=,sid=,args="], capture_output=True, text=True).stdout
    return {int(line.split()[0]): line.split(None, 2)[2] for line in out.splitlines()
            if len(line.split()) > 2 and int(line.split()[1]) == pid}


def _kill_session(pid):
    for member in _session(pid):
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _start_node(log, *args):
    """A `ray start --block` in a session of its own (so the whole node can be killed)."""
    ray_cli = Path(sys.executable).parent / "ray"
    return subprocess.Popen([str(ray_cli), "start", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                             "--disable-usage-stats", *args], stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _wait_for(condition, seconds, what):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_two_nodes_one_killed_mid_run_every_user_done_or_reported(toy_run, tmp_path):
    users = _users(tmp_path / "users", ["u1", "u2", "u3"])
    port = _free_port()
    temp = Path(f"/tmp/kr{secrets.token_hex(3)}")  # Ray's socket paths must stay short
    log = open(tmp_path / "nodes.log", "w")
    head = _start_node(log, "--head", f"--port={port}", f"--temp-dir={temp}", "--include-dashboard=false",
                       f"--ray-client-server-port={_free_port()}")
    worker = None
    try:
        address = f"127.0.0.1:{port}"
        _wait_for(lambda: subprocess.run([str(Path(sys.executable).parent / "ray"), "status", f"--address={address}"],
                                         capture_output=True).returncode == 0, 60, "the head node")
        worker = _start_node(log, f"--address={address}")
        _wait_for(lambda: "raylet" in " ".join(_session(worker.pid).values()), 60, "the worker node")
        time.sleep(3)  # registered with the head
        batch = subprocess.Popen(KBLM + ["personalize", "--base", str(toy_run), "--users", str(users), "--out",
                                         str(tmp_path / "out"), "--cluster", f"ray:{address}", "--epochs", "1",
                                         "--ksr-limit", "0", "--quantize", "none", "--general-limit", "100"],
                                 cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The moment a user's task runs on the worker node, the whole node dies (raylet, workers, all).
        _wait_for(lambda: any(args.startswith("ray::kblm-personalize") for args in _session(worker.pid).values()),
                  240, "a user's task on the worker node")
        _kill_session(worker.pid)
        out, err = batch.communicate(timeout=600)
    finally:
        for node in (worker, head):
            if node is not None:
                _kill_session(node.pid)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)
    summary = {row["user"]: row for row in json.loads((tmp_path / "out" / "summary.json").read_text())}
    assert sorted(summary) == ["u1", "u2", "u3"], (out, err)  # none lost
    for name, row in summary.items():
        assert row["status"] in ("personalized", "failed"), row
        if row["status"] == "personalized":
            assert (tmp_path / "out" / name / "report.json").exists()
        else:
            assert not (tmp_path / "out" / name).exists() and "Ray worker died" in row["error"]
    assert batch.returncode == (1 if any(r["status"] == "failed" for r in summary.values()) else 0), err
    assert not list((tmp_path / "out").glob(".*.tmp"))
    assert all(row["status"] == "personalized" for row in summary.values()), summary  # the killed task was retried


def test_bad_cluster_input_is_one_line_and_starts_nothing(toy_run, tmp_path):
    users = _users(tmp_path / "users", ["ann"])
    common = ["personalize", "--base", str(toy_run), "--out", str(tmp_path / "out")]
    closed = _free_port()  # nothing listens there
    cases = [
        ([*common, "--users", str(users), "--cluster", f"ray:127.0.0.1:{closed}"],
         f"kblm: error: ray cluster 127.0.0.1:{closed}: unreachable (connection refused)"),
        ([*common, "--users", str(users), "--cluster", "ray:headnode"],
         "kblm: error: --cluster ray:headnode: give the head's HOST:PORT (as `ray start --head` printed it)"),
        ([*common, "--texts", str(users / "ann.txt"), "--cluster", "ray"],
         "kblm: error: --cluster runs a batch of users: give --users DIR (one user runs here)"),
        ([*common, "--users", str(users), "--cluster", "ray", "--jobs", "2"],
         "kblm: error: --jobs sizes the local process pool; on --cluster each user takes --task-cpus of the "
         "cluster's CPUs"),
    ]
    for args, message in cases:
        result = kblm(*args)
        assert result.returncode != 0 and result.stderr.strip().splitlines()[-1] == message, result.stderr
        assert not (tmp_path / "out").exists()
    result = kblm(*common, "--users", str(users), "--cluster", "spark")
    assert result.returncode == 2 and "give ray (a local Ray) or ray:ADDRESS" in result.stderr.splitlines()[-1]
    # Ray not installed (its import blocked, as in a venv without the cluster extra)
    blocked = subprocess.run([sys.executable, "-c", "import sys; sys.modules['ray'] = None; "
                              "from keyboard_lm.cli import main; sys.exit(main(sys.argv[1:]))",
                              *common, "--users", str(users), "--cluster", "ray"],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert blocked.returncode == 1 and blocked.stderr.strip().splitlines()[-1] == (
        "kblm: error: --cluster ray needs Ray: pip install 'keyboard-lm[cluster]'"), blocked.stderr
    assert not (tmp_path / "out").exists()


def test_a_local_rays_workers_run_at_the_pools_priority():
    """Ray nices its workers to 15 by default; a local Ray started for a batch runs them at the
    caller's priority, as the process pool does (else any other load on the machine starves
    them), and leaves the caller's environment as it was."""
    code = ("import os\n"
            "from keyboard_lm.personalize.cluster import connected\n"
            "with connected(None) as ray:\n"
            "    print(ray.get(ray.remote(lambda: os.nice(0)).remote()), os.nice(0),\n"
            "          'RAY_worker_niceness' in os.environ)\n")
    node_temp = Path(tempfile.mkdtemp(prefix="kblm-t-", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    try:
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                                env={**os.environ, "TMPDIR": str(node_temp)})
    finally:
        shutil.rmtree(node_temp, ignore_errors=True)
    assert result.returncode == 0, result.stderr[-2000:]
    worker, caller, leaked = result.stdout.split()
    assert worker == caller and leaked == "False"
