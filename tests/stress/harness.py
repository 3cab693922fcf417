"""Shared parts of the stress scripts (floods.py, soak.py): a real nginx origin, the real
release `consentry` binary, wrk as the working crawler, and readings of the proxy process.

Everything listens on 127.0.0.1 only; every process started here is stopped on exit.
"""

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("STRESS_BIN", os.path.join(REPO, "target", "release", "consentry"))

_started = []


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _stop_all():
    for process in reversed(_started):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


atexit.register(_stop_all)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def workdir(name):
    path = tempfile.mkdtemp(prefix=f"consentry-{name}-")
    os.chmod(path, 0o755)  # nginx workers run as nobody and must read the files here
    log(f"scratch directory {path}")
    return path


def require(*tools):
    missing = [t for t in tools if shutil.which(t) is None and not os.path.exists(t)]
    if missing:
        sys.exit(f"missing: {', '.join(missing)} (apt-get install nginx-light wrk; cargo build --release)")


def build_release():
    if os.environ.get("STRESS_BUILD", "1") == "1":
        log("cargo build --release --bin consentry")
        subprocess.run(["cargo", "build", "--release", "--bin", "consentry"], cwd=REPO, check=True)
    require(BINARY)


def start_nginx(work, root, extra_server="", worker_connections=4096):
    """nginx serving `root` (static files) on a fresh port. `root` may use $host."""
    port = free_port()
    conf_dir = os.path.join(work, "nginx")
    os.makedirs(conf_dir, exist_ok=True)
    conf = f"""
worker_processes 1;
daemon off;
pid {conf_dir}/nginx.pid;
error_log {conf_dir}/error.log warn;
events {{ worker_connections {worker_connections}; }}
http {{
    access_log off;
    default_type application/octet-stream;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    open_file_cache off;
    client_body_temp_path {conf_dir}/body; proxy_temp_path {conf_dir}/proxy;
    fastcgi_temp_path {conf_dir}/fastcgi; uwsgi_temp_path {conf_dir}/uwsgi; scgi_temp_path {conf_dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location ~ \\.html$ {{ default_type text/html; }}
        {extra_server}
    }}
}}
"""
    path = os.path.join(conf_dir, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    process = subprocess.Popen(
        ["nginx", "-p", conf_dir, "-c", path, "-e", os.path.join(conf_dir, "error.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _started.append(process)
    wait_port(port, process)
    return port


def wait_port(port, process, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"process {process.args[0]} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port} after {seconds} s")


def loopback_config(work, admin_token, extra=""):
    """Consentry's defaults, with every listener on an ephemeral loopback port, data in `work`,
    and loopback origins allowed; `extra` is appended (further tables)."""
    return f"""
data_dir = "{work}/data"
[proxy]
listen = "127.0.0.1:0"
allow_private_destinations = true
[admin]
listen = "127.0.0.1:0"
token = "{admin_token}"
[public]
listen = "127.0.0.1:0"
{extra}"""


class Proxy:
    """The release binary with `config` (TOML) written to `work`."""

    def __init__(self, work, config, env=None):
        self.work = work
        path = os.path.join(work, "consentry.toml")
        with open(path, "w") as f:
            f.write(config)
        self.stderr = open(os.path.join(work, "consentry.log"), "w")
        # CONSENTRY_* variables are config overrides: none of the caller's may leak in.
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
        full_env.update(RUST_LOG=os.environ.get("STRESS_RUST_LOG", "warn"), **(env or {}))
        self.process = subprocess.Popen([BINARY, "run", "-c", path], stdout=subprocess.PIPE,
                                        stderr=self.stderr, env=full_env, text=True)
        _started.append(self.process)
        ready = self.process.stdout.readline()
        fields = dict(f.split("=", 1) for f in ready.split() if "=" in f)
        if "proxy" not in fields:
            sys.exit(f"consentry did not start: {ready!r}; see {self.stderr.name}")
        self.proxy = fields["proxy"]
        self.admin = fields["admin"]
        self.pid = self.process.pid
        log(f"consentry pid {self.pid}: proxy {self.proxy}, admin {self.admin}")

    def metrics(self):
        """Prometheus text as {series: value}."""
        with urllib.request.urlopen(f"http://{self.admin}/metrics", timeout=10) as r:
            text = r.read().decode()
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                try:
                    values[series] = float(value)
                except ValueError:
                    pass
        return values

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def cpu_seconds(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


WRK_LUA = """
local urls = {}
local n = 0
for line in io.lines("%(urls)s") do n = n + 1; urls[n] = line end
local delay_ms = %(delay_ms)s
local i = 0
request = function()
  i = i + 1
  local url = urls[math.random(n)]
  local host = url:match("^http://([^/]+)")
  return wrk.format("GET", url, { ["Host"] = host })
end
if delay_ms > 0 then
  delay = function() return delay_ms end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%%d duration_us=%%d p50_us=%%d p90_us=%%d p99_us=%%d max_us=%%d status=%%d connect=%%d read=%%d write=%%d timeout=%%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.status, e.connect, e.read, e.write, e.timeout))
end
"""


def wrk(proxy_addr, urls, seconds, connections=8, delay_ms=0, work=None, timeout_s=10):
    """Runs wrk through the proxy against `urls` (picked at random); returns its counters.
    `status` counts answers other than 2xx/3xx (a 451 block is one)."""
    work = work or tempfile.mkdtemp(prefix="consentry-wrk-")
    urls_path = os.path.join(work, f"urls-{os.getpid()}-{time.time_ns()}.txt")
    with open(urls_path, "w") as f:
        f.write("\n".join(urls) + "\n")
    script = urls_path + ".lua"
    with open(script, "w") as f:
        f.write(WRK_LUA % {"urls": urls_path, "delay_ms": delay_ms})
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout_s}s", "-s", script,
         f"http://{proxy_addr}"], capture_output=True, text=True, check=False)
    match = re.search(r"RESULT (.*)", out.stdout)
    if not match:
        sys.exit(f"wrk failed: {out.stdout}\n{out.stderr}")
    result = {k: int(v) for k, v in (kv.split("=") for kv in match.group(1).split())}
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["errors"] = result["connect"] + result["read"] + result["write"] + result["timeout"]
    return result


def ms(us):
    return f"{us / 1000:.2f}"
