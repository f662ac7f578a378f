"""test_ringstore_fetch_header.py - header-only FETCH against the whole
message.

ringstore reads only a message's header for ENVELOPE, RFC822.HEADER and
BODY[HEADER] / BODY[HEADER.FIELDS[.NOT] (..)], and the whole file when
an item needs the body. Here the same items are fetched alone (header
path) and together with BODY.PEEK[] (whole-file path) over messages
placed where the header reader can go wrong: a header longer than the
first read, one longer than the header read limit, the empty line or a
CR LF pair straddling the first read's end, no empty line at all, a
file ending in CR, an empty file, a header-only file, 8-bit and encoded
values, a multipart message, and files above the read-whole size (which
are mapped). Both answers must agree byte for byte, and the header
sections must equal the header bytes Python finds in the file.
"""

import os
import re
import socket
import unittest

import harness as h
import rs_harness as rs

USER, PASSWORD = "demo@example.test", "fetch-header-pw-1"
FIRST_READ = 8 * 1024  # backend/msg_read.h MSG_READ_FIRST


def received(n, eol=b"\n"):
    return b"".join(b"Received: from host%d.example.org by mx.example.net;"
                    b" Mon, 23 Nov 2026 12:00:00 +0000%s" % (i, eol)
                    for i in range(n))


def base(k, eol=b"\n"):
    return (b"From: Alice <alice@example.org>\nTo: bob@example.net, "
            b"group: c@d, \"Q, D\" <q@d>;\nSubject: test %d\n"
            b"Date: Mon, 23 Nov 2026 12:00:00 +0000\n"
            b"Message-ID: <m%d@example.org>\n" % (k, k)).replace(b"\n", eol)


def pad_to(head, total, eol):
    """head plus an X-Pad field so that the result is total bytes long."""
    fixed = len(head) + len(b"X-Pad: ") + len(eol)
    return head + b"X-Pad: " + b"a" * (total - fixed) + eol


def messages():
    crlf = base(5, b"\r\n")
    msgs = [
        base(1) + received(260) + b"\nbody\n",        # > first read
        base(2) + received(3800) + b"\nbody\n",       # > header limit
        base(3),                                      # no empty line
        base(4) + received(500),                      # no empty line, long
        b"",                                          # empty file
        # the empty line's CR is the first read's last byte
        pad_to(crlf, FIRST_READ - 1, b"\r\n") + b"\r\nbody\r\n",
        # the last field's LF is the first read's last byte
        pad_to(base(6), FIRST_READ, b"\n") + b"\nbody\n",
        # the empty line is the first read's last byte
        pad_to(base(7), FIRST_READ - 1, b"\n") + b"\n" + b"b" * 1000,
        b"\n", b"\nbody only\n",
        b"Subject: only a CR at the end\r",
        "Subject: =?UTF-8?B?w6l0w6k=?=\nFrom: Jos\u00e9 <j@x>\n\n".encode(),
        base(8) + b"Content-Type: multipart/mixed; boundary=XX\n\n--XX\n"
        b"Content-Type: text/plain\n\nhi\n--XX\n"
        b"Content-Transfer-Encoding: base64\n\n" +
        (b"QUJD" * 19 + b"\n") * 60000 + b"--XX--\n",  # 4.6 MB: mapped
        base(9) + b"\n" + (b"x" * 79 + b"\n") * 1000,
    ]
    return msgs


def header_of(msg):
    """The header block as RFC 3501 HEADER: through the empty line."""
    pos = 0
    while pos < len(msg):
        if msg[pos:pos + 1] == b"\n":
            return msg[:pos + 1]
        if msg[pos:pos + 2] == b"\r\n":
            return msg[:pos + 2]
        lf = msg.find(b"\n", pos)
        if lf == -1:
            break
        pos = lf + 1
    return msg


class FetchHeader(unittest.TestCase):

    def setUp(self):
        self.dir = h.temp_dir(self)
        rs.write_passwd(os.path.join(self.dir, "passwd"), {USER: PASSWORD})
        md = os.path.join(self.dir, "mail", "example.test", "demo",
                          "Maildir")
        for d in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(md, d))
        self.msgs = messages()
        for i, b in enumerate(self.msgs):
            name = "%d.M%dP1.test,S=%d:2,S" % (1700000000 + i, i, len(b))
            with open(os.path.join(md, "cur", name), "wb") as f:
                f.write(b)
        cfg = rs.store_config(self.dir, h.free_port(), h.free_port())
        self.store = rs.Ringstore(self.dir, cfg).start(self)
        s = socket.create_connection(("127.0.0.1", self.store.port()),
                                     timeout=30)
        self.addCleanup(s.close)
        self.s, self.f = s, s.makefile("rb")
        self.assertTrue(self.f.readline().startswith(b"* OK"))
        self.n = 0
        self.cmd(b"LOGIN %s %s" % (USER.encode(), PASSWORD.encode()))
        self.assertIn(b"* %d EXISTS" % len(self.msgs),
                      self.cmd(b"SELECT INBOX"))

    def cmd(self, line):
        """Send one command; the untagged bytes, literals included."""
        self.n += 1
        tag = b"t%d" % self.n
        self.s.sendall(tag + b" " + line + b"\r\n")
        out = []
        while True:
            line = self.f.readline()
            self.assertTrue(line, "connection closed")
            m = re.search(rb"\{(\d+)\}\r\n$", line)
            if m:
                out.append(line + self.f.read(int(m.group(1))))
                continue
            if line.startswith(tag + b" "):
                self.assertTrue(line.startswith(tag + b" OK"), line)
                return b"".join(out)
            out.append(line)

    def fetch(self, seq, items):
        r = self.cmd(b"FETCH %d (%s)" % (seq, items))
        prefix = b"* %d FETCH (" % seq
        self.assertTrue(r.startswith(prefix) and r.endswith(b")\r\n"), r)
        return r[len(prefix):-3]

    def test_header_items_match_whole_message(self):
        items = [b"ENVELOPE", b"RFC822.HEADER", b"BODY.PEEK[HEADER]",
                 b"BODY.PEEK[HEADER.FIELDS (Subject From X-Pad)]",
                 b"BODY.PEEK[HEADER.FIELDS.NOT (Received)]",
                 b"BODY.PEEK[HEADER]<3.16385>"]
        for seq, msg in enumerate(self.msgs, 1):
            body = b"BODY[] {%d}\r\n" % len(msg) + msg
            for it in items:
                alone = self.fetch(seq, it)
                whole = self.fetch(seq, it + b" BODY.PEEK[]")
                self.assertEqual(whole, alone + b" " + body,
                                 "message %d, %s" % (seq, it))
            hdr = header_of(msg)
            self.assertEqual(self.fetch(seq, b"BODY.PEEK[HEADER]"),
                             b"BODY[HEADER] {%d}\r\n" % len(hdr) + hdr)
            self.assertEqual(self.fetch(seq, b"RFC822.HEADER"),
                             b"RFC822.HEADER {%d}\r\n" % len(hdr) + hdr)

    def test_envelope_values(self):
        env = self.fetch(1, b"ENVELOPE")
        self.assertIn(b'"test 1"', env)
        self.assertIn(b'(("Alice" NIL "alice" "example.org"))', env)
        self.assertIn(b'"<m1@example.org>"', env)
        # the 300 KiB header is past the header reader's limit
        self.assertIn(b'"test 2"', self.fetch(2, b"ENVELOPE"))
        self.assertEqual(self.fetch(5, b"ENVELOPE"),
                         b"ENVELOPE (NIL NIL NIL NIL NIL NIL NIL NIL NIL"
                         b" NIL)")


if __name__ == "__main__":
    unittest.main()
