"""Running on a cluster: a two-node Ray cluster spreads the core actors over both nodes and
trains to the same weights as the in-process runtime; the launch files (``launch/``) parse and
turn token authentication on.

The two-node cluster (Ray's own ``ray.cluster_utils.Cluster``: a head and a worker node on this
machine, bound to 127.0.0.1, token authentication on) runs in a subprocess: Ray allows one
``ray.init`` per process, and the rest of the suite shares the session fixture's.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
import yaml

from emulator.run import run_emulation
from emulator.spec import load_chip, load_network

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch"
MARK = "TWO-NODE-RESULT "


def _cluster_script(body: str, out: str) -> str:
    """A script that starts a head and a worker node (one CPU each, on 127.0.0.1; the GCS
    declares a silent node dead after 3 missed 0.5 s health checks, not 15 s), connects, waits
    until both nodes take tasks, runs ``body`` (indented 4), shuts the cluster down and prints
    the JSON of ``out`` (a dict expression) after :data:`MARK`."""
    indented = textwrap.indent(textwrap.dedent(body).strip(), "    ")
    return f"""
import json
import time

import ray
from ray.cluster_utils import Cluster

from emulator.run import run_emulation
from emulator.spec import load_chip, load_network


@ray.remote(num_cpus=0)
def node_of():
    return ray.get_runtime_context().get_node_id()


cluster = Cluster()
try:
    head = cluster.add_node(
        num_cpus=1,
        node_ip_address="127.0.0.1",
        include_dashboard=False,
        _system_config={{"health_check_period_ms": 500, "health_check_failure_threshold": 3}},
    )
    worker = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    # The raylets' view of the cluster lags the GCS's just after a node starts (an actor sent
    # to a node its raylet does not know yet lands elsewhere): wait until both take tasks.
    deadline = time.monotonic() + 60
    while len(set(ray.get([node_of.options(scheduling_strategy="SPREAD").remote()
                           for _ in range(4)]))) < 2:
        assert time.monotonic() < deadline, "the worker node never took a task"
{indented}
finally:
    ray.shutdown()
    cluster.shutdown()
print({MARK!r} + json.dumps({out}), flush=True)
"""


TWO_NODES = _cluster_script(
    """
    result = run_emulation(
        load_network("tiny-mlp"),
        load_chip("tiny"),
        runtime="ray",
        address=cluster.address,
        epochs=1,
    )
    driver_node = ray.get_runtime_context().get_node_id()
    """,
    """{
        "nodes": [head.node_id, worker.node_id],
        "driver_node": driver_node,
        "placement": result["placement"],
        "weights_sha256": result["weights_sha256"],
        "actors": result["actors"],
    }""",
)

NODE_LOSS = _cluster_script(
    """
    lost = []

    def progress(done, total, loss):  # the worker node goes down after training batch 12
        if done == 12 and not lost:
            lost.append(worker.node_id)
            cluster.remove_node(worker, allow_graceful=False)

    result = run_emulation(
        load_network("tiny-mlp"),
        load_chip("tiny"),
        runtime="ray",
        address=cluster.address,
        epochs=2,
        checkpoint_every=5,
        progress=progress,
    )
    """,
    """{
        "head": head.node_id,
        "lost": lost,
        "placement": result["placement"],
        "recoveries": result["recoveries"],
        "weights_sha256": result["weights_sha256"],
        "counters": result["counters"],
        "time_ns": result["time_ns"],
        "energy_pj": result["energy_pj"],
    }""",
)


def _two_node_run(timeout_s: float = 240.0, script: str = TWO_NODES) -> dict:
    """Run ``script`` in its own process group (killed whole on a timeout)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env |= {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        # Keep 127.0.0.1: on Linux, Ray otherwise swaps a loopback address for the machine's.
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"two-node run timed out after {timeout_s} s\n{err[-4000:]}") from None
    lines = [line for line in out.splitlines() if line.startswith(MARK)]
    assert proc.returncode == 0 and lines, f"rc={proc.returncode}\n{out[-2000:]}\n{err[-4000:]}"
    return json.loads(lines[-1][len(MARK) :])


def test_two_node_cluster_spreads_cores_and_matches_local() -> None:
    got = _two_node_run()
    placement = got["placement"]
    assert len(placement) == got["actors"] >= 2
    per_node = Counter(p["node"] for p in placement)
    assert set(per_node) == set(got["nodes"]), f"cores should spread over both nodes: {placement}"
    # One CPU each: the actors alternate between the nodes, starting on the driver's.
    assert placement[0]["node"] == got["driver_node"]
    assert sorted(per_node.values()) == [len(placement) // 2, len(placement) - len(placement) // 2]
    assert len({p["pid"] for p in placement}) == len(placement)
    local = run_emulation(load_network("tiny-mlp"), load_chip("tiny"), runtime="local", epochs=1)
    assert got["weights_sha256"] == local["weights_sha256"]


@pytest.mark.slow
def test_a_lost_node_s_cores_restart_on_the_other_and_the_run_ends_undisturbed() -> None:
    """Kill a worker node mid-run: its actors are started again on the node left, every core
    goes back to the last checkpoint, and the run ends with the in-process run's bits."""
    got = _two_node_run(script=NODE_LOSS)
    assert got["lost"], "the worker node was never removed"
    # to a checkpoint after the loss, or a later one (a killed node's workers run on briefly)
    assert got["recoveries"]
    assert all(
        r["actors"] and r["restored_to_batch"] in range(10, 91, 5) for r in got["recoveries"]
    )
    assert {p["node"] for p in got["placement"]} == {got["head"]}  # all on the node left
    local = run_emulation(load_network("tiny-mlp"), load_chip("tiny"), runtime="local", epochs=2)
    for key in ("weights_sha256", "counters", "time_ns", "energy_pj"):
        assert got[key] == local[key], key


def test_node_slots_follow_cpus_driver_node_first(ray_cluster) -> None:
    """Each node with CPUs gets one slot per CPU; the first is the driver's node."""
    import ray

    from emulator.runtime.ray_runtime import node_slots

    slots = node_slots()
    cpus = {n["NodeID"]: n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]}
    assert Counter(slots) == {node: round(c) for node, c in cpus.items() if c > 0}
    assert slots[0] == ray.get_runtime_context().get_node_id()


def _commands(config: dict, key: str) -> str:
    return "\n".join(config[key])


def test_cluster_yaml_is_a_token_auth_ray_up_config() -> None:
    config = yaml.safe_load((LAUNCH / "cluster.yaml").read_text())
    assert config["provider"]["type"] == "local"
    assert config["provider"]["head_ip"] and config["provider"]["worker_ips"]
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = [c for c in config[key] if "ray start" in c]
        assert start and all("RAY_AUTH_MODE=token" in c for c in start), key
    assert "--head" in _commands(config, "head_start_ray_commands")
    assert "--address=$RAY_HEAD_IP:6379" in _commands(config, "worker_start_ray_commands")
    assert "--dashboard-host=127.0.0.1" in _commands(config, "head_start_ray_commands")
    # The token reaches every node as Ray's default token file; the package is installed there.
    assert "~/.ray/auth_token" in config["file_mounts"]
    setup = _commands(config, "setup_commands")
    assert "pip install -e ~/pipesdfa-emulator" in setup
    assert "~/pipesdfa-emulator" in config["file_mounts"]
    assert "RAY_AUTH_MODE=token" in setup
    # What `ray up` itself does with the file before touching any machine.
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(config)
    validate_config(prepared)
    assert prepared["max_workers"] == len(config["provider"]["worker_ips"])


def test_kuberay_yaml_is_a_token_auth_raycluster() -> None:
    docs = [d for d in yaml.safe_load_all((LAUNCH / "kuberay.yaml").read_text()) if d]
    (cluster,) = [d for d in docs if d["kind"] == "RayCluster"]
    assert cluster["apiVersion"] == "ray.io/v1"
    spec = cluster["spec"]
    assert spec["authOptions"] == {"mode": "token"}
    major, minor = (int(x) for x in spec["rayVersion"].split(".")[:2])
    assert (major, minor) >= (2, 52), "token authentication needs Ray >= 2.52"
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    assert len(groups) >= 2
    for group in groups:
        (container,) = group["template"]["spec"]["containers"]
        assert container["image"]
        assert container["resources"]["requests"]["cpu"]
        assert container["resources"]["limits"]["memory"]
    assert spec["headGroupSpec"].get("serviceType", "ClusterIP") == "ClusterIP"


def test_laptop_script_is_executable_bash_with_loopback_and_token_auth() -> None:
    script = LAUNCH / "laptop.sh"
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert '--node-ip-address "${host}"' in text
    assert 'host="${PIPESDFA_RAY_HOST:-127.0.0.1}"' in text
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "PIPESDFA_"))}
    env["RAY_AUTH_TOKEN_PATH"] = "/nonexistent/token"
    lines = subprocess.run(
        [str(script), "env"], env=env, check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert lines == [
        "export RAY_AUTH_MODE=token",
        "export RAY_AUTH_TOKEN_PATH=/nonexistent/token",
        "export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0",
    ]
    bad = subprocess.run([str(script), "bogus"], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown command" in bad.stderr


def test_laptop_script_refuses_a_head_folder_it_does_not_own(tmp_path: Path) -> None:
    """A predictable /tmp folder another user made first (here: a link to one) is refused
    before any Ray process starts; a folder of ours is made 0700."""
    script = LAUNCH / "laptop.sh"
    target = tmp_path / "theirs"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "PIPESDFA_"))}
    env |= {"PIPESDFA_RAY_TEMP_DIR": str(link), "RAY_AUTH_TOKEN_PATH": str(tmp_path / "tok")}
    env["PIPESDFA_RAY_PORT"] = "1"  # never reached
    out = subprocess.run([str(script), "start"], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "is a symbolic link; refusing" in out.stderr
    assert not any(target.iterdir())
