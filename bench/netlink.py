"""A network namespace for the sandbox, with a fast link and a 20 ms round-trip link to it.

The sandbox runs inside its own namespace so that (a) every TCP connection it accepts is
counted by that namespace's own ``PassiveOpens`` counter (``/proc/<pid>/net/snmp``), which no
other process on the machine touches, and (b) a link with real delay can sit in front of it:
connection set-up then costs a round trip, as over the internet.

- fast link: a veth pair, ``10.213.0.1`` (here) to ``10.213.0.2`` (sandbox);
- slow link: ``10.213.0.5`` to ``10.213.0.6``, 10 ms each way. With ``netem`` in the kernel
  that is a second veth pair with a ``netem delay 10ms`` qdisc at each end; without it (this
  machine), two TUN devices joined by the user-space delay line below (``python
  bench/netlink.py delayline NS``), which holds every packet 10 ms before passing it on.

Needs root and ``ip``; ``NetLab.create`` raises ``NetLabUnavailable`` saying why otherwise.
"""

from __future__ import annotations

import fcntl
import os
import queue
import shutil
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

FAST_HOST, FAST_SANDBOX = "10.213.0.1", "10.213.0.2"
SLOW_HOST, SLOW_SANDBOX = "10.213.0.5", "10.213.0.6"
ONE_WAY_DELAY = 0.010
TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000


class NetLabUnavailable(RuntimeError):
    """This machine cannot build the namespace (not root, no ``ip``, no TUN...)."""


def ip(*args: str, netns: str | None = None) -> None:
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise NetLabUnavailable(f"{' '.join(cmd)}: {done.stderr.strip()}")


class NetLab:
    """The namespace and its links; ``close()`` removes everything it made."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tag = name[-6:]
        self.slow_kind = ""
        self.delayline: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls) -> NetLab:
        if os.geteuid() != 0:
            raise NetLabUnavailable("not root")
        if shutil.which("ip") is None:
            raise NetLabUnavailable("no `ip` command")
        lab = cls(f"ohbench{os.getpid() % 100000}")
        try:
            lab._build()
        except Exception:
            lab.close()
            raise
        return lab

    def _build(self) -> None:
        ns, t = self.name, self.tag
        ip("netns", "add", ns)
        ip("link", "set", "lo", "up", netns=ns)
        ip("link", "add", f"obf{t}", "type", "veth", "peer", "name", f"obs{t}")
        ip("link", "set", f"obs{t}", "netns", ns)
        ip("addr", "add", f"{FAST_HOST}/30", "dev", f"obf{t}")
        ip("link", "set", f"obf{t}", "up")
        ip("addr", "add", f"{FAST_SANDBOX}/30", "dev", f"obs{t}", netns=ns)
        ip("link", "set", f"obs{t}", "up", netns=ns)
        try:
            self._slow_netem()
            self.slow_kind = "veth pair with netem delay 10ms each way"
        except NetLabUnavailable:
            self._slow_tun()
            self.slow_kind = "two TUN devices joined by a user-space 10 ms delay line each way"

    def _slow_netem(self) -> None:
        ns, t = self.name, self.tag
        ip("link", "add", f"onf{t}", "type", "veth", "peer", "name", f"ons{t}")
        try:
            for dev in (f"onf{t}", f"ons{t}"):
                cmd = ["tc", "qdisc", "add", "dev", dev, "root", "netem", "delay", "10ms"]
                done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if done.returncode:
                    raise NetLabUnavailable(f"netem: {done.stderr.strip()}")
        except NetLabUnavailable:
            ip("link", "del", f"onf{t}")
            raise
        ip("link", "set", f"ons{t}", "netns", ns)
        ip("addr", "add", f"{SLOW_HOST}/30", "dev", f"onf{t}")
        ip("link", "set", f"onf{t}", "up")
        ip("addr", "add", f"{SLOW_SANDBOX}/30", "dev", f"ons{t}", netns=ns)
        ip("link", "set", f"ons{t}", "up", netns=ns)

    def _slow_tun(self) -> None:
        if not Path("/dev/net/tun").exists():
            raise NetLabUnavailable("no netem and no /dev/net/tun")
        self.delayline = subprocess.Popen(
            [sys.executable, __file__, "delayline", self.name, self.tag],
            stdout=subprocess.PIPE,
        )
        assert self.delayline.stdout is not None
        line = self.delayline.stdout.readline().decode().strip()
        if line != "ready":
            self.delayline.kill()
            raise NetLabUnavailable(f"delay line did not start: {line!r}")

    def snmp_passive_opens(self, pid: int) -> int:
        """TCP connections accepted so far in the namespace of process ``pid``."""
        lines = [ln.split() for ln in Path(f"/proc/{pid}/net/snmp").read_text().splitlines()]
        tcp = [ln for ln in lines if ln and ln[0] == "Tcp:"]
        return int(tcp[1][tcp[0].index("PassiveOpens")])

    def close(self) -> None:
        if self.delayline is not None:
            self.delayline.terminate()
            self.delayline.wait(timeout=10)
        for dev in (f"obf{self.tag}", f"onf{self.tag}"):
            subprocess.run(["ip", "link", "del", dev], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def delay(src: int, dst: int) -> None:
    """Copy packets from ``src`` to ``dst``, each ONE_WAY_DELAY after it arrived (FIFO)."""
    held: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()

    def writer() -> None:
        while True:
            due, packet = held.get()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                os.write(dst, packet)
            except OSError:
                pass

    threading.Thread(target=writer, daemon=True).start()
    while True:
        packet = os.read(src, 65536)
        held.put((time.monotonic() + ONE_WAY_DELAY, packet))


def delayline(ns: str, tag: str) -> None:
    """Create the TUN pair, move one end into ``ns``, forward with delay until killed."""
    here, there = f"otf{tag}", f"ots{tag}"
    try:
        fd_here, fd_there = open_tun(here), open_tun(there)
        ip("link", "set", there, "netns", ns)
        ip("addr", "add", f"{SLOW_HOST}/32", "peer", f"{SLOW_SANDBOX}/32", "dev", here)
        ip("link", "set", here, "up")
        ip("addr", "add", f"{SLOW_SANDBOX}/32", "peer", f"{SLOW_HOST}/32", "dev", there, netns=ns)
        ip("link", "set", there, "up", netns=ns)
    except (OSError, NetLabUnavailable) as err:
        print(f"error: {err}", flush=True)
        return
    print("ready", flush=True)
    threading.Thread(target=delay, args=(fd_there, fd_here), daemon=True).start()
    delay(fd_here, fd_there)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "delayline":
        delayline(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: netlink.py delayline NETNS TAG")
