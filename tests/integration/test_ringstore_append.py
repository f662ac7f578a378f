"""test_ringstore_append.py - APPEND streams large messages to disk.

A large APPEND literal goes to a file in the folder's tmp/ as it
arrives, in bounded chunks, and is linked into new/ only when the
command completes. Checked here from the outside:

- a 30 MiB message round-trips byte-exact (FETCH BODY[] and the file on
  disk, by sha256) while ringstore's peak RSS (VmHWM) grows by far less
  than the message: a memory bound, not a timing one;
- the bytes are on disk under tmp/ while the literal is still arriving,
  and a client that disconnects in the middle leaves nothing in tmp/
  (polled, bounded) and no message;
- a literal over append_max is refused with NO [TOOBIG] before any byte
  is stored: no continuation for a synchronizing literal, and a LITERAL+
  one is swallowed, then NO, and the session goes on;
- a full disk (a small tmpfs as the mail root, when the test may mount
  one) answers NO [OVERQUOTA], leaves nothing behind, and the session
  goes on;
- ten concurrent large APPENDs all land, each intact.
"""

import hashlib
import imaplib
import os
import re
import socket
import subprocess
import threading
import unittest

import harness as h
import rs_harness as rs

USER, PASSWORD = "demo@example.test", "ringgate-demo-pw"
MIB = 1024 * 1024


def message(size, seed=b"x"):
    """An RFC 5322 message of about size bytes, CRLF lines, distinct per
    seed."""
    head = (b"From: Alice <alice@example.test>\r\n"
            b"To: demo@example.test\r\n"
            b"Subject: large " + seed + b"\r\n"
            b"Message-ID: <" + seed + b"@example.test>\r\n\r\n")
    line = hashlib.sha256(seed).hexdigest().encode() * 2 + b"\r\n"
    body = line * (max(0, size - len(head)) // len(line))
    return head + body


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for pid %d" % pid)


class AppendCase(unittest.TestCase):
    append_max = "40M"
    tmpfs = None  # a size: the mail root is a tmpfs that small

    def setUp(self):
        self.dir = h.temp_dir(self)
        if self.tmpfs:
            self.mount_tmpfs(os.path.join(self.dir, "mail"), self.tmpfs)
        rs.write_passwd(os.path.join(self.dir, "passwd"), {USER: PASSWORD})
        # one worker: the memory test warms up the loop every session uses
        cfg = rs.store_config(self.dir, h.free_port(), h.free_port(),
                              workers=1,
                              limits={"append_max": self.append_max})
        self.store = rs.Ringstore(self.dir, cfg).start(self)
        self.inbox = os.path.join(self.dir, "mail", "example.test", "demo",
                                  "Maildir")

    def mount_tmpfs(self, path, size):
        os.mkdir(path)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size,
                            "tmpfs", path], capture_output=True, text=True)
        if p.returncode != 0:
            self.skipTest("cannot mount a tmpfs (needs root): %s"
                          % p.stderr.strip())
        self.addCleanup(subprocess.run, ["umount", "-l", path])

    def login(self):
        m = imaplib.IMAP4("127.0.0.1", self.store.port(), timeout=60)
        self.addCleanup(rs.logout_quietly, m)
        m.login(USER, PASSWORD)
        return m

    def raw(self):
        """A logged-in raw socket and a line reader over it."""
        s = socket.create_connection(("127.0.0.1", self.store.port()),
                                     timeout=h.IO_TIMEOUT)
        self.addCleanup(s.close)
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"* OK"))
        s.sendall(b"l LOGIN %s %s\r\n" % (USER.encode(), PASSWORD.encode()))
        self.tagged(f, b"l", b"OK")
        return s, f

    def tagged(self, f, tag, status):
        """Read to the tagged line of tag; assert its status; return it."""
        lines = rs.read_tagged(self, f, tag)
        self.assertTrue(lines[-1].startswith(tag + b" " + status),
                        "%r after %r" % (lines[-1], lines[:-1]))
        return lines[-1]

    def files(self, sub):
        d = os.path.join(self.inbox, sub)
        return os.listdir(d) if os.path.isdir(d) else []

    def stored(self):
        """sha256 of every message file in new/ and cur/."""
        out = []
        for sub in ("new", "cur"):
            for name in self.files(sub):
                with open(os.path.join(self.inbox, sub, name), "rb") as f:
                    out.append(hashlib.sha256(f.read()).hexdigest())
        return sorted(out)


class TestLargeAppend(AppendCase):

    def test_30_mib_round_trip_in_bounded_memory(self):
        msg = message(30 * MIB, b"big")
        digest = hashlib.sha256(msg).hexdigest()
        m = self.login()
        # The loop's provided receive buffers (16 MiB) are touched once
        # by any bulk input, whatever consumes it: 24 MiB of 1 MiB
        # APPENDs first, so the peak measured is the large APPEND's own.
        for k in range(24):
            typ, data = m.append("Trash", None, None,
                                 message(MIB, b"warm%d" % k))
            self.assertEqual(typ, "OK", data)
        pid = self.store.proc.pid
        before = vm_hwm_kib(pid)
        typ, data = m.append("INBOX", None, None, msg)
        self.assertEqual(typ, "OK", data)
        uid = re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1)
        growth = vm_hwm_kib(pid) - before
        if not h.is_asan_build():
            # ASan's quarantine keeps freed receive buffers resident.
            self.assertLess(growth * 1024, len(msg) // 2,
                            "peak RSS grew %d KiB for a %d byte APPEND"
                            % (growth, len(msg)))
        self.assertEqual(self.stored(), [digest])
        self.assertEqual(self.files("tmp"), [])
        m.select("INBOX")
        typ, data = m.uid("FETCH", uid, "(BODY.PEEK[] RFC822.SIZE)")
        self.assertEqual(typ, "OK", data)
        body = data[0][1]
        self.assertEqual(len(body), len(msg))
        self.assertEqual(hashlib.sha256(body).hexdigest(), digest)
        self.assertIn(b"RFC822.SIZE %d" % len(msg), data[0][0])

    def test_disconnect_mid_literal_leaves_no_tmp_file(self):
        s, f = self.raw()
        s.sendall(b"a APPEND INBOX {%d}\r\n" % (20 * MIB))
        self.assertTrue(f.readline().startswith(b"+"))
        s.sendall(b"y" * (3 * MIB))
        # the bytes go to tmp/ as they arrive, not into memory
        h.wait_for(lambda: self.files("tmp"), timeout=20,
                   what="a file in tmp/ during the literal")
        f.close()  # the makefile holds the fd open too
        s.close()
        h.wait_for(lambda: self.files("tmp") == [], timeout=20,
                   what="tmp/ emptied after the disconnect")
        self.assertEqual(self.stored(), [])
        # the server is fine and the session table has no husk left over
        m = self.login()
        typ, data = m.select("INBOX")
        self.assertEqual((typ, data[0]), ("OK", b"0"))

    def test_ten_concurrent_large_appends(self):
        msgs = [message(3 * MIB + k * 4097, b"c%d" % k) for k in range(10)]
        results = [None] * len(msgs)

        def appender(k):
            try:
                m = imaplib.IMAP4("127.0.0.1", self.store.port(), timeout=60)
                m.login(USER, PASSWORD)
                results[k] = m.append("INBOX", None, None, msgs[k])
                m.logout()
            except Exception as e:  # reported below
                results[k] = ("ERROR", [repr(e).encode()])

        threads = [threading.Thread(target=appender, args=(k,))
                   for k in range(len(msgs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertFalse(any(t.is_alive() for t in threads))
        for k, (typ, data) in enumerate(results):
            self.assertEqual(typ, "OK", "APPEND %d: %r" % (k, data))
        self.assertEqual(self.stored(),
                         sorted(hashlib.sha256(x).hexdigest() for x in msgs))
        self.assertEqual(self.files("tmp"), [])

    def test_bad_after_literal_drops_the_file(self):
        """A command that turns bad after its literal stores nothing."""
        s, f = self.raw()
        s.sendall(b"a APPEND INBOX {%d}\r\n" % MIB)
        self.assertTrue(f.readline().startswith(b"+"))
        s.sendall(b"z" * MIB + b" junk\r\n")
        self.tagged(f, b"a", b"BAD")
        s.sendall(b"b NOOP\r\n")
        self.tagged(f, b"b", b"OK")
        h.wait_for(lambda: self.files("tmp") == [], timeout=20,
                   what="tmp/ emptied after BAD")
        self.assertEqual(self.stored(), [])

    def test_missing_folder_is_refused_before_the_data(self):
        s, f = self.raw()
        s.sendall(b"a APPEND Nowhere {%d}\r\n" % (2 * MIB))
        line = self.tagged(f, b"a", b"NO")
        self.assertIn(b"[TRYCREATE]", line)
        s.sendall(b"b NOOP\r\n")
        self.tagged(f, b"b", b"OK")


class TestDiskFull(AppendCase):
    """The mail root is a 4 MiB tmpfs: an 8 MiB APPEND meets ENOSPC."""
    tmpfs = "4m"

    def test_full_disk_is_overquota_and_leaves_nothing(self):
        m = self.login()
        typ, data = m.append("INBOX", None, None, message(8 * MIB, b"full"))
        self.assertEqual(typ, "NO", data)
        self.assertIn(b"[OVERQUOTA]", data[0])
        h.wait_for(lambda: self.files("tmp") == [], timeout=20,
                   what="tmp/ emptied after ENOSPC")
        self.assertEqual(self.stored(), [])
        # the space is back and the session goes on
        msg = message(512 * 1024, b"fits")
        typ, data = m.append("INBOX", None, None, msg)
        self.assertEqual(typ, "OK", data)
        self.assertEqual(self.stored(), [hashlib.sha256(msg).hexdigest()])


class TestTooBig(AppendCase):
    append_max = "2M"

    def test_sync_literal_over_the_limit_gets_no_continuation(self):
        s, f = self.raw()
        s.sendall(b"a APPEND INBOX {%d}\r\n" % (2 * MIB + 1))
        line = f.readline()  # no "+" before it
        self.assertTrue(line.startswith(b"a NO [TOOBIG]"), line)
        s.sendall(b"b NOOP\r\n")
        self.tagged(f, b"b", b"OK")
        self.assertEqual(self.files("tmp"), [])
        self.assertEqual(self.stored(), [])

    def test_literal_plus_over_the_limit_is_swallowed_then_no(self):
        s, f = self.raw()
        size = 2 * MIB + 4096
        s.sendall(b"a APPEND INBOX {%d+}\r\n" % size)
        s.sendall(b"From: x\r\n\r\n" + b"q" * (size - 11) + b"\r\n")
        line = self.tagged(f, b"a", b"NO")
        self.assertIn(b"[TOOBIG]", line)
        s.sendall(b"b NOOP\r\n")
        self.tagged(f, b"b", b"OK")
        self.assertEqual(self.files("tmp"), [])
        self.assertEqual(self.stored(), [])

    def test_at_the_limit_is_stored(self):
        msg = message(2 * MIB, b"edge")
        msg += b"e" * (2 * MIB - len(msg))
        m = self.login()
        typ, data = m.append("INBOX", None, None, msg)
        self.assertEqual(typ, "OK", data)
        self.assertEqual(self.stored(), [hashlib.sha256(msg).hexdigest()])


if __name__ == "__main__":
    unittest.main()
