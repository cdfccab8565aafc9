"""Ray for the pipeline, the ways Ray Data supports: a local Ray started in this process, or a driver
on a cluster's head (``--address auto``, ``ray job submit``, or ``--address HOST:PORT`` of its GCS).
Ray Client (``ray://``) cannot run Ray Data and is refused in one line.

Ray 2.60 clusters started with ``ray start`` ask for a token: a driver uses the token file Ray wrote
(``~/.ray/auth_token``, or ``RAY_AUTH_TOKEN`` / ``RAY_AUTH_TOKEN_PATH``) without further setup.
A local Ray's agents outlive a SIGKILLed driver, so a small guard process (its own session) waits
for the driver to go and kills the Ray processes the driver started.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .config import ConfigError

GPU_POLL_S = 5.0
REAP_POLL_S = 0.2


def cluster_address(address: str) -> str:
    """The address to join: ``address``, else ``RAY_ADDRESS`` (set by ``ray job submit``), else "" (local)."""
    address = address or os.environ.get("RAY_ADDRESS", "")
    if address.startswith("ray://"):
        raise ConfigError(
            f"--address {address}: Ray Data does not run under Ray Client (ray://); run the driver on the head "
            "(--address auto), submit it with `ray job submit`, or give the head's GCS as HOST:PORT (default port 6379)"
        )
    return address


def use_cluster_token() -> bool:
    """Token auth on when the cluster's token is here and RAY_AUTH_MODE is unset (Ray leaves it off for a driver)."""
    if "RAY_AUTH_MODE" in os.environ:
        return os.environ["RAY_AUTH_MODE"].lower() == "token"
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    token = bool(os.environ.get("RAY_AUTH_TOKEN")) or path.is_file()
    if token:
        os.environ["RAY_AUTH_MODE"] = "token"
    return token


@contextmanager
def ray_session(address: str, num_cpus: int) -> Iterator[bool]:
    """Ray for one run; yields whether it is a local instance (started here, gone after)."""
    import ray

    if ray.is_initialized():  # a caller's own session (tests, notebooks)
        yield False
        return
    address = cluster_address(address)
    guard = None
    try:
        if address:
            if use_cluster_token():
                from ray._raylet import Config

                Config.initialize("")  # Ray read RAY_AUTH_MODE when it was imported (as its own token set-up does)
            ray.init(address=address, log_to_driver=True)
        else:
            guard = _guard_local_ray()  # before Ray starts: a driver killed inside ray.init leaves agents too
            ray.init(address="local", num_cpus=num_cpus or None, include_dashboard=False, log_to_driver=True)
        yield not address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if guard is not None:
            guard.stdin.close()
            guard.wait(timeout=30)


def _guard_local_ray() -> subprocess.Popen:
    command = [sys.executable, "-m", "sparkle_bench.synth.cluster", str(os.getpid()), str(os.getpgid(0))]
    return subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def reap(driver: int, group: int) -> None:
    """While the driver's pipe is open, note the processes under it every REAP_POLL_S; once it closes,
    SIGKILL those still alive, and the Ray processes (``ray::...``) of the driver's process group that
    were orphaned before they were noted (agents Ray starts late). A pid reused since is left alone:
    its start time differs."""
    import select

    import psutil

    known: dict[int, psutil.Process] = {}
    while True:
        try:
            known.update({p.pid: p for p in psutil.Process(driver).children(recursive=True) if p.pid != os.getpid()})
        except psutil.Error:
            break
        if select.select([sys.stdin], [], [], REAP_POLL_S)[0]:
            break
    for process in psutil.process_iter(["ppid", "cmdline"]):
        try:
            orphan = process.info["ppid"] == 1 and (process.info["cmdline"] or [""])[0].startswith("ray::")
            if orphan and os.getpgid(process.pid) == group:
                known.setdefault(process.pid, process)
        except (psutil.Error, OSError):
            continue
    for process in known.values():
        try:
            if process.is_running():  # compares the start time too
                process.kill()
        except psutil.Error:
            continue


def wait_for_gpus(need: float, wait_s: float, local: bool) -> None:
    """Model stages that ask for GPUs run on GPUs: wait (bounded) for a cluster to have them, else one line."""
    import ray

    deadline = time.monotonic() + (0 if local else wait_s)
    while True:
        have = ray.cluster_resources().get("GPU", 0)
        if have >= min(need, 1):
            return
        if time.monotonic() >= deadline:
            where = "this machine has" if local else f"the Ray cluster still has after {wait_s:g} s"
            raise ConfigError(
                f"the stages run ask for GPUs (num_gpus > 0) but {where} none: start GPU nodes, "
                "or set num_gpus = 0 in their [stageN] tables to run them on CPU"
            )
        time.sleep(GPU_POLL_S)


if __name__ == "__main__":
    reap(int(sys.argv[1]), int(sys.argv[2]))
