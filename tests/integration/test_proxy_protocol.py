"""test_proxy_protocol.py - ringstore behind a real haproxy (send-proxy-v2).

A listener with proxy_protocol = true takes the client address from the
PROXY header a load balancer sends, and only from proxy_nets. Here Debian's
haproxy listens on 127.0.0.1 and connects to ringstore from 127.0.0.1 with
`send-proxy-v2`; clients connect to haproxy from other loopback addresses
(127.0.0.5, 127.0.0.6), so the address ringstore must see differs from the
socket's. Checked: the log names the original client; allow_nets= of a user
is applied to it (a login from 127.0.0.5 works for a user allowed from
there, fails for one allowed only from 127.0.0.6); a direct connection from
outside proxy_nets and one without a header are closed and counted; a
trusted listener refuses clients outside its trusted_nets. Hand-made v1 and
v2 headers (split across writes) work too.
"""

import os
import re
import socket
import struct
import subprocess
import time
import unittest

import harness as h
import rs_harness as rs

HAPROXY = h.which("haproxy")
PASSWORD = "ringgate-demo-pw"


def connect_from(src, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(20)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def closed(s):
    """True when the server closed s without a word (FIN or RST)."""
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True


def read_line(f):
    line = f.readline()
    if not line:
        raise EOFError("closed")
    return line


def login(sock, user, password=PASSWORD):
    """LOGIN over a plaintext (trusted) session; returns the tagged line."""
    f = sock.makefile("rb")
    assert read_line(f).startswith(b"* OK")
    sock.sendall(b'a LOGIN "%s" "%s"\r\n' % (user.encode(), password.encode()))
    while True:
        line = read_line(f)
        if line.startswith(b"a "):
            return line


def v2_header(src, sport, dst, dport):
    addr = socket.inet_aton(src) + socket.inet_aton(dst) + \
        struct.pack("!HH", sport, dport)
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) +
            struct.pack("!H", len(addr)) + addr)


class ProxyCase(unittest.TestCase):

    def setUp(self):
        if HAPROXY is None:
            if h.IN_CI:
                self.fail("haproxy is not installed (scripts/deps.sh)")
            self.skipTest("haproxy not installed")
        self.dir = h.temp_dir(self)
        path = os.path.join(self.dir, "passwd")
        rs.write_passwd(path, {"five@example.test": PASSWORD,
                               "six@example.test": PASSWORD})
        # allow_nets= per user: rewrite the extra field of each line
        with open(path) as f:
            lines = f.read().splitlines()
        nets = {"five": "127.0.0.5", "six": "127.0.0.6"}
        with open(path, "w") as f:
            for line in lines:
                who = line.split("@", 1)[0]
                f.write(line + "allow_nets=%s\n" % nets[who])
        self.pport, self.tport = h.free_port(), h.free_port()
        cfg = rs.store_config(self.dir, self.pport, h.free_port())
        cfg["imap"] = [
            {"name": "behind_lb", "listen": "127.0.0.1:%d" % self.pport,
             "starttls": False, "trusted": True,
             "trusted_nets": ["127.0.0.0/8"],
             "proxy_protocol": True, "proxy_nets": ["127.0.0.1"]},
            {"name": "local", "listen": "127.0.0.1:%d" % self.tport,
             "starttls": False, "trusted": True,
             "trusted_nets": ["127.0.0.1"]},
        ]
        self.store = rs.Ringstore(self.dir, cfg).start(self)
        self.hport = h.free_port()
        conf = os.path.join(self.dir, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write("global\n  maxconn 100\n"
                    "defaults\n  mode tcp\n  timeout connect 5s\n"
                    "  timeout client 30s\n  timeout server 30s\n"
                    "frontend fe\n  bind 127.0.0.1:%d\n"
                    "  default_backend be\n"
                    "backend be\n  server s1 127.0.0.1:%d send-proxy-v2\n"
                    % (self.hport, self.pport))
        self.haproxy = subprocess.Popen([HAPROXY, "-f", conf, "-db"],
                                        stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        self.addCleanup(self.stop_haproxy)
        h.wait_for(self.haproxy_up, what="haproxy listening")

    def stop_haproxy(self):
        self.haproxy.terminate()
        try:
            self.haproxy.wait(10)
        except subprocess.TimeoutExpired:
            self.haproxy.kill()
            self.haproxy.wait()

    def haproxy_up(self):
        try:
            socket.create_connection(("127.0.0.1", self.hport), 1).close()
            return True
        except OSError:
            return False

    def test_original_address_reaches_log_and_allow_nets(self):
        with connect_from("127.0.0.5", self.hport) as s:
            self.assertIn(b"OK", login(s, "five@example.test"))
        with connect_from("127.0.0.5", self.hport) as s:
            self.assertIn(b"NO", login(s, "six@example.test"))
        with connect_from("127.0.0.6", self.hport) as s:
            self.assertIn(b"OK", login(s, "six@example.test"))
        h.wait_for(lambda: re.search(
            r"event=login\.open proto=imap listener=behind_lb "
            r"client=127\.0\.0\.5:",
            self.store.stderr()), what="the original client in the log")

    def test_untrusted_source_and_missing_header_refused(self):
        # straight to ringstore from 127.0.0.5: not a load balancer
        with connect_from("127.0.0.5", self.pport) as s:
            s.sendall(v2_header("192.0.2.1", 1000, "192.0.2.2", 143))
            self.assertTrue(closed(s))
        self.store.wait_metric("ringstore_connections_refused_total", 1,
                               listener="behind_lb",
                               reason="proxy_untrusted")
        # from the load balancer's address, but no header
        with connect_from("127.0.0.1", self.pport) as s:
            s.sendall(b"a LOGIN five@example.test x\r\n")
            self.assertTrue(closed(s))
        self.store.wait_metric("ringstore_connections_refused_total", 1,
                               listener="behind_lb", reason="proxy_invalid")

    def test_handmade_headers_split(self):
        for hdr in (b"PROXY TCP4 127.0.0.5 127.0.0.1 4000 143\r\n",
                    v2_header("127.0.0.5", 4001, "127.0.0.1", 143)):
            with connect_from("127.0.0.1", self.pport) as s:
                s.sendall(hdr[:7])
                time.sleep(0.05)
                s.sendall(hdr[7:])
                self.assertIn(b"OK", login(s, "five@example.test"))
        # a client at 127.0.0.9 is inside the listener's trusted_nets
        # but outside five's allow_nets
        with connect_from("127.0.0.1", self.pport) as s:
            s.sendall(b"PROXY TCP4 127.0.0.9 127.0.0.1 4002 143\r\n")
            self.assertIn(b"NO", login(s, "five@example.test"))

    def test_trusted_listener_refuses_strangers(self):
        with connect_from("127.0.0.2", self.tport) as s:
            self.assertTrue(closed(s))
        self.store.wait_metric("ringstore_connections_refused_total", 1,
                               listener="local", reason="not_allowed")
        with connect_from("127.0.0.1", self.tport) as s:
            f = s.makefile("rb")
            self.assertTrue(read_line(f).startswith(b"* OK"))


if __name__ == "__main__":
    unittest.main()
