"""clamd_harness.py - a real clamd for content-policy tests.

Debian's clamav-daemon has no signature databases offline, so Clamd
starts its own clamd in the foreground with a config in a temp directory
and a one-signature database (Ringstore.Test.EICAR, a body signature for
the EICAR test string); clamd reports it as
"Ringstore.Test.EICAR.UNOFFICIAL". Use it as a context manager or call
start()/stop(); `socket` is the path for the policy's `clamd` key.

    with Clamd(directory) as c:
        cfg["policy"] = {"clamd": c.socket, "clamd_fail": "closed"}

EICAR is built from two halves so that no file in the tree is itself a
test virus.
"""

import os
import signal
import socket
import struct
import subprocess
import time

CLAMD = "/usr/sbin/clamd"
EICAR = (b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDA"
         b"RD-ANTIVIRUS-TEST-FILE!$H+H*")
SIGNATURE = "Ringstore.Test.EICAR.UNOFFICIAL"


def available():
    return os.access(CLAMD, os.X_OK)


class Clamd:
    def __init__(self, directory, stream_max="25M", start_timeout=60.0):
        self.dir = os.path.join(directory, "clamd")
        self.socket = os.path.join(self.dir, "clamd.sock")
        self.stream_max = stream_max
        self.start_timeout = start_timeout
        self.proc = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        db = os.path.join(self.dir, "db")
        os.makedirs(db, exist_ok=True)
        with open(os.path.join(db, "rgtest.ndb"), "w") as f:
            f.write("Ringstore.Test.EICAR:0:*:%s\n" % EICAR.hex())
        conf = os.path.join(self.dir, "clamd.conf")
        with open(conf, "w") as f:
            f.write("Foreground yes\nLocalSocket %s\nDatabaseDirectory %s\n"
                    "LogFile %s\nTemporaryDirectory %s\n"
                    "StreamMaxLength %s\nSelfCheck 0\n"
                    % (self.socket, db, os.path.join(self.dir, "clamd.log"),
                       self.dir, self.stream_max))
        self.proc = subprocess.Popen([CLAMD, "-c", conf],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("clamd exited (%s); see %s" %
                                   (self.proc.returncode, self.log()))
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(self.socket)
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("clamd did not listen; see %s"
                                       % self.log())
                time.sleep(0.05)

    def log(self):
        return os.path.join(self.dir, "clamd.log")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def scan(self, data, timeout=20):
        """clamd's own answer to an INSTREAM of data, for checks."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout)
            s.connect(self.socket)
            s.sendall(b"zINSTREAM\0")
            for i in range(0, len(data), 65536):
                chunk = data[i:i + 65536]
                s.sendall(struct.pack(">I", len(chunk)) + chunk)
            s.sendall(struct.pack(">I", 0))
            reply = b""
            while not reply.endswith(b"\0"):
                got = s.recv(4096)
                if not got:
                    break
                reply += got
        return reply.rstrip(b"\0").decode("ascii", "replace")
