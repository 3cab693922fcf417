#!/usr/bin/env python3
"""Connection floods against the release binary with its default limits, while a working
crawler (wrk, 8 keep-alive connections from 127.0.0.1) fetches through it.

    tests/stress/floods.py            # about 4 minutes; markdown table on stdout
    STRESS_BUILD=0 tests/stress/floods.py   # use target/release/consentry as it is

Scenarios, each measured against the baseline of the same run:
  idle-10k       10,000 connections from 127.0.0.2 that send nothing, held open
  idle-15k-churn 15,000 attempted (over proxy.max_connections = 10,000), each reconnecting at once
                 when closed: the attacker keeps displacing itself
  slowloris-10k  10,000 connections sending a request head at one byte per second, reconnecting
                 when closed (proxy.header_read_timeout = 30 s closes them)
  slow-read-1k   1,000 connections requesting 8 MiB and reading nothing, reconnecting when closed
                 (proxy.client_write_timeout = 60 s)
The flood runs in a separate process (asyncio), also on 127.0.0.1/8. Exit status 1 when a
limit is broken: the proxy holds more connections than configured, the working crawler gets
errors, or the proxy dies.
"""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from harness import log, ms  # noqa: E402

MAX_CONNECTIONS = 10_000
FLOOD_SOURCE = "127.0.0.2"


# TCP_CLOSE, TCP_CLOSE_WAIT, TCP_LAST_ACK (linux/tcp_states.h): the proxy has closed its end.
CLOSED_STATES = (7, 8, 9)


def tcp_state(sock):
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
    except OSError:
        return 7


# --------------------------------------------------------------------------------------------
# The flooder (runs as `floods.py --flooder '<json>'` in its own process)
# --------------------------------------------------------------------------------------------
async def flooder(spec):
    host, port = spec["proxy"].rsplit(":", 1)
    state = {"open": 0, "opened": 0, "closed": 0, "errors": 0}
    gate = asyncio.Semaphore(256)  # connects in flight: keep the SYN backlog from overflowing

    async def hold(reader, writer):
        kind = spec["kind"]
        if kind == "idle":
            await reader.read(1)  # b"" once the proxy closes
        elif kind == "slowloris":
            writer.write(f"GET http://127.0.0.1:{spec['origin']}/page HTTP/1.1\r\nHost: x\r\nX-a: ".encode())
            while not reader.at_eof():
                await asyncio.sleep(spec.get("interval", 1.0))
                writer.write(b"a")
                await writer.drain()
                if reader.at_eof():
                    break
        elif kind == "slowread":
            writer.write(f"GET http://127.0.0.1:{spec['origin']}/big HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            await writer.drain()
            # Never read the answer; learn of the close from the kernel's view of the socket.
            sock = writer.transport.get_extra_info("socket")
            while tcp_state(sock) not in CLOSED_STATES:
                await asyncio.sleep(1.0)

    async def one():
        while True:
            async with gate:
                try:
                    reader, writer = await asyncio.open_connection(host, int(port), local_addr=(FLOOD_SOURCE, 0),
                                                                   limit=1 << 16)
                except OSError:
                    state["errors"] += 1
                    await asyncio.sleep(0.2)
                    continue
            state["open"] += 1
            state["opened"] += 1
            try:
                await hold(reader, writer)
            except (OSError, ConnectionError):
                pass
            state["open"] -= 1
            state["closed"] += 1
            writer.transport.abort()
            if not spec["reconnect"]:
                return

    tasks = [asyncio.create_task(one()) for _ in range(spec["count"])]
    while True:
        print("STATUS " + json.dumps(state), flush=True)
        await asyncio.sleep(1.0)
        if all(t.done() for t in tasks):
            print("STATUS " + json.dumps(state), flush=True)
            return


class Flood:
    def __init__(self, proxy, origin_port, kind, count, reconnect, interval=1.0):
        spec = {"proxy": proxy.proxy, "origin": origin_port, "kind": kind, "count": count,
                "reconnect": reconnect, "interval": interval}
        self.process = subprocess.Popen([sys.executable, __file__, "--flooder", json.dumps(spec)],
                                        stdout=subprocess.PIPE, text=True)
        harness._started.append(self.process)
        self.state = {}

    def status(self):
        """The newest status line (the flooder prints one a second)."""
        line = self.process.stdout.readline()
        if line.startswith("STATUS "):
            self.state = json.loads(line[7:])
        return self.state

    def wait_open(self, count, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.status().get("open", 0) >= count:
                return True
        return False

    def stop(self):
        self.process.kill()
        self.process.wait()


# --------------------------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------------------------
def readings(proxy):
    m = proxy.metrics()
    return {
        "open": int(m.get("consentry_client_connections", 0)),
        "reclaimed": int(m.get("consentry_client_connections_reclaimed_total", 0)),
        "rss_mib": proxy.rss_kib() / 1024,
        "fds": proxy.fds(),
    }


def main():
    harness.require("nginx", "wrk")
    harness.build_release()
    work = harness.workdir("floods")
    www = os.path.join(work, "www")
    os.makedirs(www)
    with open(os.path.join(www, "robots.txt"), "w") as f:
        f.write("User-agent: *\nAllow: /\n")
    with open(os.path.join(www, "page"), "wb") as f:
        f.write(os.urandom(1024))
    with open(os.path.join(www, "big"), "wb") as f:
        f.write(os.urandom(8 << 20))
    origin = harness.start_nginx(work, www)
    proxy = harness.Proxy(work, harness.loopback_config(work, "stress-admin-token-0123456789"))
    urls = [f"http://127.0.0.1:{origin}/page"]
    seconds = int(os.environ.get("FLOOD_WRK_SECONDS", "10"))
    rows = []
    broken = []

    def measure(name, flood=None, note=""):
        before = readings(proxy)
        result = harness.wrk(proxy.proxy, urls, seconds, work=work)
        after = readings(proxy)
        attacker = flood.status() if flood else {}
        row = {"name": name, "wrk": result, "before": before, "after": after, "attacker": attacker, "note": note}
        rows.append(row)
        log(f"{name}: {result['rps']:.0f} req/s, p99 {ms(result['p99_us'])} ms, errors {result['errors']}, "
            f"status {result['status']}; open {after['open']}, rss {after['rss_mib']:.1f} MiB, fds {after['fds']}")
        if result["errors"] or result["status"]:
            broken.append(f"{name}: the working crawler got {result['errors']} errors, {result['status']} bad answers")
        if max(before["open"], after["open"]) > MAX_CONNECTIONS:
            broken.append(f"{name}: {after['open']} connections open, over proxy.max_connections")
        if not proxy.alive():
            broken.append(f"{name}: the proxy died")
        return row

    def settle():
        deadline = time.time() + 60
        while readings(proxy)["open"] > 0 and time.time() < deadline:
            time.sleep(0.5)

    # Warm the policy cache and the upstream pool, then the baseline.
    harness.wrk(proxy.proxy, urls, 3, work=work)
    measure("baseline")

    def scenario(name, description, kind, count, reconnect, open_at_least, settle_s, note=""):
        """Starts a flood, waits until `open_at_least` of its connections are open and `settle_s`
        more seconds, measures the working crawler under it, then stops it and lets it drain."""
        log(f"{name}: {description}")
        flood = Flood(proxy, origin, kind, count, reconnect=reconnect)
        started = time.time()
        opened = flood.wait_open(open_at_least, 120)
        if not reconnect:
            note = f"{'all' if opened else 'NOT all'} {count:,} open after {time.time() - started:.1f} s"
        time.sleep(settle_s)
        measure(name, flood, note)
        flood.stop()
        settle()

    scenario("idle-10k", "opening 10,000 idle connections", "idle", 10_000, False, 10_000, 0)
    scenario("idle-15k-churn", "15,000 attempted, reconnecting when closed", "idle", 15_000, True, 9_000, 5)
    # Past the 30 s header timeout, so that the measured window sees them cut and coming back.
    scenario("slowloris-10k", "10,000 heads at one byte per second, reconnecting", "slowloris", 10_000, True,
             9_000, 25, "window spans the 30 s header timeout")
    scenario("slow-read-1k", "1,000 connections reading nothing of 8 MiB", "slowread", 1_000, True, 1_000, 5)
    final = readings(proxy)

    base = rows[0]["wrk"]
    print(f"\n| scenario | crawler req/s (× baseline) | p50 ms | p99 ms (× baseline) | crawler errors | "
          f"open conns | reclaimed (cum.) | proxy RSS MiB | proxy fds | note |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        w, a = row["wrk"], row["after"]
        print(f"| {row['name']} | {w['rps']:.0f} ({w['rps'] / base['rps']:.2f}×) | {ms(w['p50_us'])} | "
              f"{ms(w['p99_us'])} ({w['p99_us'] / max(base['p99_us'], 1):.1f}×) | {w['errors'] + w['status']} | "
              f"{max(row['before']['open'], a['open'])} | {a['reclaimed']} | {a['rss_mib']:.1f} | {a['fds']} | {row['note']} |")
    print(f"\nafter all floods: {final['open']} connections open, RSS {final['rss_mib']:.1f} MiB, {final['fds']} fds")
    if broken:
        print("\nBROKEN:\n" + "\n".join(broken))
        sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--flooder":
        try:
            asyncio.run(flooder(json.loads(sys.argv[2])))
        except KeyboardInterrupt:
            pass
    else:
        main()
