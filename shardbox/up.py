"""`shardbox up`: the embedded deployment — one coordinator, 14 nodes, one gateway and one worker here.

`--nodes N` (N >= 14) runs more STANDARD nodes, `--pool cold=14` (or ia=14) adds a pool of
nodes of that storage tier (config/tiers.py) under DATA/nodes/, named cold-01, cold-02, ...
Both are remembered in cluster.json, like the ports.

Secrets and ports are created on the first run and kept in DATA/config/cluster.json, so
a second `shardbox up` on the same directory finds the same data and credentials. Role
configs are written anew on every start from that state, which keeps them in step with
the code's defaults. Each role runs as its own process (the same binaries a cluster
uses); this module only supervises them: a role that dies after the start is restarted
(after 0.5 s, doubling up to 30 s while it keeps dying, back to 0.5 s once it stayed up a
minute), said on the console, and `up.json` is rewritten with its new pid. A role that
fails while everything starts stops the start, as a misconfiguration would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from config.serving import split_listen
from config.settings import ConfigError, parse_config
from config.tiers import STANDARD, pool_tier
from erasure.kernels import slow_kernel_notice
from shardbox.up_scan import ScanChoice, choose_scanner

NODE_COUNT = 14
DEFAULT_PORT = 9000
STATE_FILE = "cluster.json"
RESTART_FIRST_S = 0.5
RESTART_MAX_S = 30.0
STABLE_S = 60.0          # a role up this long has recovered: the next crash restarts it quickly
STOP_GRACE_S = 15.0
# Nodes heartbeat every 2 s on one machine; five missed beats and a node counts as down.
NODE_DOWN_AFTER_S = 10.0


@dataclass
class UpOptions:
    data_dir: Path
    port: int | None = None
    database_url: str | None = None
    host: str = "127.0.0.1"
    scanner: str | None = None       # auto | clamd | builtin | none (remembered)
    clamd: str | None = None         # clamd socket or HOST:PORT (remembered)
    nodes: int | None = None                      # STANDARD nodes (default 14, or the last run's)
    pools: dict[str, int] | None = None           # pool name (standard_ia, cold, ...) -> node count


def parse_pool(spec: str) -> tuple[str, int]:
    """`cold=14` -> ("cold", 14); the name must say a tier (cold, ia, standard_ia, ...)."""
    name, sep, count = spec.partition("=")
    name = name.strip().lower()
    if not sep or not count.strip().isdigit():
        raise ConfigError(f"--pool {spec!r}: expected NAME=COUNT, e.g. cold=14")
    if pool_tier(name) is None or pool_tier(name) == STANDARD:
        raise ConfigError(f"--pool {spec!r}: the pool name must be a colder tier: cold or ia (standard_ia)")
    if int(count) < NODE_COUNT:
        raise ConfigError(f"--pool {spec!r}: a pool needs at least {NODE_COUNT} nodes (one per shard)")
    return name, int(count)


@dataclass
class Child:
    name: str
    role: str
    config: Path
    log: Path
    address: str
    proc: asyncio.subprocess.Process | None = None
    node_id: str | None = None
    extra: dict = field(default_factory=dict)
    started_at: float = 0.0
    backoff_s: float = RESTART_FIRST_S


def _die_with_parent() -> None:
    """Runs in the child before exec: if the supervisor is killed, its children get SIGTERM."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _say(msg: str) -> None:
    print(msg, flush=True)


def load_or_create_state(opts: UpOptions) -> dict:
    """Read DATA/config/cluster.json, creating secrets on the first run."""
    cfg_dir = opts.data_dir / "config"
    path = cfg_dir / STATE_FILE
    if path.exists():
        state = json.loads(path.read_text())
    else:
        state = {
            "secret": secrets.token_urlsafe(32),
            "master_key": base64.b64encode(secrets.token_bytes(32)).decode(),
            "port": DEFAULT_PORT,
            "host": opts.host,
            "database_url": None,
        }
    if opts.port is not None:
        state["port"] = opts.port
    if opts.database_url is not None:
        state["database_url"] = opts.database_url
    if opts.scanner is not None:
        state["scanner"] = opts.scanner
    if opts.clamd is not None:
        state["clamd"] = opts.clamd
    if opts.nodes is not None:
        if opts.nodes < NODE_COUNT:
            raise ConfigError(f"--nodes {opts.nodes}: at least {NODE_COUNT} nodes are needed (one per shard)")
        if opts.nodes < state.get("nodes", NODE_COUNT):
            raise ConfigError(f"--nodes {opts.nodes}: {path} ran {state['nodes']} nodes; their data would be "
                              "left behind (drain and remove nodes with `shardbox admin nodes` instead)")
        state["nodes"] = opts.nodes
    if opts.pools:
        state["pools"] = {**state.get("pools", {}), **opts.pools}
    state["host"] = opts.host
    cfg_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return state


def node_names(state: dict) -> list[tuple[str, str]]:
    """(node id, pool) of every node this `shardbox up` runs, in port order."""
    names = [(f"node-{i + 1:02d}", "standard") for i in range(state.get("nodes", NODE_COUNT))]
    for pool, count in sorted(state.get("pools", {}).items()):
        names += [(f"{pool}-{i + 1:02d}", pool) for i in range(count)]
    return names


def write_role_configs(data_dir: Path, state: dict, scan: dict | None = None) -> list[Child]:
    """Write one TOML per process and return the children to start, in start order; `scan`
    is the worker's [worker.scan] section (shardbox/up_scan.py)."""
    scan = scan or {"backend": "none"}
    data_dir = data_dir.resolve()
    cfg_dir, log_dir = data_dir / "config", data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    host, port = state["host"], int(state["port"])
    coord_port = port + 1
    coord_url = f"http://{host}:{coord_port}"
    db_url = state["database_url"] or f"sqlite+aiosqlite:///{data_dir / 'meta' / 'shardbox.db'}"
    (data_dir / "meta").mkdir(exist_ok=True)
    cluster = {"secret": state["secret"], "master_key": state["master_key"]}

    docs: list[tuple[Child, dict]] = []
    coord = Child("coordinator", "coordinator", cfg_dir / "coordinator.toml", log_dir / "coordinator.log",
                  coord_url)
    docs.append((coord, {"cluster": cluster, "coordinator": {"listen": f"{host}:{coord_port}",
                                                             "database_url": db_url,
                                                             "scan_new_objects": scan["backend"] != "none",
                                                             "node_down_after_s": NODE_DOWN_AFTER_S}}))
    for i, (node_id, pool) in enumerate(node_names(state)):
        node_port = port + 2 + i
        child = Child(node_id, "node", cfg_dir / f"{node_id}.toml", log_dir / f"{node_id}.log",
                      f"http://{host}:{node_port}", node_id=node_id, extra={"pool": pool})
        docs.append((child, {"cluster": cluster, "node": {
            "id": node_id, "listen": f"{host}:{node_port}", "data_dir": str(data_dir / "nodes" / node_id),
            "coordinator": coord_url, "heartbeat_s": 2.0, "host": node_id, "pool": pool,
        }}))
    gw = Child("gateway", "gateway", cfg_dir / "gateway.toml", log_dir / "gateway.log", f"http://{host}:{port}")
    docs.append((gw, {"cluster": cluster, "gateway": {"listen": f"{host}:{port}", "coordinator": coord_url}}))
    worker = Child("worker", "worker", cfg_dir / "worker.toml", log_dir / "worker.log", "")
    docs.append((worker, {"cluster": cluster, "worker": {"coordinator": coord_url, "id": "worker-1",
                                                         "scan": scan}}))

    for child, doc in docs:
        parse_config(doc, child.config, child.role)  # refuse to start anything on a bad config
        child.config.write_bytes(tomli_w.dumps(doc).encode())
        os.chmod(child.config, 0o600)
    return [c for c, _ in docs]


def _port_in_use(address: str) -> bool:
    host, port = split_listen(address.removeprefix("http://"))
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


async def _wait_port(child: Child, timeout: float) -> None:
    host, port = split_listen(child.address.removeprefix("http://"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc is not None and child.proc.returncode is not None:
            raise RuntimeError(f"{child.name} exited with code {child.proc.returncode}; see {child.log}")
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{child.name} did not start listening on {child.address} within {timeout:.0f}s; "
                       f"see {child.log}")


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


class Supervisor:
    def __init__(self, opts: UpOptions) -> None:
        self.opts = opts
        self.children: list[Child] = []
        self.stopping = asyncio.Event()
        self.failed: str | None = None
        self.info: dict | None = None       # what up.json holds, once everything is up
        self._watchers: list[asyncio.Task] = []
        self.scan: ScanChoice | None = None

    async def _spawn(self, child: Child) -> None:
        log = open(child.log, "ab")  # noqa: SIM115 - handed to the child, closed on exit
        try:
            child.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "shardbox", child.role, "--config", str(child.config),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                preexec_fn=_die_with_parent)
        finally:
            log.close()
        child.started_at = time.monotonic()

    def _supervise(self, child: Child) -> None:
        self._watchers.append(asyncio.get_running_loop().create_task(self._watch(child)))

    async def _watch(self, child: Child) -> None:
        """Restart `child` whenever it exits, until shardbox stops."""
        while True:
            assert child.proc is not None
            code = await child.proc.wait()
            if self.stopping.is_set():
                return
            if self.info is None:        # still starting: a role that cannot run stops the start
                _say(f"shardbox: {child.name} (pid {child.proc.pid}) exited with {_exit_text(code)}; "
                     f"see {child.log}")
                self.failed = f"{child.name} exited while starting"
                self.stopping.set()
                return
            if time.monotonic() - child.started_at >= STABLE_S:
                child.backoff_s = RESTART_FIRST_S
            delay, child.backoff_s = child.backoff_s, min(child.backoff_s * 2, RESTART_MAX_S)
            _say(f"shardbox: {child.name} (pid {child.proc.pid}) exited with {_exit_text(code)}; "
                 f"restarting it in {delay:g} s (log: {child.log})")
            try:
                await asyncio.wait_for(self.stopping.wait(), delay)
                return
            except TimeoutError:
                pass
            await self._spawn(child)
            if self.stopping.is_set():      # stop() may have signalled the old process already
                await _terminate(child)
                return
            try:
                if child.address:            # the worker serves nothing: it is back once running
                    await _wait_port(child, 60)
            except RuntimeError as exc:
                if self.stopping.is_set():
                    return
                _say(f"shardbox: {exc}")
                if child.proc.returncode is None:    # alive but not listening: start it over
                    child.proc.kill()
                continue
            _say(f"shardbox: {child.name} is back (pid {child.proc.pid})")
            self._write_info()

    async def _wait_nodes_registered(self, client, wanted: set[str], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        up = 0
        while time.monotonic() < deadline:
            nodes = await client.list_nodes()
            up = sum(1 for n in nodes if n.state == "up" and n.node_id in wanted)
            if up >= len(wanted):
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"only {up} of {len(wanted)} nodes registered with the coordinator within "
                           f"{timeout:.0f}s; see the logs in {self.opts.data_dir / 'logs'}")

    async def start(self) -> dict:
        from coordinator.client import CoordinatorClient

        state = load_or_create_state(self.opts)
        self.scan = await choose_scanner(state.get("scanner") or "auto", state.get("clamd"),
                                         self.opts.data_dir / "config")
        self.children = write_role_configs(self.opts.data_dir, state, self.scan.worker)
        busy = [c.address for c in self.children if c.address and _port_in_use(c.address)]
        if busy:
            raise RuntimeError(f"ports already in use: {', '.join(busy)} (another shardbox up? "
                               "choose another base with --port)")
        coord, nodes, gateway, worker = self._by_role()
        await self._spawn(coord)
        self._supervise(coord)
        await _wait_port(coord, 60)
        await asyncio.gather(*(self._spawn(n) for n in nodes))
        for n in nodes:
            self._supervise(n)
        await asyncio.gather(*(_wait_port(n, 60) for n in nodes))
        client = CoordinatorClient(coord.address, state["secret"])
        try:
            await self._wait_nodes_registered(client, {n.node_id for n in nodes})
            await self._spawn(gateway)
            self._supervise(gateway)
            await _wait_port(gateway, 60)
            await self._spawn(worker)
            self._supervise(worker)
            key = await client.ensure_admin()
        finally:
            await client.close()
        self.info = {
            "endpoint": gateway.address,
            "region": "us-east-1",
            "access_key": key.access_key,
            "secret_key": key.secret_key,
            "user": key.user_name,
            "coordinator": {"address": coord.address},
            "gateway": {"address": gateway.address},
            "worker": {"log": str(worker.log), "scanner": self.scan.backend},
            "nodes": [{"id": n.node_id, "address": n.address, "pool": n.extra["pool"],
                       "data_dir": str((self.opts.data_dir / "nodes" / n.node_id).resolve())} for n in nodes],
            "data_dir": str(self.opts.data_dir.resolve()),
            "scanner": self.scan.description,
            "started_at": time.time(),
        }
        self._write_info()
        return self.info

    def _write_info(self) -> None:
        """up.json with every role's current pid (rewritten whenever a role was restarted)."""
        info = self.info
        if info is None:
            return
        coord, nodes, gateway, worker = self._by_role()
        info["coordinator"]["pid"] = coord.proc.pid
        info["gateway"]["pid"] = gateway.proc.pid
        info["worker"]["pid"] = worker.proc.pid
        for entry, node in zip(info["nodes"], nodes, strict=True):
            entry["pid"] = node.proc.pid
        up_json = self.opts.data_dir / "up.json"
        tmp = up_json.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2))
        os.chmod(tmp, 0o600)
        tmp.replace(up_json)

    def _by_role(self) -> tuple[Child, list[Child], Child, Child]:
        """(coordinator, nodes, gateway, worker)."""
        by_role: dict[str, list[Child]] = {}
        for c in self.children:
            by_role.setdefault(c.role, []).append(c)
        return by_role["coordinator"][0], by_role["node"], by_role["gateway"][0], by_role["worker"][0]

    async def stop(self) -> None:
        self.stopping.set()
        if self.children:
            # Gateway and worker first so no new work starts (a worker's unfinished events go
            # back to the queue), coordinator last so nodes can still report.
            coord, nodes, gateway, worker = self._by_role()
            for group in ([gateway, worker], nodes, [coord]):
                await asyncio.gather(*(_terminate(c) for c in group))
        # A restart that was under way terminates what it started itself.
        await asyncio.gather(*self._watchers, return_exceptions=True)


async def _terminate(child: Child) -> None:
    proc = child.proc
    if proc is None or proc.returncode is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()


def _node_summary(nodes: list[dict]) -> str:
    pools: dict[str, int] = {}
    for n in nodes:
        pools[n["pool"]] = pools.get(n["pool"], 0) + 1
    return ", ".join(f"{count} {pool}" for pool, count in pools.items())


def _banner(info: dict, data_dir: Path) -> str:
    ep, ak, sk = info["endpoint"], info["access_key"], info["secret_key"]
    return "\n".join([
        "shardbox is up",
        f"  S3 endpoint : {ep}",
        "  region      : us-east-1",
        f"  access key  : {ak}",
        f"  secret key  : {sk}",
        f"  data        : {data_dir}  (scripts: {data_dir / 'up.json'}, logs: {data_dir / 'logs'})",
        f"  nodes       : {_node_summary(info['nodes'])}",
        f"  scanner     : {info['scanner']}",
        "",
        f"  AWS_ACCESS_KEY_ID={ak} AWS_SECRET_ACCESS_KEY={sk} aws --endpoint-url {ep} s3 ls",
        "",
        "Press Ctrl-C to stop.",
    ])


async def _main(opts: UpOptions) -> int:
    sup = Supervisor(opts)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, sup.stopping.set)
    try:
        start = asyncio.ensure_future(sup.start())
        stop_wait = asyncio.ensure_future(sup.stopping.wait())
        done, _ = await asyncio.wait({start, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        if start not in done:
            start.cancel()
            await sup.stop()
            return 1 if sup.failed else 0
        info = start.result()
        _say(_banner(info, opts.data_dir))
        notice = slow_kernel_notice()   # the gateway runs on this machine, with these libraries
        if notice:
            _say(notice)
        await sup.stopping.wait()
    except (RuntimeError, ConfigError, OSError) as exc:
        _say(f"shardbox: {exc}")
        await sup.stop()
        return 1
    _say("shardbox: stopping" + (f" ({sup.failed})" if sup.failed else ""))
    await sup.stop()
    _say("shardbox: stopped")
    return 1 if sup.failed else 0


def run_up(opts: UpOptions) -> int:
    try:
        import uvloop
        return uvloop.run(_main(opts))
    except ImportError:
        return asyncio.run(_main(opts))
