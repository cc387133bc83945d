"""The moving parts of scripts/bench: processes it starts and always stops,
free ports, readiness probes, wrk runs and their parsing, memory readings."""

import json
import os
import re
import signal
import socket
import ssl
import statistics
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
POST_LUA = BENCH_DIR / "post.lua"


class BenchError(RuntimeError):
    """A step could not be carried out; the run stops with this message."""


def free_port():
    """A TCP port nobody listens on right now (other servers share this host)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Processes:
    """Every process the run starts, stopped by pid at the end whatever happens."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.running = []

    def start(self, name, argv, env=None, cwd=None, stdin=None, stdout=None):
        log = open(self.logs / f"{name}.log", "ab")
        full_env = dict(os.environ)
        full_env.update(env or {})
        proc = subprocess.Popen(
            argv,
            env=full_env,
            cwd=cwd,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else log,
            stderr=log,
            start_new_session=True,
        )
        proc.bench_name = name
        self.running.append(proc)
        return proc

    def stop(self, proc, grace=5.0):
        proc = getattr(proc, "proc", proc)  # a fixtures.Server stops its process
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self):
        for proc in reversed(list(self.running)):
            self.stop(proc)

    def log_tail(self, name, lines=15):
        path = self.logs / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_until(ready, what, proc=None, processes=None, timeout=20.0):
    """Polls `ready()` until it is true; fails early when `proc` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = processes.log_tail(proc.bench_name) if processes else ""
            raise BenchError(f"{what} exited with {proc.returncode}:\n{tail}")
        if ready():
            return
        time.sleep(0.05)
    raise BenchError(f"{what} not ready after {timeout:.0f} s")


def http_status(url, ca=None, data=None, timeout=5.0):
    """The status of one request (POST when `data` is given), or None."""
    context = ssl.create_default_context(cafile=str(ca)) if ca else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    if data:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:
            answer.read()
            return answer.status
    except urllib.error.HTTPError as err:
        return err.code
    except (OSError, ValueError):
        return None


@dataclass
class WrkResult:
    per_second: float
    requests: int
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _latency_ms(text):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS_MS[unit]


def parse_wrk(output):
    def field(pattern, default=None):
        found = re.search(pattern, output)
        if found is None:
            if default is None:
                raise BenchError(f"unexpected wrk output:\n{output}")
            return default
        return found.group(1)

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkResult(
        per_second=float(field(r"Requests/sec:\s+([\d.]+)")),
        requests=int(field(r"(\d+) requests in")),
        p50_ms=_latency_ms(field(r"\n\s+50%\s+(\S+)")),
        p99_ms=_latency_ms(field(r"\n\s+99%\s+(\S+)")),
        non_2xx=int(field(r"Non-2xx or 3xx responses: (\d+)", "0")),
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def wrk_command(url, connections, seconds, timeout_s=5, threads=1, lua=True):
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
            f"--timeout", f"{timeout_s}s"]
    if lua:
        argv += ["-s", str(POST_LUA)]
    return argv + [url]


def wrk_env(body, close=False):
    return {"BENCH_BODY": body, "BENCH_CLOSE": "1" if close else "0"}


def run_wrk(url, connections, seconds, body=None, close=False, timeout_s=5, allow_errors=False):
    """One wrk run; POSTs `body` (through post.lua) when given, else GETs."""
    argv = wrk_command(url, connections, seconds, timeout_s, lua=body is not None)
    env = dict(os.environ)
    if body is not None:
        env.update(wrk_env(body, close))
    done = subprocess.run(argv, env=env, capture_output=True, text=True,
                          timeout=seconds + timeout_s + 30)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    result = parse_wrk(done.stdout)
    if not allow_errors and (result.non_2xx or result.requests == 0):
        raise BenchError(f"wrk on {url}: {result.non_2xx} non-2xx answers of "
                         f"{result.requests}:\n{done.stdout}")
    return result


def proc_status(pid, key):
    """A /proc/PID/status size in MiB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no {key} for pid {pid}")


def run_json(argv, timeout, env=None):
    """Runs a helper that prints one JSON line; returns it parsed."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=full_env)
    if done.returncode != 0:
        raise BenchError(f"{Path(argv[0]).name} {argv[1]} failed: {done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median(values):
    return statistics.median(values) if values else float("nan")
