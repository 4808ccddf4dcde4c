"""The hosts of a multiworker run: TF_CONFIG parsed and checked, and a rendezvous before TensorFlow.

    cluster = parse_tf_config(os.environ.get("TF_CONFIG"))   # UsageError E621 if it is wrong
    rendezvous(cluster, timeout=300)                          # RunError E550 if a peer is missing

Both run before TensorFlow starts: a wrong TF_CONFIG is a one-line error instead of a
TensorFlow stack trace, and a missing peer an error within the timeout instead of a wait
for ever (TensorFlow's own join has no usable timeout). `distribute.Plan` uses both.
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass

from ..errors import RunError, UsageError, did_you_mean

DEFAULT_PEER_TIMEOUT = 300.0
TF_CONFIG_HINT = ('e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
                  '"task": {"type": "worker", "index": 0}}\' (see docs/distributed.md)')
_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


@dataclass(frozen=True)
class Cluster:
    """A checked TF_CONFIG: the training tasks in TensorFlow's order (chief first) and ours."""
    tasks: tuple[tuple[str, int, str], ...]  # (job, index, "host:port")
    task_type: str
    task_index: int

    @property
    def workers(self) -> int:
        return len(self.tasks)

    @property
    def worker_id(self) -> int:
        """This task's place in `tasks`: 0 for the chief, which TensorFlow calls `id_in_cluster`."""
        return [(job, i) for job, i, _ in self.tasks].index((self.task_type, self.task_index))

    @property
    def is_chief(self) -> bool:
        return self.worker_id == 0

    @property
    def address(self) -> str:
        return self.tasks[self.worker_id][2]


def parse_tf_config(text: str | None) -> Cluster:
    """The cluster of a TF_CONFIG value; UsageError (E621) naming the first problem."""

    def bad(message: str, hint: str = TF_CONFIG_HINT):
        return UsageError(f"TF_CONFIG {message}", hint=hint, code="E621")

    if text is None or not text.strip():
        raise bad("is not set: the multiworker strategy needs it on every worker")
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise bad(f"is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise bad(f"must be a JSON object with 'cluster' and 'task', not {type(config).__name__}")
    cluster, task = config.get("cluster"), config.get("task")
    if cluster is None:
        raise bad("has no 'cluster'")
    if not isinstance(cluster, dict) or not cluster:
        raise bad("'cluster' must map job names to lists of \"host:port\" addresses")
    if "ps" in cluster:
        raise bad("has a 'ps' job: parameter servers are not used by multiworker training",
                  "list the training hosts as 'worker' (and at most one 'chief')")
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            raise bad(f"cluster '{job}' must be a non-empty list of \"host:port\" addresses")
        for i, address in enumerate(addresses):
            m = _ADDRESS.match(address) if isinstance(address, str) else None
            if not m or not 0 < int(m.group(2)) < 65536:
                raise bad(f"cluster {job}[{i}] {json.dumps(address)} is not a \"host:port\" address")
    if not any(job in cluster for job in ("chief", "worker")):
        raise bad("cluster has no 'worker' job", "list the training hosts under 'worker'")
    unknown = [job for job in cluster if job not in ("chief", "worker", "evaluator")]
    if unknown:
        hint = did_you_mean(unknown[0], ("chief", "worker"))
        raise bad(f"cluster has an unknown job '{unknown[0]}'", hint or "jobs: chief (at most one), worker")
    if len(cluster.get("chief", [])) > 1:
        raise bad(f"cluster has {len(cluster['chief'])} chiefs", "a cluster has at most one chief")
    tasks = tuple((job, i, a) for job in ("chief", "worker") for i, a in enumerate(cluster.get(job, [])))
    seen: dict[str, str] = {}
    for job, i, address in tasks:
        if address in seen:
            raise bad(f"lists {address} twice ({seen[address]} and {job}[{i}])", "give every task its own port")
        seen[address] = f"{job}[{i}]"
    if task is None:
        raise bad("has no 'task'", 'add e.g. "task": {"type": "worker", "index": 0}')
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise bad("'task' must be an object with 'type' and 'index'", 'e.g. "task": {"type": "worker", "index": 0}')
    kind, index = task["type"], task["index"]
    if kind == "evaluator":
        raise bad("task is an evaluator, which does not train", "run the evaluator with `archdsl eval`")
    if kind not in cluster:
        guess = did_you_mean(str(kind), [j for j in cluster if j != "evaluator"])
        raise bad(f"task type {json.dumps(kind)} is not a job of the cluster",
                  guess or "jobs: " + ", ".join(j for j in cluster if j != "evaluator"))
    if isinstance(index, bool) or not isinstance(index, int):
        raise bad(f"task index {json.dumps(index)} is not a whole number")
    size = len(cluster[kind])
    if not 0 <= index < size:
        raise bad(f"task index {index} is out of range: the cluster has {size} '{kind}' task"
                  f"{'s' if size > 1 else ''} (index 0{f'..{size - 1}' if size > 1 else ''})",
                  "give every worker its own index")
    return Cluster(tasks, kind, index)


PEER_HINT = ("start every worker of TF_CONFIG, with the same cluster and its own task index, and check that "
             "the ports are reachable; a slow-starting cluster needs a larger --peer-timeout")
_HELLO = "archdsl-rendezvous/1"


def rendezvous(cluster: Cluster, timeout: float) -> None:
    """Return when every worker of `cluster` is up and has the same cluster; RunError after `timeout` s.

    Run on each worker before TensorFlow, on the worker's own TF_CONFIG port, which TF's
    server takes over afterwards. Each worker listens, and connects to every peer until each
    answers with the same cluster; it stops listening once every peer has connected to it.
    So a worker that is done knows that all are alive and listening, and that all have
    reached it: the others finish too. (TensorFlow's own join has no usable timeout: a worker
    whose peer is missing waits for ever.)
    """
    import hashlib
    import socket

    me = cluster.worker_id
    tag = hashlib.sha256(json.dumps([list(t) for t in cluster.tasks]).encode()).hexdigest()[:16]
    peers = {i: a for i, (_, _, a) in enumerate(cluster.tasks) if i != me}
    port = int(cluster.address.rsplit(":", 1)[1])
    try:
        if socket.has_dualstack_ipv6():
            server = socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True)
        else:
            server = socket.create_server(("", port))
    except OSError as exc:
        raise RunError(f"worker {me} cannot listen on port {port} ({exc.strerror or exc}): is another worker "
                       "of this task running?", hint=PEER_HINT, code="E550") from None
    server.settimeout(0.2)
    heard: set[int] = set()
    foreign: list[str] = []
    stop = threading.Event()

    def listen():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    words = conn.makefile("r").readline().split()
                    if len(words) == 3 and words[0] == _HELLO and words[2].isdigit():
                        conn.sendall(f"{_HELLO} {tag}\n".encode())
                        if words[1] == tag:
                            heard.add(int(words[2]))
                        else:
                            foreign.append(peers.get(int(words[2]), words[2]))
                        conn.recv(1)  # wait for the peer to close first (TIME_WAIT stays on its side)
                except OSError:
                    pass

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    reached: set[int] = set()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not foreign and (len(reached) < len(peers) or len(heard) < len(peers)):
            for i, address in peers.items():
                if i in reached:
                    continue
                host, peer_port = address.rsplit(":", 1)
                try:
                    with socket.create_connection((host.strip("[]"), int(peer_port)), timeout=2) as conn:
                        conn.settimeout(5)
                        conn.sendall(f"{_HELLO} {tag} {me}\n".encode())
                        words = conn.makefile("r").readline().split()
                    if words[:1] == [_HELLO]:
                        if words[1:] != [tag]:
                            foreign.append(address)
                        reached.add(i)
                except (OSError, ValueError):
                    pass
            time.sleep(0.1)
    finally:
        stop.set()
        listener.join()
        server.close()
    if foreign:
        raise RunError(f"worker {me} ({cluster.address}) and {foreign[0]} have different TF_CONFIG clusters",
                       hint="give every worker the same 'cluster' and its own 'task'", code="E550")
    missing = sorted(i for i in peers if i not in reached or i not in heard)
    if missing:
        names = ", ".join(f"{cluster.tasks[i][0]} {cluster.tasks[i][1]} ({peers[i]})" for i in missing)
        raise RunError(f"worker {me} ({cluster.address}) could not reach {names} within {timeout:g} s",
                       hint=PEER_HINT, code="E550")
