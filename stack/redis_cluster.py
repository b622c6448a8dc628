"""A throwaway Redis Cluster of ``redis-server`` processes on loopback, for the
cluster tests (``TEST_REDIS_CLUSTER=1``, ``tests/timelines/test_cluster*.py``),
and one standalone server of the same binary to compare it with
(``bench/cluster_fanout.py``).

Each node runs with ``--cluster-enabled yes``, without persistence, its
``nodes.conf`` in a directory of its own; ``redis-cli --cluster create`` spreads
the 16384 slots over the masters (and pairs each with a replica when asked),
and the cluster is ready once every node reports ``cluster_state:ok``.
"""
from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from .common import StackError, spawn, stop_processes, wait_for_ping


@dataclass
class ClusterNodes:
    """The processes of a running test cluster, by port."""

    directory: Path
    processes: dict[int, subprocess.Popen] = field(default_factory=dict)

    @property
    def ports(self) -> list[int]:
        return sorted(self.processes)

    @property
    def url(self) -> str:
        """A ``REDIS_URL`` naming one node: the client discovers the rest."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, socket_timeout=2)

    def masters(self) -> list[int]:
        """Ports of the nodes that are masters now (as the live nodes see it)."""
        for port in self.ports:
            if self.processes[port].poll() is not None:
                continue
            with contextlib.suppress(redis.RedisError):
                nodes = self.client(port).execute_command("CLUSTER", "NODES").decode()
                return sorted(int(line.split()[1].split("@")[0].rsplit(":", 1)[1])
                              for line in nodes.splitlines()
                              if "master" in line.split()[2] and "fail" not in line.split()[2]
                              and len(line.split()) > 8)
        raise StackError("no live cluster node answers")

    def kill(self, port: int) -> None:
        """SIGKILL one node, as a crash would."""
        proc = self.processes[port]
        proc.kill()
        proc.wait(timeout=10)

    def wait_ok(self, timeout: float = 30) -> None:
        """Until every live node reports ``cluster_state:ok`` and agrees on a master for every slot."""
        deadline = time.monotonic() + timeout
        while True:
            live = [p for p in self.ports if self.processes[p].poll() is None]
            states = []
            for port in live:
                try:
                    states.append(b"cluster_state:ok" in self.client(port).execute_command("CLUSTER", "INFO"))
                except redis.RedisError:
                    states.append(False)
            if live and all(states):
                return
            if time.monotonic() > deadline:
                raise StackError(f"the Redis Cluster in {self.directory} is not ok after {timeout} s")
            time.sleep(0.1)


def _free_ports(count: int) -> list[int]:
    """``count`` ports free on loopback whose cluster bus ports (+10000) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


def start_redis_cluster(directory: Path, cleanup: contextlib.ExitStack, *, masters: int = 3,
                        replicas: int = 0, node_timeout_ms: int = 1000) -> ClusterNodes:
    """Start ``masters`` x (1 + ``replicas``) nodes and join them into a cluster; stopped by ``cleanup``."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if not server or not cli:
        raise StackError("a Redis Cluster needs redis-server and redis-cli on the PATH")
    nodes = ClusterNodes(directory)
    cleanup.callback(lambda: stop_processes({f"cluster node {p}": proc for p, proc in nodes.processes.items()}))
    for port in _free_ports(masters * (1 + replicas)):
        node_dir = directory / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        nodes.processes[port] = spawn(
            [server, "--bind", "127.0.0.1", "--port", str(port), "--cluster-enabled", "yes",
             "--cluster-config-file", str(node_dir / "nodes.conf"),
             "--cluster-node-timeout", str(node_timeout_ms), "--save", "", "--appendonly", "no",
             "--dir", str(node_dir), "--logfile", str(node_dir / "redis.log")],
            stdout=subprocess.DEVNULL)
    for port, proc in nodes.processes.items():
        wait_for_ping(f"cluster node {port}", proc, nodes.client(port), directory / str(port) / "redis.log")
    created = subprocess.run(
        [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in nodes.ports),
         "--cluster-replicas", str(replicas), "--cluster-yes"],
        capture_output=True, text=True, timeout=60)
    if created.returncode != 0:
        raise StackError(f"redis-cli --cluster create failed:\n{created.stdout}\n{created.stderr}")
    nodes.wait_ok()
    if replicas:
        # Replicas report ok before their first sync is over; a failover needs it done.
        deadline = time.monotonic() + 30
        while True:
            infos = [nodes.client(p).info("replication") for p in nodes.ports]
            if all(i.get("master_link_status", "up") == "up" for i in infos):
                break
            if time.monotonic() > deadline:
                raise StackError("the cluster's replicas did not finish their first sync")
            time.sleep(0.1)
    return nodes


def start_redis_server(directory: Path, cleanup: contextlib.ExitStack) -> redis.Redis:
    """One standalone ``redis-server`` (the cluster's binary) on a spare loopback port, without
    persistence; its client. Stopped by ``cleanup``."""
    server = shutil.which("redis-server")
    if not server:
        raise StackError("no redis-server on the PATH")
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_ports(1)[0]
    proc = spawn([server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                  "--dir", str(directory), "--logfile", str(directory / "redis.log")], stdout=subprocess.DEVNULL)
    cleanup.callback(lambda: stop_processes({f"redis-server {port}": proc}))
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, socket_timeout=10)
    wait_for_ping(f"redis-server {port}", proc, client, directory / "redis.log")
    return client
