"""test_ringstore_fetch_stream.py - FETCH streams bodies: a session's memory
is bounded by its output limit, not by what it fetches (issue 9, item 6).

Ten sessions each send `FETCH n (BODY.PEEK[] x32)` for a 2 MiB and then a
20 MiB message and do not read (their receive buffers are small, so the
server's sends stall at once). When the store pool has gone quiet,
ringstore's RSS (VmRSS from /proc) may have grown by at most the bound
docs/backend.md gives per session for limits.output_buffer, times ten,
plus a fixed allowance for the allocator; it must not follow the message
size (the code before streaming built each answer whole: 32 x 20 MiB per
session). Then every session reads its answer and each literal is
compared byte for byte with the file. A FETCH 1:* BODY[] over a folder of
many messages is held the same way, then read and checked, with the
\\Seen flags it sets. Nothing is timed; the growth figures are printed.
"""

import os
import random
import socket
import sys
import time
import unittest

import harness as h
import rs_harness as rs

USER, PASSWORD = "stream@example.test", "fetch-stream-pw-1"
SESSIONS = 10
COPIES = 32
SIZES = (2 << 20, 20 << 20)  # messages 1 and 2
OUTPUT_BUFFER = 64 << 10
BATCH = 256 << 10  # backend/imap_cmd_fetch.c BATCH_BYTES
MANY = 300  # messages in the folder "Many"


def session_bound():
    """docs/backend.md: while its client does not read, a session holds
    its output queue (below the limit when the last batch of at most 256
    KiB joined it) in two buffers that grow by doubling, a read buffer and
    a text buffer of at most 256 KiB each (the text of small items, far
    less here)."""
    return 4 * (OUTPUT_BUFFER + BATCH) + 2 * (256 << 10)


def allowance():
    # malloc arenas of the loop and pool threads, page granularity; ASan's
    # allocator keeps more resident (its quarantine is made small below).
    return (64 if h.is_asan_build() else 24) << 20


def message(size, seed):
    """size bytes of mail: a header, then base64-looking lines."""
    rnd = random.Random(seed)
    head = (b"From: Big <big@example.org>\nTo: %s\nSubject: stream %d\n"
            b"Date: Mon, 23 Nov 2026 12:00:00 +0000\n\n"
            % (USER.encode(), seed))
    line = bytes(rnd.choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
                            b"qrstuvwxyz0123456789+/") for _ in range(76))
    body = bytearray()
    k = 0
    while len(head) + len(body) < size:
        body += line[k % 76:] + line[:k % 76] + b"\n"
        k += 1
    return head + bytes(body[:size - len(head)])


def write_folder(md, msgs, flags=""):
    for d in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(md, d), exist_ok=True)
    for i, b in enumerate(msgs):
        name = "%d.M%dP1.test,S=%d:2,%s" % (1700000000 + i, i, len(b), flags)
        with open(os.path.join(md, "cur", name), "wb") as f:
            f.write(b)


class Conn:
    """A raw IMAP connection with a small receive buffer."""

    def __init__(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 10)
        s.settimeout(120)
        s.connect(("127.0.0.1", port))
        self.s, self.f = s, s.makefile("rb", buffering=1 << 20)
        self.n = 0
        assert self.f.readline().startswith(b"* OK")

    def send(self, line):
        self.n += 1
        tag = b"t%d" % self.n
        self.s.sendall(tag + b" " + line + b"\r\n")
        return tag

    def line(self):
        line = self.f.readline()
        if not line:
            raise AssertionError("connection closed")
        return line

    def simple(self, line):
        tag = self.send(line)
        while True:
            got = self.line()
            if got.startswith(b"{") or got.endswith(b"}\r\n"):
                n = int(got[got.rindex(b"{") + 1:-3])
                self.f.read(n)
                continue
            if got.startswith(tag + b" "):
                assert got.startswith(tag + b" OK"), got
                return

    def expect(self, data):
        """Read len(data) bytes and compare them, 1 MiB at a time."""
        view, pos = memoryview(data), 0
        while pos < len(data):
            n = min(1 << 20, len(data) - pos)
            got = self.f.read(n)
            if got != view[pos:pos + n]:
                raise AssertionError("literal differs near offset %d"
                                     % pos)
            pos += n

    def close(self):
        self.f.close()
        self.s.close()


class FetchStream(unittest.TestCase):

    def setUp(self):
        self.dir = h.temp_dir(self)
        rs.write_passwd(os.path.join(self.dir, "passwd"), {USER: PASSWORD})
        md = os.path.join(self.dir, "mail", "example.test", "stream",
                          "Maildir")
        self.msgs = [message(n, k) for k, n in enumerate(SIZES)]
        write_folder(md, self.msgs)
        rnd = random.Random(9)
        self.many = [message(rnd.randrange(20 << 10, 200 << 10), 100 + k)
                     for k in range(MANY)]
        write_folder(os.path.join(md, ".Many"), self.many)
        cfg = rs.store_config(
            self.dir, h.free_port(), h.free_port(),
            limits={"output_buffer": "%dk" % (OUTPUT_BUFFER >> 10),
                    "idle_timeout": "10m"})
        if h.is_asan_build():
            # a small quarantine, so that RSS shows what is held, not the
            # freed batches ASan keeps to catch use after free
            old = os.environ.get("ASAN_OPTIONS")
            os.environ["ASAN_OPTIONS"] = ((old + ":") if old else "") + \
                "quarantine_size_mb=4"
            try:
                self.store = rs.Ringstore(self.dir, cfg).start(self)
            finally:
                if old is None:
                    del os.environ["ASAN_OPTIONS"]
                else:
                    os.environ["ASAN_OPTIONS"] = old
        else:
            self.store = rs.Ringstore(self.dir, cfg).start(self)

    def open(self, box="INBOX"):
        c = Conn(self.store.port())
        self.addCleanup(c.close)
        c.simple(b"LOGIN %s %s" % (USER.encode(), PASSWORD.encode()))
        c.simple(b"SELECT " + box.encode())
        return c

    def quiet(self):
        """Wait until no store job is queued or running for a second (the
        sessions wait for their clients), then the largest RSS seen."""
        top, calm = 0, 0
        deadline = time.monotonic() + 120
        while calm < 10:
            self.assertLess(time.monotonic(), deadline, "never quiet")
            busy = (self.store.metric("ringstore_store_running",
                                      lane="mailbox") +
                    self.store.metric("ringstore_store_queue",
                                      lane="mailbox"))
            calm = calm + 1 if busy == 0 else 0
            top = max(top, self.store.rss_kib())
            time.sleep(0.1)
        return top

    def read_bodies(self, c, tag, seq, data, copies):
        for k in range(copies):
            # each prefix ends in CRLF, so it reads as a line
            want = b"* %d FETCH (" % seq if k == 0 else b" "
            self.assertEqual(c.line(), want + b"BODY[] {%d}\r\n"
                             % len(data))
            c.expect(data)
        self.assertEqual(c.line(), b")\r\n")
        self.assertTrue(c.line().startswith(tag + b" OK"))

    def test_stalled_readers_are_bounded(self):
        conns = [self.open() for _ in range(SESSIONS)]
        for c in conns:  # the usual buffers of a FETCH, once
            c.simple(b"FETCH 1 (FLAGS BODY.PEEK[HEADER])")
        time.sleep(0.5)
        base = self.store.rss_kib()
        grown = {}
        for seq, data in enumerate(self.msgs, 1):
            items = b" ".join([b"BODY.PEEK[]"] * COPIES)
            tags = [c.send(b"FETCH %d (%s)" % (seq, items)) for c in conns]
            top = self.quiet()
            grown[len(data)] = (top - base) * 1024
            limit = SESSIONS * session_bound() + allowance()
            print("\n  %d sessions x FETCH %d (BODY.PEEK[] x%d), %d bytes "
                  "each: RSS grew %.1f MiB (bound %.1f MiB)"
                  % (SESSIONS, seq, COPIES, len(data),
                     grown[len(data)] / 2**20, limit / 2**20),
                  file=sys.stderr)
            self.assertLess(grown[len(data)], limit,
                            "RSS grew %d KiB with %d stalled readers of a "
                            "%d-byte message" % (top - base, SESSIONS,
                                                 len(data)))
            for c, tag in zip(conns, tags):
                self.read_bodies(c, tag, seq, data, COPIES)
        small, big = grown[SIZES[0]], grown[SIZES[1]]
        # ten times the message, not ten times the memory
        self.assertLess(big, small + allowance(),
                        "growth follows the message size: %d vs %d bytes"
                        % (big, small))

    def test_fetch_all_bodies(self):
        c = self.open("Many")
        base = self.store.rss_kib()
        tag = c.send(b"FETCH 1:* BODY[]")
        top = self.quiet()
        print("\n  FETCH 1:* BODY[] over %d messages (%d bytes), client "
              "not reading: RSS grew %.1f MiB"
              % (MANY, sum(map(len, self.many)),
                 (top - base) / 1024), file=sys.stderr)
        self.assertLess((top - base) * 1024,
                        session_bound() + allowance())
        for seq, data in enumerate(self.many, 1):
            # BODY[] sets \Seen: FLAGS come with it (and \Recent: this
            # session is the first to see the messages)
            self.assertEqual(c.line(), b"* %d FETCH (FLAGS (\\Seen "
                             b"\\Recent) BODY[] {%d}\r\n"
                             % (seq, len(data)))
            c.expect(data)
            self.assertEqual(c.line(), b")\r\n")
        self.assertTrue(c.line().startswith(tag + b" OK"))
        # and the flags stuck
        tag = c.send(b"FETCH 1:* FLAGS")
        for seq in range(1, MANY + 1):
            self.assertEqual(c.line(), b"* %d FETCH (FLAGS (\\Seen "
                             b"\\Recent))\r\n"
                             % seq)
        self.assertTrue(c.line().startswith(tag + b" OK"))

    def test_sections_stream(self):
        """Text, partial and header sections of the 20 MiB message."""
        c = self.open()
        data = self.msgs[1]
        hdr = data[:data.index(b"\n\n") + 2]
        tag = c.send(b"FETCH 2 (BODY.PEEK[TEXT] BODY.PEEK[]<1000.5000000> "
                     b"RFC822.HEADER BODY.PEEK[HEADER.FIELDS (Subject)]"
                     b"<2.5>)")
        self.assertEqual(c.line(), b"* 2 FETCH (RFC822.HEADER {%d}\r\n"
                         % len(hdr))
        c.expect(hdr)
        self.assertEqual(c.f.read(len(b" BODY[TEXT] {%d}\r\n"
                                      % (len(data) - len(hdr)))),
                         b" BODY[TEXT] {%d}\r\n" % (len(data) - len(hdr)))
        c.expect(data[len(hdr):])
        want = b" BODY[]<1000> {5000000}\r\n"
        self.assertEqual(c.f.read(len(want)), want)
        c.expect(data[1000:5001000])
        want = b" BODY[HEADER.FIELDS (Subject)]<2> {5}\r\n"
        self.assertEqual(c.f.read(len(want)), want)
        c.expect(b"Subject: stream 1\n\n"[2:7])
        self.assertEqual(c.line(), b")\r\n")
        self.assertTrue(c.line().startswith(tag + b" OK"))


if __name__ == "__main__":
    unittest.main()
