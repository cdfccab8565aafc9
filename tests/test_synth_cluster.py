"""Synthesis on a real Ray cluster: ``ray start --head`` on this machine (2 CPUs, token auth on, its
own temp dir and HOME, no dashboard, listening on loopback only), the tiny five-stage pipeline run
through it by a driver that joins with ``--address HOST:PORT``, SIGKILLed mid-run (no worker of its
job survives), then resumed to the end deciding nothing twice; and a driver with a local Ray,
SIGKILLed, leaving no Ray process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from sparkle_bench.demo import demo_clips, render_source
from sparkle_bench.synth.layout import Layout
from sparkle_bench.synth.ledger import latest_decisions
from sparkle_bench.testing.tiny_synth_models import ScriptedVLM, build_tiny_models, config_text
from sparkle_bench.video import write_video

from .test_synth_pipeline import decision_lines, ids_by_clip

pytestmark = pytest.mark.skipif(shutil.which("ray") is None, reason="the ray command is not installed")
JOB_WORKERS = ("StepActor", "step_task")  # how the pipeline's Ray workers name themselves


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def processes_of(marker: str) -> list[psutil.Process]:
    """Every process whose command line names ``marker`` (the cluster's temp dir), and their descendants."""
    found: dict[int, psutil.Process] = {}
    for process in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in process.info["cmdline"] or []):
            found[process.pid] = process
            try:
                found.update({child.pid: child for child in process.children(recursive=True)})
            except psutil.Error:
                continue
    return list(found.values())


def job_workers(marker: str) -> list[str]:
    names = []
    for process in processes_of(marker):
        try:
            name = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if any(worker in name for worker in JOB_WORKERS):
            names.append(name)
    return names


def kill_all(processes: list[psutil.Process]) -> None:
    for process in processes:
        try:
            process.kill()
        except psutil.Error:
            continue


def listening_addresses(processes: list[psutil.Process]) -> set[str]:
    """The local addresses the cluster's processes listen on."""
    addresses = set()
    for process in processes:
        try:
            addresses |= {c.laddr.ip for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
        except psutil.Error:
            continue
    return addresses


@pytest.fixture(scope="module")
def cluster():
    root = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))  # Ray's socket paths must stay short
    marker = str(root / "ray")
    env = {**os.environ, "HOME": str(root / "home"), "RAY_AUTH_MODE": "token"}  # the head asks drivers for its token
    env.pop("RAY_ADDRESS", None)
    port = free_port()
    subprocess.run(["ray", "get-auth-token", "--generate"], env=env, capture_output=True, check=True, timeout=60)
    started = subprocess.run(
        [
            "ray",
            "start",
            "--head",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--num-cpus",
            "2",
            "--num-gpus",
            "0",
            "--temp-dir",
            marker,
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
            "--ray-client-server-port",
            str(free_port()),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        assert (root / "home" / ".ray" / "auth_token").is_file()  # token auth is on
        assert listening_addresses(processes_of(marker)) <= {
            "127.0.0.1",
            "::ffff:127.0.0.1",
        }  # loopback only (conftest)
        yield SimpleNamespace(address=f"127.0.0.1:{port}", home=root / "home", marker=marker)
    finally:
        kill_all(processes_of(marker))  # by pid: `ray stop` would stop every Ray on the machine
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    return build_tiny_models(tmp_path_factory.mktemp("tiny-cluster"))


def driver_env(home: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("RAY_AUTH_MODE", "RAY_ADDRESS"):
        env.pop(name, None)
    if home:
        env["HOME"] = str(home)
    return env


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_tiny_pipeline_on_a_cluster_killed_and_resumed(cluster, tiny, tmp_path):
    corpus = tmp_path / "clips"
    clips = demo_clips()
    write_video(corpus / "a.mp4", render_source(clips[0])[0], 16)
    write_video(corpus / "b.mp4", render_source(clips[4])[0], 16)
    (corpus / "d.mp4").write_bytes(b"not a video" * 50)
    server = ScriptedVLM()
    config = tmp_path / "synth.toml"
    config.write_text(config_text(tiny, corpus, server.url, tmp_path / "out"))
    layout = Layout(tmp_path / "out")
    command = [sys.executable, "-m", "sparkle_bench.cli", "synth", "run", str(config), "--address", cluster.address]
    env = driver_env(cluster.home)  # RAY_AUTH_MODE unset: the driver finds the cluster's token itself
    try:
        with open(tmp_path / "killed.log", "w") as log:
            driver = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                reached = wait_for(lambda: bool(decision_lines(layout, 2)) or driver.poll() is not None, 300)
                assert reached and driver.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
                assert job_workers(cluster.marker), "the job's actors run on the cluster"
            finally:
                driver.send_signal(signal.SIGKILL)
                driver.wait()
        assert wait_for(lambda: not job_workers(cluster.marker), 60), job_workers(cluster.marker)
        assert not decision_lines(layout, 5)
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    finally:
        server.close()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Connected to Ray cluster" in done.stderr
    ids = ids_by_clip(layout)
    good = {ids["a"], ids["b"]}
    for stage in range(1, 6):
        decided = latest_decisions(layout, stage)
        assert {i for i, d in decided.items() if d["status"] == "accepted"} == good, stage
        made = [(r["id"], r["status"]) for r in decision_lines(layout, stage) if r["status"] != "failed"]
        assert len(made) == len(set(made)), f"stage {stage} decided a sample twice"
    assert latest_decisions(layout, 1)[ids["d"]]["status"] == "failed"
    assert wait_for(lambda: not job_workers(cluster.marker), 60)


def test_a_killed_driver_leaves_no_local_ray_process(tmp_path):
    """The local Ray a driver starts goes with it, agents included (Ray's own leave two behind)."""
    corpus = tmp_path / "clips"
    write_video(corpus / "a.mp4", render_source(demo_clips()[0])[0][:20], 16)
    config = tmp_path / "synth.toml"
    config.write_text(
        f'out = "{tmp_path / "out"}"\n[corpus]\npath = "{corpus}"\n[ray]\nnum_cpus = 1\n[stage1]\nvlm_check = false\n'
    )
    driver = subprocess.Popen(
        [sys.executable, "-m", "sparkle_bench.cli", "synth", "run", str(config), "--stages", "1"],
        env=driver_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ours: list[psutil.Process] = []
    try:

        def ray_running() -> bool:
            try:
                ours[:] = psutil.Process(driver.pid).children(recursive=True)
                lines = " ".join(" ".join(p.cmdline()) for p in ours)
            except psutil.Error:
                return False
            return "raylet" in lines and "DashboardAgent" in lines and "RuntimeEnvAgent" in lines

        assert wait_for(ray_running, 120), "the driver did not start Ray"
        ours[:] = psutil.Process(driver.pid).children(recursive=True)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    try:
        assert len(ours) >= 4  # gcs, raylet, the agents (and the guard)
        assert wait_for(lambda: not [p for p in ours if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], 30), [
            p.name() for p in ours if p.is_running()
        ]
    finally:
        kill_all(ours)
