"""scripts/bench: every performance figure of Kisee in one run, printed as a
Markdown table and written to bench/results.md.

Timings on a shared 2-core machine are noisy, so every comparison runs both
sides in the same run, alternating (Kisee, peer, Kisee, peer, ...), and
reports medians."""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import fixtures
from harness import wait_until
from fixtures import PASSWORD
from harness import (BenchError, Processes, http_status, median, proc_status, run_json,
                     run_wrk)

MIB_PER_HASH = 19  # Argon2id default memory cost: 19 MiB per verify.
# The sections of a run, in order, by the names `--only` takes: each names
# the Bench method that measures it.
SECTIONS = {"throughput": "throughput", "tls": "tls_cost", "memory": "memory_use",
            "pam": "slow_pam", "ldap": "ldap", "micro": "micro"}


class Row:
    def __init__(self, figure, kisee, peer="—", ratio="—", target="—", met=None, cpu=None,
                 connections=False):
        self.figure, self.kisee, self.peer, self.ratio = figure, kisee, peer, ratio
        self.target, self.met = target, met
        # A shortfall here is about CPU time on this backend (a perf profile
        # of it explains it), or about memory per connection (a heap profile).
        self.cpu, self.connections = cpu, connections

    def cells(self):
        met = {True: "yes", False: "**no**", None: "—"}[self.met]
        return [self.figure, self.kisee, self.peer, self.ratio, self.target, met]


def paired_ratio(ours, theirs):
    """The median of run-by-run ratios: each pair ran back to back, so a
    neighbour's burst of load spoils one pair, not the whole figure."""
    return median([a / b for a, b in zip(ours, theirs)])


def rate(value):
    return f"{value:,.0f}/s"


def ms(value):
    return f"{value:.2f} ms"


def mib(value):
    return f"{value:.1f} MiB"


class Bench:
    def __init__(self, args, work: Path):
        self.args = args
        self.work = work
        self.seconds = args.seconds
        self.repeats = args.repeats
        logs = work / "logs"
        logs.mkdir()
        self.processes = Processes(logs)
        self.rows = []
        self.notes = []
        self.profiles = {}
        self.memory_text = None

    def say(self, text):
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    def body(self, username="bench"):
        return json.dumps({"username": username, "password": PASSWORD})

    # --- setup ---

    def prepare(self):
        self.bins = fixtures.build(self.work / "bin")
        self.original = fixtures.original_kisee()
        self.certs = fixtures.certificates(self.work / "certs")
        self.hashes = fixtures.password_hashes(self.bins)
        self.cpus = fixtures.nproc()
        self.memory = fixtures.memory_backend(self.hashes, self.cpus)

    def kisee(self, name, backend=None, tls=False, extra=None, env=None):
        settings, port = fixtures.kisee_settings(self.work, name, self.certs,
                                                 backend or self.memory, tls, extra)
        return fixtures.start_kisee(self.processes, self.bins, name, settings, port,
                                    self.certs, tls, env)

    # --- 1 and 2: throughput against the original and the signing ceiling ---

    def throughput(self):
        self.say("1-2. POST /jwt/ over plain HTTP: Kisee vs the original, and openssl speed")
        plain = self.kisee("kisee-plain")
        original = fixtures.start_original(self.processes, self.original, self.work, self.certs)
        self.original_idle = proc_status(original.pid, "VmRSS")
        body = self.body()
        results = {}
        signs = []
        health = []
        for connections in (1, 10, 50):
            kisee_runs, original_runs = [], []
            for repeat in range(self.repeats):
                kisee_runs.append(run_wrk(plain.url + "/jwt/", connections, self.seconds, body))
                original_runs.append(run_wrk(original.url + "/jwt/", connections, self.seconds,
                                             body))
                if connections == 50:
                    signs.append(openssl_speed(self.args.openssl_seconds))
                    health.append(run_wrk(plain.url + "/health", 50, self.seconds))
                self.say(f"   c={connections} #{repeat + 1}: kisee "
                         f"{kisee_runs[-1].per_second:,.0f}/s, original "
                         f"{original_runs[-1].per_second:,.0f}/s")
            results[connections] = (kisee_runs, original_runs)
        self.processes.stop(original)
        self.plain = plain

        for connections, (kisee_runs, original_runs) in results.items():
            k = median([r.per_second for r in kisee_runs])
            o = median([r.per_second for r in original_runs])
            ratio = paired_ratio([r.per_second for r in kisee_runs],
                                 [r.per_second for r in original_runs])
            target = "≥ 15×" if connections == 50 else "—"
            met = ratio >= 15 if connections == 50 else None
            self.rows.append(Row(f"POST /jwt/ req/s, plain HTTP, c={connections}", rate(k),
                                 f"{rate(o)} (original)", f"{ratio:.1f}×", target, met,
                                 cpu="memory"))
        kisee_50, original_50 = results[50]
        p99 = median([r.p99_ms for r in kisee_50])
        self.rows.append(Row("POST /jwt/ p99 latency, c=50", ms(p99),
                             f"{ms(median([r.p99_ms for r in original_50]))} (original)",
                             "—", "< 10 ms", p99 < 10, cpu="memory"))
        k50 = median([r.per_second for r in kisee_50])
        ceiling = median(signs)
        share = paired_ratio([r.per_second for r in kisee_50], signs)
        self.rows.append(Row("POST /jwt/ c=50 vs one core's raw P-256 signs/s", rate(k50),
                             f"{rate(ceiling)} (openssl speed)", f"{100 * share:.0f}%",
                             "≥ 40%", share >= 0.40, cpu="memory"))
        h = median([r.per_second for r in health])
        self.rows.append(Row("GET /health req/s, c=50 (the HTTP path alone: no hash, no token)",
                             rate(h), f"{rate(k50)} (POST /jwt/, c=50)", f"{h / k50:.1f}×"))

    # --- 3: what TLS costs ---

    def tls_cost(self):
        self.say("3. TLS: keep-alive HTTPS vs plain, and a handshake per request")
        secure = self.kisee("kisee-tls", tls=True)
        if not hasattr(self, "plain"):
            self.plain = self.kisee("kisee-plain")
        body = self.body()
        plain_runs, tls_runs = [], []
        for repeat in range(self.repeats):
            plain_runs.append(run_wrk(self.plain.url + "/jwt/", 50, self.seconds, body))
            tls_runs.append(run_wrk(secure.url + "/jwt/", 50, self.seconds, body))
            self.say(f"   c=50 #{repeat + 1}: plain {plain_runs[-1].per_second:,.0f}/s, "
                     f"https {tls_runs[-1].per_second:,.0f}/s")
        p, t = median([r.per_second for r in plain_runs]), median([r.per_second for r in tls_runs])
        share = paired_ratio([r.per_second for r in tls_runs], [r.per_second for r in plain_runs])
        self.rows.append(Row("POST /jwt/ req/s, HTTPS keep-alive, c=50", rate(t),
                             f"{rate(p)} (plain HTTP)", f"{100 * share:.0f}%", "≥ 85%",
                             share >= 0.85, cpu="memory over TLS"))

        addr = secure.url.removeprefix("https://")
        close_runs, full_runs, resumed_runs = [], [], []
        for repeat in range(self.repeats):
            close_runs.append(run_wrk(secure.url + "/jwt/", 10, self.seconds, body,
                                      close=True).per_second)
            full_runs.append(self.handshakes(addr, resume=False))
            resumed = self.handshakes(addr, resume=True)
            resumed_runs.append(resumed)
            self.say(f"   new connection per request #{repeat + 1}: wrk {close_runs[-1]:,.0f}/s, "
                     f"full {full_runs[-1]['per_second']:,.0f}/s, resumed "
                     f"{resumed['per_second']:,.0f}/s ({resumed['resumed']} of "
                     f"{resumed['requests']} resumed)")
        full = median([r["per_second"] for r in full_runs])
        again = median([r["per_second"] for r in resumed_runs])
        share = median([r["resumed"] / max(r["requests"], 1) for r in resumed_runs])
        self.rows.append(Row("POST /jwt/ + new TLS connection each (wrk Connection: close, c=10)",
                             rate(median(close_runs)), f"{rate(p)} (plain keep-alive, c=50)",
                             f"{100 * median(close_runs) / p:.0f}%"))
        self.rows.append(Row("same, rustls client, full handshakes (no resumption), c=10",
                             rate(full)))
        self.rows.append(Row("same, rustls client offering session tickets, c=10", rate(again),
                             f"{rate(full)} (full)", f"{again / full:.2f}×",
                             f"resumed: {100 * share:.0f}% of handshakes"))
        self.processes.stop(secure)
        self.processes.stop(self.plain)

    def handshakes(self, addr, resume):
        argv = [self.bins["tools"], "handshakes", "--addr", addr, "--ca", self.certs["ca"],
                "--connections", "10", "--seconds", str(self.seconds), "--body", self.body()]
        if resume:
            argv.append("--resume")
        result = run_json(argv, timeout=self.seconds + 30)
        if result["failures"] or not result["requests"]:
            raise BenchError(f"handshake run failed: {result}")
        return result

    # --- 4: memory ---

    def memory_use(self):
        self.say("4. Memory: idle, 5,000 open TLS connections, 200 default-cost logins")
        if not hasattr(self, "original_idle"):
            original = fixtures.start_original(self.processes, self.original, self.work,
                                              self.certs)
            self.original_idle = proc_status(original.pid, "VmRSS")
            self.processes.stop(original)
        secure = self.kisee("kisee-memory", tls=True)
        time.sleep(1)
        idle = proc_status(secure.pid, "VmRSS")
        self.rows.append(Row("resident memory, idle (VmRSS)", mib(idle),
                             f"{mib(self.original_idle)} (original, idle)",
                             f"{idle / self.original_idle:.2f}×", "< 30 MB",
                             idle * 1.048576 < 30))
        held, opened, rss = self.hold_connections(secure, 5000, tls=True)
        self.rows.append(Row(f"resident memory, {opened:,} keep-alive TLS connections open",
                             mib(rss), f"{mib(idle)} (idle)",
                             f"+{(rss - idle) * 1024 / max(opened, 1):.1f} KiB/conn",
                             "< 150 MB", opened == 5000 and rss * 1.048576 < 150,
                             connections=True))
        if held != opened:
            self.notes.append(f"The server counted {held} open TLS connections while the "
                              f"client held {opened}.")
        self.processes.stop(secure)

        # The same without TLS: how much of a connection's cost is TLS.
        plain = self.kisee("kisee-memory-plain")
        time.sleep(1)
        plain_idle = proc_status(plain.pid, "VmRSS")
        _, plain_opened, plain_rss = self.hold_connections(plain, 5000, tls=False)
        self.rows.append(Row(f"  same, {plain_opened:,} plain HTTP connections (TLS's share)",
                             mib(plain_rss), f"{mib(plain_idle)} (idle)",
                             f"+{(plain_rss - plain_idle) * 1024 / max(plain_opened, 1):.1f} "
                             "KiB/conn"))
        self.processes.stop(plain)

        # Default Argon2 cost: each verify takes 19 MiB, so the hash bound is
        # what keeps 200 logins at once from costing 200 x 19 MiB. The same
        # 200 connections logging in as the cheap-hash user measure what
        # everything but the hash costs; the hashes may add at most
        # hash_concurrency x 19 MiB to that.
        _, baseline, _, _ = self.concurrent_logins("kisee-argon2-cheap", "bench")
        idle, peak, after, result = self.concurrent_logins("kisee-argon2", "heavy")
        bound = baseline + self.cpus * MIB_PER_HASH
        self.rows.append(Row("peak memory (VmHWM), 200 concurrent default-cost logins",
                             mib(peak),
                             f"{mib(bound)} (bound: {mib(baseline)} for 200 cheap-hash logins "
                             f"+ {self.cpus} × 19 MiB)",
                             f"{100 * peak / bound:.0f}% of bound",
                             f"≤ bound, ≪ 200 × 19 MiB = {200 * MIB_PER_HASH:,} MiB",
                             peak <= bound))
        self.notes.append(
            f"Default-cost run: {result.requests} logins in {self.seconds} s "
            f"({result.per_second:.0f}/s, p50 {result.p50_ms:.0f} ms) with "
            f"`hash_concurrency: {self.cpus}`; VmRSS {mib(idle)} before, {mib(after)} after. "
            f"The cheap-hash run that sets the bound is the same server, the same 200 "
            f"connections, with the user whose hash costs 8 KiB."
        )

    def concurrent_logins(self, name, username):
        """200 concurrent logins of `username` for one run, on a fresh
        server: (idle VmRSS, VmHWM, VmRSS after, the wrk result)."""
        server = self.kisee(name)
        time.sleep(1)
        idle = proc_status(server.pid, "VmRSS")
        result = run_wrk(server.url + "/jwt/", 200, self.seconds, self.body(username),
                         timeout_s=30)
        peak = proc_status(server.pid, "VmHWM")
        after = proc_status(server.pid, "VmRSS")
        self.processes.stop(server)
        return idle, peak, after, result

    def hold_connections(self, server, count, tls, note=True):
        """Opens `count` connections with the tools client, samples the
        server's VmRSS while they are held; returns (server count, opened, MiB)."""
        addr = server.url.split("://", 1)[1]
        argv = [self.bins["tools"], "hold", "--addr", addr, "--ca", str(self.certs["ca"]),
                "--connections", str(count), "--hold-seconds", "60"]
        if not tls:
            argv.append("--plain")
        proc = self.processes.start("hold", argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        if not ready:
            raise BenchError("the connection holder did not report within 120 s")
        report = json.loads(proc.stdout.readline() or b"{}")
        if not report.get("open"):
            raise BenchError(f"no connection could be held: {report}")
        samples = []
        for _ in range(4):
            samples.append(proc_status(server.pid, "VmRSS"))
            time.sleep(0.25)
        held = open_connections(server)
        proc.stdin.close()
        proc.wait(30)
        self.processes.stop(proc)
        if report["failed"] and note:
            self.notes.append(f"{report['failed']} of {count} connections failed to open: "
                              f"{report['first_error']}")
        kind = "TLS" if tls else "plain HTTP"
        if note:
            self.notes.append(f"{report['open']:,} {kind} connections opened in "
                              f"{report['seconds']:.1f} s, one GET /health on each, then held.")
        return held, report["open"], max(samples)

    # --- 5: slow PAM ---

    def slow_pam(self):
        self.say("5. PAM taking 2 s per login, 50 in flight, GET /health latency")
        service, env = fixtures.pam_stack(self.work / "pam")
        backend = {"kind": "pam", "pam": {"service": service, "groups": False,
                                          "max_concurrent": 50, "timeout": "10s"}}
        server = self.kisee("kisee-pam", backend=backend, env=env)
        started = time.monotonic()
        status = http_status(server.url + "/jwt/", data=self.body().encode(), timeout=15)
        took = time.monotonic() - started
        if status != 201 or took < 2:
            raise BenchError(f"the slow PAM stack does not work: status {status} in {took:.1f} s")
        wrong = http_status(server.url + "/jwt/",
                            data=json.dumps({"username": "bench", "password": "wrong"}).encode(),
                            timeout=15)
        if wrong == 201:
            raise BenchError("the PAM stack accepted a wrong password")

        # One login load; GET /health measured in `repeats` windows inside it.
        seconds = max(self.seconds, 4) * self.repeats
        logins = {}

        def load():
            logins["result"] = run_wrk(server.url + "/jwt/", 50, seconds + 2, self.body(),
                                       timeout_s=15)

        loader = threading.Thread(target=load)
        loader.start()
        time.sleep(1.5)  # let the 50 logins get in flight first
        windows = [run_wrk(server.url + "/health", 4, seconds // self.repeats, timeout_s=5)
                   for _ in range(self.repeats)]
        loader.join()
        logins = logins["result"]
        p99 = median([w.p99_ms for w in windows])
        self.rows.append(Row("GET /health p99 with 50 PAM logins (2 s each) in flight",
                             ms(p99), f"{ms(median([w.p50_ms for w in windows]))} (p50)", "—",
                             "< 20 ms", p99 < 20))
        # 50 at a time, each taking `took`: whole waves fit in the run.
        possible = 50 * int((seconds + 2) / took)
        self.rows.append(Row(f"PAM logins completed in {seconds + 2} s, 50 at a time",
                             f"{logins.requests}", f"{possible} (50 × whole {took:.2f} s waves)",
                             f"{logins.requests / possible:.2f}×"))
        self.notes.append(f"PAM run: one login took {took:.2f} s alone; {logins.requests} logins "
                          f"(p50 {logins.p50_ms / 1000:.2f} s) in {seconds + 2} s; health p99 "
                          f"per window: {', '.join(ms(w.p99_ms) for w in windows)}.")
        self.processes.stop(server)

    # --- 6: LDAP ---

    def ldap(self):
        self.say("6. LDAP direct bind: Kisee POST /jwt/ vs raw ldap3 binds on the same slapd")
        url, user_dn = fixtures.start_slapd(self.processes, self.work / "slapd")
        template = "uid={username},ou=people," + fixtures.LDAP_SUFFIX
        backend = {"kind": "ldap", "ldap": {"urls": [url], "starttls": False,
                                            "ca_certificate": str(self.certs["ca"]),
                                            "bind_dn_template": template, "pool_size": 8,
                                            "timeout": "5s"}}
        server = self.kisee("kisee-ldap", backend=backend)
        self.ldap_backend = backend  # slapd runs on, for a profile
        body = self.body()
        kisee_runs, raw_runs = [], []
        raw = [self.bins["tools"], "ldap-binds", "--url", url, "--dn", user_dn,
               "--password", PASSWORD, "--connections", "8", "--seconds", str(self.seconds)]
        for repeat in range(self.repeats):
            kisee_runs.append(run_wrk(server.url + "/jwt/", 50, self.seconds, body).per_second)
            result = run_json(raw, timeout=self.seconds + 30)
            if result["failures"]:
                raise BenchError(f"raw binds failed: {result}")
            raw_runs.append(result["per_second"])
            self.say(f"   #{repeat + 1}: kisee {kisee_runs[-1]:,.0f}/s, raw binds "
                     f"{raw_runs[-1]:,.0f}/s")
        k, r = median(kisee_runs), median(raw_runs)
        share = paired_ratio(kisee_runs, raw_runs)
        self.rows.append(Row("POST /jwt/ req/s via LDAP (direct bind, pool 8, c=50)", rate(k),
                             f"{rate(r)} (ldap3, 8 conns, binds)", f"{100 * share:.0f}%",
                             "≥ 60%", share >= 0.60, cpu="ldap"))
        self.processes.stop(server)

    # --- 7: micro-benchmarks ---

    def micro(self):
        self.say("7. Micro-benchmarks: token signing (criterion)")
        # Other load on the machine lands on whichever function criterion
        # is timing: the whole set runs `repeats` times, each figure the
        # median of its runs.
        homes = [self.work / f"criterion-{repeat}" for repeat in range(self.repeats)]
        for home in homes:
            subprocess.run([self.bins["signing"], "--bench"], check=True,
                           stdout=subprocess.DEVNULL,
                           env=dict(os.environ, CRITERION_HOME=str(home)))

        def micros(name):
            runs = [json.loads((home / name / "new" / "estimates.json").read_text())
                    for home in homes]
            return median([run["median"]["point_estimate"] for run in runs]) / 1000

        issue = micros("issue_login")
        encode = micros("josekit_jwt_encode_es256")
        sign = micros("josekit_es256_sign")
        aws = micros("aws_lc_rs_es256_sign")
        direct = micros("openssl_direct_es256_sign")
        self.rows.append(Row("`TokenService::issue_login` (josekit JWT, aws-lc-rs signature), "
                             "median", f"{issue:.1f} µs",
                             f"{encode:.1f} µs (josekit JWT with its OpenSSL signer)",
                             f"{issue / encode:.2f}×"))
        self.rows.append(Row("  its ES256 signature alone (aws-lc-rs)", f"{aws:.1f} µs",
                             f"{sign:.1f} µs (josekit's OpenSSL signer)", f"{aws / sign:.2f}×"))
        self.rows.append(Row("  OpenSSL's ECDSA without josekit's per-signature EVP set-up",
                             f"{direct:.1f} µs", f"{sign:.1f} µs (josekit's OpenSSL signer)",
                             f"{direct / sign:.2f}×"))

    # --- where the time goes, when a CPU target is missed ---

    def profile(self, backend_name):
        """Samples Kisee's stacks (perf, cpu-clock) during a POST /jwt/ load
        at c=50 on one backend and keeps the functions that take the most
        time, callees included, and the split by library."""
        if shutil.which("perf") is None:
            self.profiles[backend_name] = "perf is not installed: no profile (linux-perf)."
            return
        self.say(f"profile: perf record on Kisee ({backend_name} backend), POST /jwt/ at c=50")
        backend = self.ldap_backend if backend_name == "ldap" else self.memory
        tls = backend_name.endswith("over TLS")
        server = self.kisee(f"kisee-profile-{backend_name.replace(' ', '-')}", backend=backend,
                            tls=tls)
        slapd = [p for p in self.processes.running if p.bench_name == "slapd"]
        data = self.work / f"perf-{backend_name.replace(' ', '-')}.data"
        loader = threading.Thread(target=run_wrk, args=(server.url + "/jwt/", 50,
                                                        self.seconds + 2, self.body()))
        loader.start()
        time.sleep(1)
        before = cpu_times(server.pid)
        slapd_before = cpu_times(slapd[0].pid)[0] if slapd and backend_name == "ldap" else 0
        subprocess.run(["perf", "record", "-F", "499", "-e", "cpu-clock", "--call-graph",
                        "dwarf,16384", "-p", str(server.pid), "-o", data, "--", "sleep",
                        str(self.seconds)], capture_output=True, check=True)
        after = cpu_times(server.pid)
        slapd_after = cpu_times(slapd[0].pid)[0] if slapd and backend_name == "ldap" else 0
        loader.join()
        self.processes.stop(server)
        report = ["perf", "report", "-i", str(data), "--stdio", "--sort"]
        by_library = subprocess.run(report + ["dso", "--no-children", "-g", "none"],
                                    capture_output=True, text=True).stdout
        by_function = subprocess.run(report + ["symbol", "--children", "-g", "none"],
                                     capture_output=True, text=True).stdout
        wall = after[2] - before[2]
        kisee_cores = (after[0] - before[0]) / wall
        busy_cores = (after[1] - before[1]) / wall
        slapd_share = ""
        if backend_name == "ldap":
            slapd_share = f", slapd {(slapd_after - slapd_before) / wall:.2f}"
        self.profiles[backend_name] = (
            f"During the sample Kisee used {kisee_cores:.2f} cores{slapd_share}; the whole "
            f"machine was busy {busy_cores:.2f} of {self.cpus} cores (wrk, perf, other users)."
            "\n\n" + profile_summary(by_library, by_function))

    def memory_profile(self, connections=1000):
        """Heap profile (valgrind massif) of Kisee holding plain HTTP
        connections: the allocation sites of the peak, per connection."""
        if shutil.which("valgrind") is None or shutil.which("ms_print") is None:
            self.memory_text = "valgrind is not installed: no heap profile."
            return
        self.say(f"memory profile: valgrind massif on Kisee holding {connections:,} connections")
        settings, port = fixtures.kisee_settings(self.work, "kisee-massif", self.certs,
                                                 self.memory)
        out = self.work / "massif.out"
        argv = ["valgrind", "--tool=massif", f"--massif-out-file={out}", "--depth=40",
                "--threshold=0.2", self.bins["kisee"], "--settings", settings]
        proc = self.processes.start("kisee-massif", argv)
        server = fixtures.Server(proc, f"http://127.0.0.1:{port}")
        wait_until(lambda: http_status(server.url + "/health") == 200, "kisee under massif",
                   proc, self.processes, timeout=120)
        self.hold_connections(server, connections, tls=False, note=False)
        self.processes.stop(proc, grace=60)
        printed = subprocess.run(["ms_print", out], capture_output=True, text=True).stdout
        self.memory_text = massif_summary(printed, connections)

    # --- the whole run ---

    def run(self):
        self.prepare()
        for name, method in SECTIONS.items():
            if not self.args.only or name in self.args.only:
                getattr(self, method)()
        for backend_name in ("memory", "memory over TLS", "ldap"):
            if any(row.cpu == backend_name and row.met is False for row in self.rows):
                self.profile(backend_name)
        if any(row.connections and row.met is False for row in self.rows):
            self.memory_profile()


# Frames every sample passes through, which say nothing about where time goes.
_PLUMBING = re.compile(r"^(0x[0-9a-f]+|start_thread|clone3?|std::sys::|core::ops::function::|"
                       r"<std::sys::thread|tokio::runtime::task::raw::poll|_start|main$)")


def profile_summary(by_library, by_function, top=30):
    """Plain-text tables from perf report: self time per library, then the
    functions with the largest share of samples, callees included."""
    lines = ["CPU samples by library (self time):", ""]
    for line in by_library.splitlines():
        found = re.match(r"^\s*([\d.]+)%\s+(\S+)", line)
        if found and float(found.group(1)) >= 0.5:
            lines.append(f"  {float(found.group(1)):5.1f}%  {found.group(2)}")
    lines += ["", "User-space functions by share of samples (total = with callees, self = alone;",
              "the kernel's share is above):", "",
              "  total   self  function"]
    kept = 0
    for line in by_function.splitlines():
        found = re.match(r"^\s*([\d.]+)%\s+([\d.]+)%\s+\[\.\]\s+(.+?)(\s+-\s+-)?\s*$", line)
        if not found:
            continue
        symbol = re.sub(r"::h[0-9a-f]{16}$", "", found.group(3))
        if _PLUMBING.match(symbol):
            continue
        if len(symbol) > 100:
            symbol = symbol[:97] + "..."
        lines.append(f"  {float(found.group(1)):5.1f}%  {float(found.group(2)):5.1f}%  {symbol}")
        kept += 1
        if kept == top:
            break
    return "\n".join(lines)


# Frames inside allocators and collections: the caller that matters is below.
_ALLOCATING = re.compile(r"^(<?alloc::|<?bytes::|<?hashbrown::|<?core::|std::alloc|__rust|"
                         r"<?http::header::map::|malloc|calloc|realloc|0x[0-9A-F]+$|\?\?\?)")
_MASSIF_LINE = re.compile(r"^([| ]*)->\s*([\d.]+)% \(([\d,]+)B\) (?:0x[0-9A-F]+: )?(.*)$")


def massif_summary(printed, connections):
    """The peak snapshot of ms_print's output: bytes per connection by the
    first caller outside allocators and collections."""
    peak = re.search(r"(\d+) \(peak\)", printed)
    if not peak:
        return "massif recorded no peak snapshot."
    lines = printed.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.split()[:1] == [peak.group(1)] and "," in line)
    total = int(lines[start].split()[2].replace(",", ""))
    sites = {}
    chain_open = False
    for line in lines[start + 1:]:
        if line.startswith("-----"):
            break
        found = _MASSIF_LINE.match(line)
        if not found:
            continue
        depth = len(found.group(1)) // 2
        if depth == 0:
            chain_open = True
        if not chain_open:
            continue
        function = re.sub(r" \(in [^)]*\)$|::h[0-9a-f]{16}", "", found.group(4))
        if re.match(r"in \d+\+? places?", function):
            function = "(smaller sites together)"
        if not _ALLOCATING.match(function):
            size = int(found.group(3).replace(",", ""))
            sites[function] = sites.get(function, 0) + size
            chain_open = False
    lines = [f"Heap at the peak: {total / 2**20:.1f} MiB with {connections:,} plain HTTP "
             f"connections held ({total / 1024 / connections:.1f} KiB per connection, "
             "idle heap included).", "", "  KiB/conn  first caller outside allocators"]
    for function, size in sorted(sites.items(), key=lambda item: -item[1])[:12]:
        if len(function) > 100:
            function = function[:97] + "..."
        lines.append(f"  {size / 1024 / connections:8.1f}  {function}")
    return "\n".join(lines)


def cpu_times(pid):
    """(CPU seconds used by `pid`, CPU seconds the machine was busy, now)."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    total = [int(n) for n in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = total[3] + total[4]  # idle, iowait
    return own, (sum(total[:8]) - idle) / tick, time.monotonic()


def openssl_speed(seconds):
    """One core's raw P-256 signatures per second."""
    out = subprocess.run(["openssl", "speed", "-seconds", str(seconds), "ecdsap256"],
                         capture_output=True, text=True, check=True).stdout
    found = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)", out)
    if not found:
        raise BenchError(f"unexpected openssl speed output:\n{out}")
    return float(found.group(1))


def open_connections(server):
    """Kisee's own count of open connections, from /metrics (-1 if unknown)."""
    context = ssl.create_default_context(cafile=str(server.ca)) if server.ca else None
    try:
        with urllib.request.urlopen(server.url + "/metrics", timeout=5, context=context) as page:
            text = page.read().decode()
    except OSError:
        return -1
    found = re.search(r"^kisee_open_connections\s+(\d+)", text, re.MULTILINE)
    # The scrape's own connection is counted too.
    return int(found.group(1)) - 1 if found else -1


def machine():
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return {"nproc": fixtures.nproc(), "cpu": cpu, "kernel": platform.release(), "load": load}


def report(bench, host, started, elapsed):
    lines = [
        "# Kisee benchmarks",
        "",
        f"- date: {started.strftime('%Y-%m-%d %H:%M %Z').strip()}",
        f"- machine: {host['nproc']} CPUs, {host['cpu']}, Linux {host['kernel']}; "
        f"load average {host['load']} at start, {host['load_end']} at the end "
        "(other users share this machine)",
        f"- method: `scripts/bench`; each figure is the median of {bench.repeats} runs of "
        f"{bench.seconds} s, Kisee and its peer alternating (ratios: median of the "
        f"run-by-run ratios); wrk -t1 over loopback; "
        f"the run took {elapsed / 60:.1f} min",
        "",
        "| figure | Kisee | peer | ratio | target | met? |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in bench.rows:
        lines.append("| " + " | ".join(row.cells()) + " |")
    lines += ["", "Notes:", ""]
    lines += [f"- {note}" for note in fixtures_notes() + bench.notes]
    for backend_name, text in bench.profiles.items():
        backend, _, over = backend_name.partition(" over ")
        transport = over or "plain HTTP"
        lines += ["", f"## Where the time goes: {backend} backend, {transport} (a CPU target was "
                  "missed)", "", f"perf record -e cpu-clock --call-graph dwarf on Kisee for "
                  f"{bench.seconds} s of POST /jwt/ at c=50, {transport}, {backend} backend:", "",
                  "```", text, "```"]
    if bench.memory_text:
        lines += ["", "## Where the memory of a connection goes (a memory target was missed)", "",
                  "valgrind --tool=massif on Kisee (plain HTTP) holding idle keep-alive "
                  "connections, each after one GET /health:", "", "```", bench.memory_text,
                  "```"]
    return "\n".join(lines) + "\n"


def fixtures_notes():
    return [
        "Throughput runs log in as a memory-backend user whose Argon2id hash uses "
        "m=8 KiB, t=1, p=1, so that the server, not the hash, is measured; both servers "
        "sign ES256 with the same P-256 key; the original is Kisee 21.9.0 on its demo "
        "backend (Python, aiohttp), Kisee runs with `log.level: warn` and the throttle off.",
        "HTTPS uses a P-256 server certificate; the server keeps TLS 1.3 session tickets "
        "(rustls ticketer), which the 'offering session tickets' row uses.",
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of one run (5)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (3)")
    parser.add_argument("--openssl-seconds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--output", type=Path,
                        help="where the table goes (bench/results.md for a whole run)")
    parser.add_argument("--only", type=lambda text: text.split(","), default=[],
                        help=f"comma-separated sections to run ({', '.join(SECTIONS)}); the "
                             "table then goes to standard output only")
    args = parser.parse_args()
    unknown = set(args.only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.output is None and not args.only:
        args.output = fixtures.ROOT / "bench" / "results.md"

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))

    work = Path(tempfile.mkdtemp(prefix="kisee-bench-"))
    bench = Bench(args, work)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = datetime.datetime.now().astimezone()
    clock = time.monotonic()
    host = machine()
    try:
        bench.run()
    except BenchError as err:
        print(f"bench: {err}", file=sys.stderr)
        return 1
    finally:
        bench.processes.stop_all()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    host["load_end"] = machine()["load"]
    text = report(bench, host, started, time.monotonic() - clock)
    if args.output:
        args.output.write_text(text)
    print()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
