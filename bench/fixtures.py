"""What scripts/bench builds and sets up before measuring: the release
binaries, the original Kisee in its virtualenv, certificates and keys,
password hashes, settings files, a private slapd and a pam_wrapper stack."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from harness import BenchError, free_port, http_status, wait_until

ROOT = Path(__file__).resolve().parent.parent
ORIGINAL_VENV = ROOT / "target" / "bench" / "venv-original"
ORIGINAL_PINS = {"kisee": "21.9.0", "PyJWT": "2.10.1"}

PASSWORD = "bench-password-1"
PAM_WRAPPER = Path("/usr/lib/x86_64-linux-gnu/libpam_wrapper.so")
PAM_MATRIX = Path("/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so")
PAM_MODULES = Path("/usr/lib/x86_64-linux-gnu/security")
LDAP_SUFFIX = "dc=example,dc=org"


def run(argv, **kwargs):
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(map(str, argv))} failed:\n{done.stderr.strip()}")
    return done.stdout


# --- binaries ---------------------------------------------------------------

def build(bin_dir: Path):
    """Builds Kisee and the bench targets in release mode and copies them to
    `bin_dir`, so that edits made during the run change nothing measured."""
    # One cargo invocation in the bench profile (the release profile's
    # settings) builds the library once for the server and the benches.
    print("building optimised binaries (cargo build --profile bench)...", flush=True)
    built = subprocess.run(
        ["cargo", "build", "--profile", "bench", "--bin", "kisee", "--bench", "signing",
         "--bench", "tools", "--message-format=json-render-diagnostics"],
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,
    )
    executables = {}
    for line in built.stdout.splitlines():
        message = json.loads(line)
        if message.get("reason") == "compiler-artifact" and message.get("executable"):
            executables[message["target"]["name"]] = Path(message["executable"])
    bin_dir.mkdir()
    copies = {}
    for name in ("kisee", "signing", "tools"):
        if name not in executables:
            raise BenchError(f"cargo built no {name} executable")
        copies[name] = bin_dir / name
        shutil.copy2(executables[name], copies[name])
    return copies


def original_kisee():
    """The original Python Kisee, installed once into target/bench/."""
    python = ORIGINAL_VENV / "bin" / "python"
    probe = "import importlib.metadata as m; print(m.version('kisee'), m.version('PyJWT'))"
    wanted = f"{ORIGINAL_PINS['kisee']} {ORIGINAL_PINS['PyJWT']}"
    if python.exists():
        found = subprocess.run([python, "-c", probe], capture_output=True, text=True)
        if found.stdout.strip() == wanted:
            return ORIGINAL_VENV / "bin" / "kisee"
    print("installing the original Kisee into target/bench/venv-original...", flush=True)
    run([sys.executable, "-m", "venv", "--clear", ORIGINAL_VENV])
    pins = [f"{name}=={version}" for name, version in ORIGINAL_PINS.items()]
    run([python, "-m", "pip", "install", "--quiet", *pins])
    return ORIGINAL_VENV / "bin" / "kisee"


# --- keys, certificates, hashes -------------------------------------------------

def certificates(folder: Path):
    """A P-256 CA, a server certificate for 127.0.0.1 and localhost signed by
    it, and a P-256 JWT signing key (PKCS#8) with its public half."""
    folder.mkdir()
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run(["openssl", "req", "-x509", *ec, "-keyout", folder / "ca-key.pem",
         "-out", folder / "ca.pem", "-days", "2", "-subj", "/CN=kisee bench CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    run(["openssl", "req", *ec, "-keyout", folder / "server-key.pem",
         "-out", folder / "server.csr", "-subj", "/CN=localhost"])
    extensions = folder / "server.ext"
    extensions.write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
    )
    run(["openssl", "x509", "-req", "-in", folder / "server.csr", "-CA", folder / "ca.pem",
         "-CAkey", folder / "ca-key.pem", "-CAcreateserial", "-days", "2",
         "-extfile", extensions, "-out", folder / "server.pem"])
    run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", folder / "jwt.pem"])
    run(["openssl", "pkey", "-in", folder / "jwt.pem", "-pubout", "-out", folder / "jwt-pub.pem"])
    return {name: folder / f"{name}.pem" for name in ("ca", "server", "server-key", "jwt", "jwt-pub")}


def password_hashes(bins):
    """A cheap Argon2id hash (m=8 KiB, t=1, p=1) for throughput runs, where
    the server rather than the hash is measured, and one with the default
    cost from `kisee hash-password`, for the memory-bound run."""
    cheap = run([bins["tools"], "cheap-hash", "--memory-kib", "8", "--passes", "1",
                 "--lanes", "1"], input=PASSWORD).strip()
    default = run([bins["kisee"], "hash-password"], input=PASSWORD).strip()
    return {"cheap": cheap, "default": default}


# --- Kisee -------------------------------------------------------------------

def kisee_settings(folder: Path, name, certs, backend, tls=False, extra=None):
    """Writes a settings file (JSON, which is YAML) and returns (path, port)."""
    port = free_port()
    scheme = "https" if tls else "http"
    settings = {
        "server": {"listen": f"127.0.0.1:{port}", "public_url": f"{scheme}://127.0.0.1:{port}"},
        "jwt": {"issuer": "kisee-bench", "private_key": str(certs["jwt"])},
        "backend": backend,
        # Wrong-password loads would otherwise get 429; benches log in as one
        # user from one address, many times.
        "throttle": {"per_user": {"failures": 0}, "per_client": {"failures": 0}},
        # The original logs nothing per request at its default verbosity.
        "log": {"level": "warn"},
    }
    if tls:
        settings["server"]["tls"] = {"certificate": str(certs["server"]),
                                     "private_key": str(certs["server-key"])}
    for section, values in (extra or {}).items():
        settings.setdefault(section, {}).update(values)
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps(settings, indent=2))
    return path, port


def memory_backend(hashes, hash_concurrency):
    users = [
        {"username": "bench", "password_hash": hashes["cheap"]},
        {"username": "heavy", "password_hash": hashes["default"]},
    ]
    return {"kind": "memory", "memory": {"users": users, "demo_root": False,
                                          "registration": False,
                                          "hash_concurrency": hash_concurrency}}


class Server:
    """A started server: its process, base URL and CA (for https)."""

    def __init__(self, proc, url, ca=None):
        self.proc, self.url, self.ca = proc, url, ca

    @property
    def pid(self):
        return self.proc.pid


def start_kisee(processes, bins, name, settings, port, certs, tls=False, env=None):
    proc = processes.start(name, [bins["kisee"], "--settings", settings], env=env)
    scheme = "https" if tls else "http"
    server = Server(proc, f"{scheme}://127.0.0.1:{port}", certs["ca"] if tls else None)
    wait_until(lambda: http_status(server.url + "/health", server.ca) == 200,
               f"kisee ({name})", proc, processes)
    return server


# --- the original --------------------------------------------------------------

def start_original(processes, executable, folder: Path, certs):
    """The original on its demo backend, with a P-256 key (ES256), and one
    registered user with the benchmark's password."""
    port = free_port()
    settings = folder / "original.toml"
    private_key = certs["jwt"].read_text()
    public_key = certs["jwt-pub"].read_text()
    settings.write_text(
        "[server]\n"
        f'host = "127.0.0.1"\nport = {port}\nhostname = "http://127.0.0.1:{port}"\n\n'
        '[identity_backend]\nclass = "kisee.providers.demo.DemoBackend"\n\n'
        f'[jwt]\niss = "kisee-bench"\nprivate_key = """{private_key}"""\n'
        f'public_key = """{public_key}"""\n'
    )
    proc = processes.start("original", [executable, "--settings", settings], cwd=folder)
    server = Server(proc, f"http://127.0.0.1:{port}")
    wait_until(lambda: http_status(server.url + "/health") == 200, "original kisee", proc,
               processes, timeout=60)
    user = json.dumps({"username": "bench", "password": PASSWORD,
                       "email": "bench@example.org"}).encode()
    status = http_status(server.url + "/users/", data=user)
    if status != 201:
        raise BenchError(f"the original refused to register the bench user ({status})")
    return server


# --- slapd -------------------------------------------------------------------

def start_slapd(processes, folder: Path):
    """A private slapd on a free port with one user, uid=bench."""
    folder.mkdir()
    (folder / "data").mkdir()
    schemas = "".join(f"include /etc/ldap/schema/{name}.schema\n"
                      for name in ("core", "cosine", "inetorgperson", "nis"))
    (folder / "slapd.conf").write_text(
        schemas
        + f"pidfile {folder}/slapd.pid\nargsfile {folder}/slapd.args\n"
        + "modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
        + "database mdb\nmaxsize 104857600\n"
        + f'suffix "{LDAP_SUFFIX}"\nrootdn "cn=admin,{LDAP_SUFFIX}"\n'
        + f"directory {folder}/data\n"
        + "access to attrs=userPassword by anonymous auth by self read by * none\n"
        + "access to * by * read\n"
    )
    hashed = run(["slappasswd", "-s", PASSWORD]).strip()
    (folder / "seed.ldif").write_text(
        f"dn: {LDAP_SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\n"
        "dc: example\no: Example\n\n"
        f"dn: ou=people,{LDAP_SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n"
        f"dn: uid=bench,ou=people,{LDAP_SUFFIX}\nobjectClass: inetOrgPerson\n"
        f"uid: bench\ncn: Bench User\nsn: User\nmail: bench@example.org\n"
        f"userPassword: {hashed}\n"
    )
    run(["slapadd", "-q", "-f", folder / "slapd.conf", "-l", folder / "seed.ldif"])
    port = free_port()
    url = f"ldap://127.0.0.1:{port}"
    proc = processes.start("slapd", ["slapd", "-f", folder / "slapd.conf", "-h", url + "/",
                                     "-d", "0"])
    user_dn = f"uid=bench,ou=people,{LDAP_SUFFIX}"

    def answers():
        probe = subprocess.run(["ldapwhoami", "-x", "-H", url, "-D", user_dn, "-w", PASSWORD],
                               capture_output=True)
        return probe.returncode == 0

    wait_until(answers, "slapd", proc, processes)
    return url, user_dn


# --- PAM through pam_wrapper ---------------------------------------------------

def pam_stack(folder: Path, seconds=2):
    """A PAM service whose auth takes `seconds` (pam_exec running a sleep)
    before pam_matrix checks the password; returns (service, environment)."""
    for needed in (PAM_WRAPPER, PAM_MATRIX, PAM_MODULES / "pam_exec.so"):
        if not needed.exists():
            raise BenchError(f"{needed} is missing (scripts/install-test-deps installs it)")
    folder.mkdir()
    service = "kisee-bench"
    sleeper = folder / "slow.sh"
    sleeper.write_text(f"#!/bin/sh\nexec sleep {seconds}\n")
    sleeper.chmod(0o755)
    passdb = folder / "passdb"
    passdb.write_text(f"bench:{PASSWORD}:{service}\n")
    services = folder / "services"
    services.mkdir()
    matrix = f"{PAM_MATRIX} passdb={passdb}"
    (services / service).write_text(
        f"auth required {PAM_MODULES}/pam_exec.so {sleeper}\n"
        f"auth required {matrix}\n"
        f"account required {matrix}\n"
    )
    (services / "other").write_text(
        f"auth required {PAM_MODULES}/pam_deny.so\naccount required {PAM_MODULES}/pam_deny.so\n"
    )
    env = {"LD_PRELOAD": str(PAM_WRAPPER), "PAM_WRAPPER": "1",
           "PAM_WRAPPER_SERVICE_DIR": str(services)}
    return service, env


def nproc():
    return len(os.sched_getaffinity(0))
