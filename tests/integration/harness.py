"""harness.py - the integration tests' toolbox: real binaries on loopback.

Starts ringgate (from $RG_BUILD_DIR, the cmake build directory) on free
ports in a temporary directory, with certificates made by the openssl CLI,
and always stops it again: every start registers its own cleanup, and a
stop sends SIGTERM, then SIGKILL. Upstream servers (echo, sink, source)
run as Python threads. Everything is bounded in time and stays on
127.0.0.1; nothing here needs the network or anything beyond the Python
standard library and the openssl command.

Stopping a daemon also reads its stderr: a sanitizer report there fails
the test that ran it, so the ASan build's ctest run catches leaks and
undefined behaviour in the integration paths too.
"""

import hashlib
import http.client
import os
import random
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("RG_SOURCE_DIR") or os.path.normpath(
    os.path.join(HERE, "..", ".."))
BUILD_DIR = os.environ.get("RG_BUILD_DIR") or os.path.join(SOURCE_DIR,
                                                           "build")
RINGGATE = os.path.join(BUILD_DIR, "proxy", "ringgate")
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")

# How long a daemon gets to open its ports, and to stop.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
# Default timeout for every socket the tests open.
IO_TIMEOUT = 20.0

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "WARNING: ThreadSanitizer")


def is_asan_build(build_dir=BUILD_DIR):
    """True when build_dir was configured with -DASAN=ON."""
    try:
        with open(os.path.join(build_dir, "CMakeCache.txt")) as f:
            return re.search(r"^ASAN:BOOL=(ON|1|TRUE|YES)$", f.read(),
                             re.M | re.I) is not None
    except OSError:
        return False


# Ports for the daemons a test starts: 30000-32767, below the kernel's
# ephemeral range (32768-60999 by default) and above the demo's fixed
# ports (10000-29999). A port from the ephemeral range could be taken by
# any outgoing connection of a parallel test between our check and the
# daemon's bind, or while a daemon that was killed is restarted on it.
_PORT_LO, _PORT_HI = 30000, 32767
_ports_given = set()
_port_rng = random.SystemRandom()


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago and that this
    process has not handed out before."""
    for _ in range(1000):
        port = _port_rng.randint(_PORT_LO, _PORT_HI)
        if port in _ports_given:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    raise AssertionError("no free port in %d-%d" % (_PORT_LO, _PORT_HI))


def temp_dir(testcase):
    """A fresh directory removed when testcase finishes."""
    d = tempfile.mkdtemp(prefix="rg-itest-")
    testcase.addCleanup(shutil.rmtree, d, True)
    return d


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    """Poll predicate() until it returns a true value; return that value.
    Raises AssertionError naming `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" %
                                 (timeout, what))
        time.sleep(interval)


def run(cmd, timeout=60, input=None, check=True):
    """Run a command, return CompletedProcess with text output."""
    p = subprocess.run(cmd, input=input, capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s%s" %
                             (" ".join(cmd), p.returncode, p.stdout,
                              p.stderr))
    return p


# ---------------------------------------------------------------- certificates

def make_cert(directory, kind="ec", names=("localhost", "127.0.0.1"),
              days=365, stem=None):
    """Create a self-signed certificate and key with the openssl CLI.

    kind is "ec" (P-256) or "rsa" (2048 bits); names go into the
    subjectAltName (IP addresses as IP:, others as DNS:) and the first one
    is the CN. Returns (cert_path, key_path)."""
    stem = stem or "%s-%d" % (kind, time.monotonic_ns())
    cert = os.path.join(directory, stem + ".crt")
    key = os.path.join(directory, stem + ".key")
    if kind == "ec":
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    elif kind == "rsa":
        newkey = ["-newkey", "rsa:2048"]
    else:
        raise ValueError("kind must be 'ec' or 'rsa'")
    san = ",".join(("IP:" if re.fullmatch(r"[0-9.]+|.*:.*", n) else "DNS:") +
                   n for n in names)
    run(["openssl", "req", "-x509", *newkey, "-nodes", "-days", str(days),
         "-subj", "/CN=" + names[0], "-addext", "subjectAltName=" + san,
         "-keyout", key, "-out", cert])
    return cert, key


def cert_not_after(cert_path):
    """The certificate's notAfter as a Unix timestamp."""
    out = run(["openssl", "x509", "-noout", "-enddate", "-in",
               cert_path]).stdout
    return ssl.cert_time_to_seconds(out.strip().split("=", 1)[1])


def der_of(cert_path):
    """The DER bytes of a PEM certificate file."""
    with open(cert_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


# ---------------------------------------------------------------- config text

class Raw(str):
    """A value written verbatim into the config (no quoting)."""


def _value(v, indent):
    pad = "  " * indent
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, dict):
        body = "".join("%s  %s = %s;\n" % (pad, k, _value(x, indent + 1))
                       for k, x in v.items())
        return "{\n" + body + pad + "}"
    if isinstance(v, (list, tuple)):
        items = (",\n".join(pad + "  " + _value(x, indent + 1) for x in v))
        return "(\n" + items + "\n" + pad + ")"
    raise TypeError("cannot write %r into a config" % (v,))


def config_text(cfg):
    """libconfig text for a dict: one key per line, groups as { },
    lists as ( ), strings quoted. Raw values are written as given."""
    return "".join("%s = %s;\n" % (k, _value(v, 0)) for k, v in cfg.items())


def line_of(text, needle):
    """1-based number of the first line of text that contains needle."""
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise ValueError("%r not in config text" % needle)


def base_config(certs, relays, admin_port, workers=2, **overrides):
    """A ringgate config dict: certs is [(cert, key)], relays a list of
    dicts (name, listen, upstream, ...). overrides replace top-level
    groups or merge into them when both are dicts."""
    cfg = {
        "daemon": {"workers": workers, "log_level": "info",
                   "drain_timeout": "2s"},
        "admin": {"listen": "127.0.0.1:%d" % admin_port},
        "tls": {"certificates": [{"cert": c, "key": k} for c, k in certs],
                "min_version": "TLSv1.2"},
        "limits": {"handshake_timeout": "5s", "connect_timeout": "2s",
                   "idle_timeout": "5m", "output_buffer": "256k"},
        "relay": relays,
    }
    return merge_config(cfg, overrides)


def merge_config(cfg, overrides):
    """Apply overrides to cfg (in place, returned): a dict value merges
    into the section of that name, anything else replaces it."""
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = dict(cfg[k], **v)
        else:
            cfg[k] = v
    return cfg


# ---------------------------------------------------------------- metrics

_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)"
                     r"(\s+-?[0-9]+)?\s*$")


def _labels(text, line):
    labels = {}
    i, n = 0, len(text)
    while i < n:
        m = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*\"").match(text, i)
        if not m:
            raise ValueError("bad labels in %r" % line)
        name, i, value = m.group(1), m.end(), []
        while True:
            if i >= n:
                raise ValueError("unterminated label value in %r" % line)
            c = text[i]
            if c == "\\":
                esc = text[i + 1:i + 2]
                value.append({"n": "\n", "\\": "\\", '"': '"'}.get(esc))
                if value[-1] is None:
                    raise ValueError("bad escape in %r" % line)
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                value.append(c)
                i += 1
        if name in labels:
            raise ValueError("label %s twice in %r" % (name, line))
        labels[name] = "".join(value)
        m = re.compile(r"\s*(,|$)").match(text, i)
        if not m:
            raise ValueError("bad labels in %r" % line)
        i = m.end()
    return labels


def parse_metrics(text):
    """Parse Prometheus text format 0.0.4 into
    {(name, frozenset(labels.items())): float}. Raises ValueError on a
    line that is not a comment, a blank or a well-formed sample, and on a
    sample given twice."""
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            raise ValueError("bad sample line %r" % line)
        name, labels, value = m.group(1), m.group(3), m.group(4)
        key = (name, frozenset(_labels(labels or "", line).items()))
        if key in out:
            raise ValueError("sample given twice: %r" % line)
        v = {"+Inf": float("inf"), "-Inf": float("-inf"),
             "NaN": float("nan")}.get(value)
        out[key] = float(value) if v is None else v
    return out


def metric(samples, name, **labels):
    """Sum of every sample called name whose labels include the given
    ones (0.0 when there is none)."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items()
               if n == name and want <= ls)


def metric_series(samples, name):
    """[(labels dict, value)] for every sample called name."""
    return [(dict(ls), v) for (n, ls), v in samples.items() if n == name]


def http_get(port, path, method="GET", body=None, timeout=IO_TIMEOUT):
    """(status, headers dict with lower-case names, body bytes)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


# ---------------------------------------------------------------- ringgate

class Ringgate:
    """One ringgate process with a config from base_config() (or any
    dict). Use as a context manager or call start() with a testcase, which
    registers the stop. relay ports are looked up by relay name."""

    def __init__(self, directory, cfg, binary=None):
        self.dir = directory
        self.cfg = cfg
        self.binary = binary or RINGGATE
        self.conf_path = os.path.join(directory, "ringgate.conf")
        self.stderr_path = os.path.join(directory, "ringgate.stderr")
        self.proc = None
        self._stderr = None
        self.returncode = None
        self.killed = False  # stop() had to SIGKILL it

    # -- ports
    @property
    def admin_port(self):
        return int(self.cfg["admin"]["listen"].rsplit(":", 1)[1])

    def port(self, relay_name):
        for r in self.cfg["relay"]:
            if r["name"] == relay_name:
                return int(r["listen"].rsplit(":", 1)[1])
        raise KeyError(relay_name)

    # -- life cycle
    def write_config(self):
        with open(self.conf_path, "w") as f:
            f.write(config_text(self.cfg))

    def start(self, testcase=None):
        if not os.access(self.binary, os.X_OK):
            raise AssertionError("%s is not built (RG_BUILD_DIR=%s)" %
                                 (self.binary, BUILD_DIR))
        if self.proc is not None:
            self._wait_ports_released()
        self.write_config()
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([self.binary, "-c", self.conf_path],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self._stderr,
                                     stderr=self._stderr,
                                     cwd=self.dir)
        if testcase is not None:
            testcase.addCleanup(self.stop_checked)
        try:
            self.wait_ready()
        except BaseException:
            if testcase is None:
                self.stop()
            raise
        return self

    def _wait_ports_released(self, timeout=10.0):
        """Before a restart: wait until the last process's listeners are
        gone. A process killed with SIGKILL exits before its io_uring is
        torn down; the kernel's ring exit work drops the files that a
        pending multishot accept holds a moment later, and until then
        the admin port (bound without SO_REUSEPORT) is still in use."""
        for port in _listen_ports(self.cfg):
            def free(port=port):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    try:
                        s.bind(("127.0.0.1", port))
                    except OSError:
                        return False
                return True
            wait_for(free, timeout=timeout,
                     what="port %d released by the last process" % port)

    def wait_ready(self, timeout=START_TIMEOUT):
        """Wait until /healthz answers 200. The relay sockets are bound
        before the admin one, so they accept by then; probing them with
        TCP connects would show up in the metrics under test."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("ringgate exited with %d at start:\n%s"
                                     % (self.proc.returncode, self.stderr()))
            try:
                if http_get(self.admin_port, "/healthz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("ringgate did not answer /healthz in %.0fs:\n%s"
                             % (timeout, self.stderr()))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self):
        self.signal(signal.SIGHUP)

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, then SIGKILL after timeout. Returns the exit code
        (negative for a signal), None if it was never started."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.killed = True
                self.proc.kill()
                self.proc.wait(5)
        self.returncode = self.proc.returncode
        if self._stderr:
            self._stderr.close()
            self._stderr = None
        return self.returncode

    def stop_checked(self):
        """stop(), then fail on a sanitizer report, a crash (death by a
        signal we did not send) or an unclean exit after SIGTERM."""
        was_running = self.proc is not None and self.proc.poll() is None
        code = self.stop()
        err = self.stderr()
        for mark in SANITIZER_MARKS:
            if mark in err:
                raise AssertionError("sanitizer report from ringgate:\n" +
                                     err[-8000:])
        if code is not None and code < 0 and not self.killed:
            raise AssertionError("ringgate died of signal %d during the "
                                 "test:\n%s" % (-code, err[-4000:]))
        if was_running and code != 0:
            raise AssertionError("ringgate exited with %s after SIGTERM:\n%s"
                                 % (code, err[-4000:]))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- observation
    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def assert_alive(self):
        """Fail, with the tail of stderr, if the process has exited."""
        code = self.proc.poll()
        if code is not None:
            how = "died of signal %d" % -code if code < 0 else \
                "exited with %d" % code
            raise AssertionError("ringgate %s:\n%s" %
                                 (how, self.stderr()[-4000:]))

    def rss_kib(self):
        """VmRSS of the process in KiB."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for pid %d" % self.proc.pid)

    def metrics_text(self):
        try:
            status, headers, body = http_get(self.admin_port, "/metrics")
        except OSError as e:
            self.assert_alive()
            raise AssertionError("GET /metrics: %r" % e)
        if status != 200:
            raise AssertionError("/metrics answered %d" % status)
        return body.decode("utf-8")

    def metrics(self):
        return parse_metrics(self.metrics_text())

    def metric(self, name, **labels):
        return metric(self.metrics(), name, **labels)

    def wait_metric(self, name, want, timeout=10.0, **labels):
        """Wait until metric(name, labels) == want (or want(value) is
        true when want is callable); return the value."""
        last = [None]

        def ok():
            last[0] = self.metric(name, **labels)
            return want(last[0]) if callable(want) else last[0] == want
        try:
            wait_for(ok, timeout, 0.1, "%s%r" % (name, labels))
        except AssertionError:
            raise AssertionError("%s%r is %r, wanted %s" %
                                 (name, labels, last[0],
                                  "a match" if callable(want) else want))
        return last[0]


# ---------------------------------------------------------------- upstreams

def _listen_ports(cfg):
    """The 127.0.0.1 ports of every `listen` value in a config dict."""
    ports = []
    if isinstance(cfg, dict):
        for k, v in cfg.items():
            if (k == "listen" and isinstance(v, str) and
                    v.startswith("127.0.0.1:")):
                ports.append(int(v.rsplit(":", 1)[1]))
            else:
                ports.extend(_listen_ports(v))
    elif isinstance(cfg, (list, tuple)):
        for v in cfg:
            ports.extend(_listen_ports(v))
    return ports


def pattern(offset, n):
    """n bytes of the endless source pattern starting at offset."""
    block = bytes(range(256))
    start = offset % 256
    reps = (start + n) // 256 + 1
    return (block * reps)[start:start + n]


class Upstream:
    """A TCP server on 127.0.0.1 in threads, one thread per connection.

    mode "echo" sends back what it reads; "sink" reads and counts (and
    stops reading while `paused` is set); "source" writes the pattern()
    bytes endlessly, counting what the kernel took. Counters are totals
    over all connections."""

    CHUNK = 64 * 1024

    def __init__(self, mode="echo", port=None):
        assert mode in ("echo", "sink", "source")
        self.mode = mode
        self.lock = threading.Lock()
        self.received = 0
        self.sent = 0
        self.accepted = 0
        self.paused = threading.Event()
        self.stopping = threading.Event()
        self.conns = []
        self.threads = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port or 0))
        self.sock.listen(1024)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(0.2)
            with self.lock:
                self.accepted += 1
                self.conns.append(c)
            t = threading.Thread(target=getattr(self, "_" + self.mode),
                                 args=(c,), daemon=True)
            t.start()
            with self.lock:
                self.threads.append(t)

    def _count(self, attr, n):
        with self.lock:
            setattr(self, attr, getattr(self, attr) + n)

    def _recv(self, c):
        """bytes, b"" at EOF, None on timeout/stop."""
        try:
            return c.recv(self.CHUNK)
        except socket.timeout:
            return None
        except OSError:
            return b""

    def _send_all(self, c, data):
        view = memoryview(data)
        while view and not self.stopping.is_set():
            try:
                n = c.send(view)
            except socket.timeout:
                continue
            except OSError:
                return False
            self._count("sent", n)
            view = view[n:]
        return not view

    def _echo(self, c):
        with c:
            while not self.stopping.is_set():
                data = self._recv(c)
                if data is None:
                    continue
                if not data:
                    break
                self._count("received", len(data))
                if not self._send_all(c, data):
                    break

    def _sink(self, c):
        with c:
            while not self.stopping.is_set():
                if self.paused.is_set():
                    time.sleep(0.05)
                    continue
                data = self._recv(c)
                if data is None:
                    continue
                if not data:
                    break
                self._count("received", len(data))

    def _source(self, c):
        offset = 0
        with c:
            while not self.stopping.is_set():
                if self.paused.is_set():
                    time.sleep(0.05)
                    continue
                try:
                    n = c.send(pattern(offset, self.CHUNK))
                except socket.timeout:
                    continue
                except OSError:
                    break
                offset += n
                self._count("sent", n)

    def counters(self):
        with self.lock:
            return {"received": self.received, "sent": self.sent,
                    "accepted": self.accepted}

    def close(self):
        self.stopping.set()
        self.paused.clear()
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            conns, threads = list(self.conns), list(self.threads)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in threads:
            t.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def upstream(testcase, mode="echo"):
    """An Upstream closed when testcase finishes."""
    u = Upstream(mode)
    testcase.addCleanup(u.close)
    return u


# ---------------------------------------------------------------- TLS clients

def client_context(cafiles=(), alpn=None, min_version=None, max_version=None,
                   legacy=False, verify=True):
    """A TLS client context. cafiles: PEM files to trust (the test's
    self-signed certificates). alpn: list of protocol names or None.
    legacy: allow TLS 1.0/1.1 on our side (OpenSSL 3's default security
    level forbids them in the client too)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        for f in ([cafiles] if isinstance(cafiles, str) else cafiles):
            ctx.load_verify_locations(f)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if legacy:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if min_version is not None:
            ctx.minimum_version = min_version
        if max_version is not None:
            ctx.maximum_version = max_version
    if alpn is not None:
        ctx.set_alpn_protocols(list(alpn))
    return ctx


def tls_connect(port, ctx, server_hostname="localhost", timeout=IO_TIMEOUT):
    """Connect to 127.0.0.1:port and complete the handshake."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        return ctx.wrap_socket(raw, server_hostname=server_hostname)
    except BaseException:
        raw.close()
        raise


def recv_exact(sock, n):
    """Read exactly n bytes (or fewer if the peer closes)."""
    parts, got = [], 0
    while got < n:
        data = sock.recv(min(n - got, 1 << 20))
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def exchange(sock, payload, chunk=64 * 1024, timeout=60.0):
    """Send payload while reading the same number of bytes back, on one
    thread with a non-blocking socket (an SSL object must not be used by
    two threads at once), so neither direction waits on a full buffer.
    Returns (sha256 hex of what was read, bytes read). Stops early at EOF;
    raises AssertionError if nothing moves for `timeout` seconds."""
    n, sent, got = len(payload), 0, 0
    view, h = memoryview(payload), hashlib.sha256()
    old = sock.gettimeout()
    sock.setblocking(False)
    try:
        idle_since = time.monotonic()
        while got < n:
            moved = False
            if sent < n:
                try:
                    k = sock.send(view[sent:sent + chunk])
                    sent += k
                    moved = moved or k > 0
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError,
                        BlockingIOError):
                    pass
            while got < n:
                try:
                    data = sock.recv(1 << 20)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError,
                        BlockingIOError):
                    break
                if not data:
                    return h.hexdigest(), got
                h.update(data)
                got += len(data)
                moved = True
            if moved:
                idle_since = time.monotonic()
                continue
            if time.monotonic() - idle_since > timeout:
                raise AssertionError("exchange stalled at sent=%d got=%d of %d"
                                     % (sent, got, n))
            select.select([sock], [sock] if sent < n else [], [], 0.2)
        return h.hexdigest(), got
    finally:
        sock.settimeout(old)


def pump_send(sock, stall=2.0, limit=30.0, offset=0, chunk=16 * 1024):
    """Write the pattern() stream from offset on a non-blocking socket
    until nothing has been accepted for `stall` seconds (the peer stopped
    reading and every buffer on the way is full) or `limit` seconds pass.
    Returns the new offset. A send retried after SSLWantWrite uses the same
    bytes, as OpenSSL requires. chunk stays at one TLS record (16 KiB): a
    bigger write that blocks half-way has already put whole records on the
    wire that the returned offset would not count."""
    old = sock.gettimeout()
    sock.setblocking(False)
    try:
        start = last = time.monotonic()
        while True:
            now = time.monotonic()
            if now - last > stall or now - start > limit:
                return offset
            try:
                offset += sock.send(pattern(offset, chunk))
                last = time.monotonic()
                continue
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError,
                    BlockingIOError):
                pass
            select.select([], [sock], [], 0.1)
    finally:
        sock.settimeout(old)


def which(tool):
    return shutil.which(tool)
