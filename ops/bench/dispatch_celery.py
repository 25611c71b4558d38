"""The baseline for ops/bench/dispatch: N no-op tasks through Celery.

One file, two roles:

* the driver (run as a script by ops/bench/dispatch):

      dispatch_celery.py --amqp URL --tasks N [--queue-type classic|quorum]
                         [--workers 2] [--prefetch-multiplier 64] [--timeout S]

  starts `celery -A dispatch_celery worker --concurrency W --pool prefork` on
  the broker URL given (ops/bench/dispatch hands it a vhost of its own, made
  fresh for the run), waits until the worker is ready, sends N `bench.noop`
  tasks, waits until every one has been executed and acked, checks with
  rabbitmqctl that the queue is empty with nothing unacked, stops the worker
  (also on failure, Ctrl-C or SIGTERM) and prints one JSON line:
  {"client": "celery", "queue_type": ..., "tasks": N, "seconds": S,
   "tasks_per_second": R, "send_seconds": ..., "worker_cpu_seconds": ...}

* the Celery app that worker imports (configured through BIS_CELERY_*
  variables the driver sets).

How the run is timed, and why that is fair to Celery:

  From just before the first send until the N-th task has been executed and
  acked. Completion is counted in the worker's main process by a Request
  subclass: with task_acks_late=True, the request's on_success runs there when
  a pool child reports the result and sends the basic.ack through
  acknowledge(); our override of acknowledge() then appends one byte to a
  counter file (O_APPEND, ~1 us). The driver watches the
  file's size. So the clock stops when the last ack has been written to the
  broker's socket, and Celery pays one small write per task for being observed.
  Not chosen: a result backend (adds a result message or a store write per
  task: Celery's rate would sink, and the comparison would flatter us);
  polling `rabbitmqctl list_queues` during the run (every call starts an Erlang
  VM, ~0.6 s of a core on this 2-core machine, taken from the workers). That
  check runs once, after the clock has stopped, to confirm the queue drained.

  Celery does less per task than our side: no result goes back, nothing is
  committed to a store, publishes are not confirmed (Celery's default), and the
  worker logs at WARNING. Each of those choices makes the baseline faster.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse

from celery import Celery, signals
from celery.worker.request import Request

TASK_NAME = "bench.noop"

# ------------------------------------------------------------------ the app --

app = Celery("dispatch_celery", broker=os.environ.get("BIS_CELERY_BROKER", "amqp://localhost//"))
_queue_type = os.environ.get("BIS_CELERY_QUEUE_TYPE", "classic")
app.conf.update(
    task_default_queue=os.environ.get("BIS_CELERY_QUEUE", "bench.dispatch.celery"),
    task_default_queue_type=_queue_type,   # quorum: what the fleet's stage queues are
    task_acks_late=True,                   # ack after the task ran, like our workers
    task_ignore_result=True,               # no result backend (see the docstring)
    worker_prefetch_multiplier=int(os.environ.get("BIS_CELERY_PREFETCH", "64")),
    worker_enable_remote_control=False,    # no pidbox queue per worker
    worker_send_task_events=False,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    task_serializer="json",
    accept_content=["json"],
)

_counter_fd = None


def _count(mark):
    """Append one byte to the counter file (opened once per process)."""
    global _counter_fd
    if _counter_fd is None:
        _counter_fd = os.open(os.environ["BIS_CELERY_COUNTER"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_counter_fd, mark)


class CountingRequest(Request):
    """Counts a task once it is acked (with acks_late: after it ran).

    acknowledge() is the hook: the worker's strategy subclasses this class
    again and replaces on_success without calling up, but both its on_success
    and on_failure ack through acknowledge(). A failure also leaves an "f".
    """

    def acknowledge(self):
        first = not self.acknowledged
        super().acknowledge()
        if first:
            _count(b"a")

    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        _count(b"f")
        return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)


@app.task(name=TASK_NAME, Request=CountingRequest)
def noop():
    return None


@signals.worker_ready.connect
def _ready(**_kwargs):
    path = os.environ.get("BIS_CELERY_READY")
    if path:
        with open(path, "w") as f:
            f.write(str(os.getpid()))


# --------------------------------------------------------------- the driver --

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


class Stop(Exception):
    pass


def _on_term(_signum, _frame):
    raise Stop("terminated")


def cpu_seconds(pid):
    """utime + stime of pid and its live descendants, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append((int(entry), fields))
            except (OSError, IndexError):
                pass
    total, todo = 0.0, [pid]
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    except OSError:
        return None
    while todo:
        for child, fields in children.get(todo.pop(), []):
            total += (int(fields[11]) + int(fields[12])) / tick
            todo.append(child)
    return round(total, 2)


def queue_state(vhost, queue):
    """(messages_ready, messages_unacknowledged) of the queue, via rabbitmqctl."""
    out = subprocess.run(
        [os.path.join(ROOT, "ops", "broker"), "ctl", "list_queues", "-p", vhost, "-q", "--no-table-headers",
         "name", "messages_ready", "messages_unacknowledged"],
        capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == queue:
            return int(parts[1]), int(parts[2])
    raise RuntimeError(f"queue {queue} not found in vhost {vhost}")


def stop_worker(proc, graceful):
    """Warm shutdown (SIGTERM to the main process) when graceful, then KILL its
    process group. An aborted run skips the warm shutdown, which with a full
    queue outlasts 10 s: its unacked tasks go back to a queue about to be
    deleted with its vhost."""
    if graceful and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            print("celery: worker did not stop within 10 s: killing it", file=sys.stderr)
    try:
        os.killpg(proc.pid, signal.SIGKILL)   # its own group (start_new_session): pool children left over
    except ProcessLookupError:
        pass
    proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--amqp", required=True, help="broker URL, with the vhost to use")
    ap.add_argument("--tasks", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=2, help="prefork pool processes")
    ap.add_argument("--queue-type", choices=["classic", "quorum"], default="classic")
    ap.add_argument("--prefetch-multiplier", type=int, default=64,
                    help="Celery's worker_prefetch_multiplier (its docs: high for many short tasks)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds (default: 60 + tasks/50)")
    args = ap.parse_args()
    timeout = args.timeout or 60 + args.tasks / 50

    vhost = urllib.parse.unquote(urllib.parse.urlsplit(args.amqp).path[1:]) or "/"
    queue = f"bench.dispatch.celery.{args.queue_type}"
    state = os.path.join(ROOT, ".bis", "bench", "dispatch", f"celery-{os.getpid()}")
    os.makedirs(state, exist_ok=True)
    counter, ready, log = (os.path.join(state, n) for n in ("counter", "ready", "worker.log"))

    env = dict(os.environ, BIS_CELERY_BROKER=args.amqp, BIS_CELERY_QUEUE=queue,
               BIS_CELERY_QUEUE_TYPE=args.queue_type, BIS_CELERY_PREFETCH=str(args.prefetch_multiplier),
               BIS_CELERY_COUNTER=counter, BIS_CELERY_READY=ready,
               PYTHONPATH=os.pathsep.join(filter(None, [HERE, os.environ.get("PYTHONPATH")])))
    os.environ.update(env)          # the sending side below uses the same app settings
    app.conf.broker_url = args.amqp
    app.conf.task_default_queue = queue
    app.conf.task_default_queue_type = args.queue_type
    open(counter, "wb").close()

    signal.signal(signal.SIGTERM, _on_term)
    celery_bin = os.path.join(os.path.dirname(sys.executable), "celery")
    with open(log, "wb") as logf:
        worker = subprocess.Popen(
            [celery_bin, "-A", "dispatch_celery", "worker", "--pool", "prefork", "--concurrency", str(args.workers),
             "--queues", queue, "--hostname", f"bench{os.getpid()}@%h", "--loglevel", "WARNING",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=HERE, env=env, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
            start_new_session=True)
    finished = False
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(ready):
            if worker.poll() is not None:
                raise RuntimeError(f"celery worker exited with {worker.returncode}; see {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"celery worker not ready within 60 s; see {log}")
            time.sleep(0.05)
        cpu0 = cpu_seconds(worker.pid)

        t0 = time.perf_counter()
        with app.producer_or_acquire() as producer:
            for _ in range(args.tasks):
                noop.apply_async(producer=producer)
        send_s = time.perf_counter() - t0
        deadline = time.monotonic() + timeout
        while os.stat(counter).st_size < args.tasks:
            if worker.poll() is not None:
                raise RuntimeError(f"celery worker exited with {worker.returncode}; see {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {os.stat(counter).st_size} of {args.tasks} tasks done after {timeout:.0f} s")
            time.sleep(0.002)
        seconds = time.perf_counter() - t0
        cpu1 = cpu_seconds(worker.pid)

        with open(counter, "rb") as f:
            failed = f.read().count(b"f")
        if failed:
            raise RuntimeError(f"{failed} of {args.tasks} no-op tasks failed; see {log}")
        for _ in range(20):                       # untimed: the queue really drained
            ready_n, unacked = queue_state(vhost, queue)
            if ready_n == 0 and unacked == 0:
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"queue {queue}: {ready_n} ready, {unacked} unacked after every task was counted")
        finished = True
    finally:
        stop_worker(worker, graceful=finished)

    print(json.dumps({
        "client": "celery", "queue_type": args.queue_type, "tasks": args.tasks, "workers": args.workers,
        "prefetch_multiplier": args.prefetch_multiplier,
        "seconds": round(seconds, 3), "tasks_per_second": int(args.tasks / seconds),
        "send_seconds": round(send_s, 3),
        "worker_cpu_seconds": None if cpu0 is None or cpu1 is None else round(cpu1 - cpu0, 2),
    }))
    shutil.rmtree(state)            # kept after a failure: the worker's log is there


if __name__ == "__main__":
    try:
        main()
    except (Stop, KeyboardInterrupt) as e:
        print(f"celery: stopped ({e.__class__.__name__})", file=sys.stderr)
        sys.exit(130)
    except (RuntimeError, subprocess.CalledProcessError) as e:
        print(f"celery: {e}", file=sys.stderr)
        sys.exit(1)
