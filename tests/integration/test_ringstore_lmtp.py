"""test_ringstore_lmtp.py - ringstore's LMTP delivery (RFC 2033) with
clients nobody here wrote: smtplib.LMTP and swaks --protocol LMTP, plus a
raw socket where a test must send exactly some bytes.

Covers: one reply per recipient (an unknown one 550 5.1.1 among good
ones), an 8-bit body and dot-stuffing round trips byte-exact on disk and
through IMAP FETCH, user+detail kept in Delivered-To, IDLE woken by a
delivery, quota 552 5.2.2, a full disk 452 4.3.1 with nothing in new/
(a 1 MiB tmpfs; skipped where it cannot be mounted), kill -9 during a
burst from several clients (every 250 on disk whole, nothing half-written,
restart), and bad input: overlong lines, NUL, bare LF, too many bad
commands, 10,000 RCPTs, a DATA that never ends, a pipelined transaction
sent one byte per send (same answers as in one send).
"""

import imaplib
import os
import smtplib
import socket
import subprocess
import threading
import time
import unittest

import clamd_harness
import harness as h
import rs_harness as rs

BOB, BOB_PW = "bob@example.test", "bob-pw"
NOBODY = "nobody@example.test"


def read_reply(f):
    """One (multi-line) reply from f: (code, [texts])."""
    texts = []
    while True:
        line = f.readline()
        if not line:
            raise AssertionError("connection closed; got %r" % texts)
        if len(line) < 4 or not line.endswith(b"\r\n"):
            raise AssertionError("bad reply line %r" % line)
        texts.append(line[4:-2])
        if line[3:4] == b" ":
            return int(line[:3]), texts


def new_files(maildir):
    d = os.path.join(maildir, "new")
    try:
        return sorted(os.path.join(d, n) for n in os.listdir(d))
    except FileNotFoundError:
        return []


def read(path):
    with open(path, "rb") as f:
        return f.read()


def head_of(rcpt, sender="sender@example.org"):
    return (b"Return-Path: <%s>\r\nDelivered-To: <%s>\r\n" %
            (sender.encode(), rcpt.encode()))


class LmtpCase(unittest.TestCase):
    """A ringstore with an LMTP listener, the demo user and bob (with
    `bob_quota` when set)."""

    limits = {}
    bob_quota = None
    mail_root = None  # None: <dir>/mail
    policy = None  # a policy { } group, when set

    def setUp(self):
        self.dir = h.temp_dir(self)
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            f.write("%s:%s::::::\n" % (rs.DEMO_USER,
                                       rs.scram_hash(rs.DEMO_PASSWORD)))
            f.write("%s:%s::::::%s\n" % (
                BOB, rs.scram_hash(BOB_PW),
                "quota=%s" % self.bob_quota if self.bob_quota else ""))
        self.lmtp_port = h.free_port()
        root = self.mail_root_dir()
        self.cfg = rs.store_config(
            self.dir, h.free_port(), h.free_port(), limits=self.limits,
            storage={"mail_root": root},
            lmtp=[{"name": "lmtp", "trusted": True,
                   "listen": "127.0.0.1:%d" % self.lmtp_port}],
            **({"policy": self.policy_group()} if self.policy else {}))
        self.store = rs.Ringstore(self.dir, self.cfg).start(self)
        self.maildir = os.path.join(root, "example.test", "demo", "Maildir")
        self.bobdir = os.path.join(root, "example.test", "bob", "Maildir")

    def policy_group(self):
        return dict(self.policy)

    def mail_root_dir(self):
        return os.path.join(self.dir, "mail")

    def lmtp(self):
        l = smtplib.LMTP("127.0.0.1", self.lmtp_port, timeout=h.IO_TIMEOUT)
        self.addCleanup(l.close)
        return l

    def raw(self):
        s, f = rs.raw_connect(self, self.lmtp_port, greeting=None)
        code, _ = read_reply(f)
        self.assertEqual(code, 220)
        return s, f

    def send(self, rcpts, body, sender="sender@example.org"):
        """One message over smtplib.LMTP: the per-recipient replies
        (code, text) for the accepted recipients, in order."""
        l = self.lmtp()
        l.ehlo("client.example")
        self.assertEqual(l.mail(sender)[0], 250)
        ok = []
        for r in rcpts:
            code, _ = l.rcpt(r)
            if code == 250:
                ok.append(r)
        replies = [l.data(body)]
        for _ in ok[1:]:
            replies.append(l.getreply())
        l.quit()
        return replies


class TestLmtpDelivery(LmtpCase):
    bob_quota = "4K"

    def test_recipients_one_unknown(self):
        s, f = self.raw()
        s.sendall(b"LHLO client.example\r\n")
        code, lines = read_reply(f)
        self.assertEqual(code, 250)
        for ext in (b"PIPELINING", b"ENHANCEDSTATUSCODES", b"8BITMIME",
                    b"SIZE 52428800"):
            self.assertIn(ext, lines)
        self.assertIn(b"CHUNKING", lines)
        s.sendall(b"MAIL FROM:<sender@example.org>\r\n"
                  b"RCPT TO:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\n"
                  b"DATA\r\n" % (rs.DEMO_USER.encode(), NOBODY.encode(),
                                 BOB.encode()))
        self.assertEqual(read_reply(f), (250, [b"2.1.0 OK"]))
        self.assertEqual(read_reply(f), (250, [b"2.1.5 OK"]))
        self.assertEqual(read_reply(f), (550, [b"5.1.1 User unknown"]))
        self.assertEqual(read_reply(f), (250, [b"2.1.5 OK"]))
        self.assertEqual(read_reply(f)[0], 354)
        s.sendall(b"Subject: two\r\n\r\nhello\r\n.\r\n")
        self.assertEqual(read_reply(f), (250, [b"2.1.5 Delivered <%s>" %
                                              rs.DEMO_USER.encode()]))
        self.assertEqual(read_reply(f), (250, [b"2.1.5 Delivered <%s>" %
                                              BOB.encode()]))
        s.sendall(b"QUIT\r\n")
        self.assertEqual(read_reply(f)[0], 221)
        self.assertEqual(len(new_files(self.maildir)), 1)
        self.assertEqual(len(new_files(self.bobdir)), 1)
        self.assertEqual(self.store.metric(
            "ringstore_lmtp_refusals_total", reason="unknown_user"), 1)
        self.assertEqual(self.store.metric(
            "ringstore_lmtp_deliveries_total", result="delivered"), 2)

    def test_smtplib_per_recipient(self):
        l = self.lmtp()
        refused = l.sendmail("sender@example.org",
                             [rs.DEMO_USER, NOBODY, BOB],
                             b"Subject: x\r\n\r\nbody\r\n")
        self.assertEqual(refused, {NOBODY: (550, b"5.1.1 User unknown")})
        # smtplib reads one reply after DATA; LMTP sends one per
        # accepted recipient: the second is bob's
        self.assertEqual(l.getreply(),
                         (250, b"2.1.5 Delivered <%s>" % BOB.encode()))
        l.quit()

    def test_bytes_exact_8bit_and_dots(self):
        body = (b"From: a@example.org\r\nSubject: =?utf-8?q?x?=\r\n\r\n"
                b"caf\xc3\xa9 \xff\xfe\x80 8-bit\r\n"
                b".leading dot\r\n..two dots\r\n.\r\n.. \r\n"
                b"...\r\nlast\r\n")
        replies = self.send(["demo+lists@example.test"], body)
        self.assertEqual(replies[0][0], 250)
        [path] = new_files(self.maildir)
        want = head_of("demo+lists@example.test") + body
        self.assertEqual(read(path), want)
        m = rs.imap_login(self, self.store.port(), rs.DEMO_USER,
                          rs.DEMO_PASSWORD)
        typ, _ = m.select("INBOX")
        self.assertEqual(typ, "OK")
        typ, data = m.fetch("1", "(BODY.PEEK[])")
        self.assertEqual(typ, "OK")
        self.assertEqual(data[0][1], want)

    def test_detail_kept_in_delivered_to(self):
        replies = self.send(["Demo+Shop@Example.Test"], b"S: d\r\n\r\nx\r\n")
        self.assertEqual(replies[0][0], 250)
        [path] = new_files(self.maildir)
        self.assertTrue(read(path).startswith(
            head_of("Demo+Shop@Example.Test")))

    def test_quota(self):
        big = b"Subject: big\r\n\r\n" + b"y" * 5000 + b"\r\n"
        replies = self.send([rs.DEMO_USER, BOB], big)
        self.assertEqual(replies[0][0], 250)
        self.assertEqual(replies[1],
                         (552, b"5.2.2 Mailbox full: over quota <%s>" %
                          BOB.encode()))
        self.assertEqual(new_files(self.bobdir), [])
        small = b"Subject: small\r\n\r\nfits\r\n"
        self.assertEqual(self.send([BOB], small)[0][0], 250)
        self.assertEqual(len(new_files(self.bobdir)), 1)
        self.assertEqual(self.store.metric(
            "ringstore_lmtp_deliveries_total", result="quota"), 1)

    def test_quota_holds_for_imap_append_and_copy(self):
        """The quota LMTP keeps to holds for what the user adds over IMAP:
        APPEND (inline and streamed) and COPY answer NO [OVERQUOTA] past
        it; MOVE adds nothing and works; a user without quota= has no
        limit."""
        m = imaplib.IMAP4("127.0.0.1", self.store.port(),
                          timeout=h.IO_TIMEOUT)
        self.addCleanup(m.shutdown)
        m.login(BOB, BOB_PW)
        one_k = b"Subject: k\r\n\r\n" + b"k" * 1000 + b"\r\n"
        typ, data = m.append("INBOX", None, None, one_k)
        self.assertEqual(typ, "OK", data)
        for size in (5000, 200000):  # inline, and streamed to tmp/
            typ, data = m.append("INBOX", None, None,
                                 b"Subject: b\r\n\r\n" + b"b" * size)
            self.assertEqual(typ, "NO")
            self.assertIn(b"[OVERQUOTA]", data[0])
        self.assertEqual(m.select("INBOX"), ("OK", [b"1"]))
        answers = [m.copy("1", "INBOX")[0] for _ in range(4)]
        self.assertEqual(answers[:2], ["OK", "OK"])  # 3 KiB used
        self.assertEqual(answers[3], "NO")
        typ, data = m.copy("1", "INBOX")
        self.assertIn(b"[OVERQUOTA]", data[0])
        m.create("Archive")
        typ, data = m._simple_command("MOVE", "1:*", "Archive")
        self.assertEqual(typ, "OK", data)
        # nothing half-written anywhere
        self.assertEqual(
            [n for n in os.listdir(os.path.join(self.bobdir, "tmp"))], [])
        # the demo user has no quota=
        d = imaplib.IMAP4("127.0.0.1", self.store.port(),
                          timeout=h.IO_TIMEOUT)
        self.addCleanup(d.shutdown)
        d.login(rs.DEMO_USER, rs.DEMO_PASSWORD)
        typ, data = d.append("INBOX", None, None, b"x: y\r\n\r\n" +
                             b"z" * 200000)
        self.assertEqual(typ, "OK", data)

    def test_idle_wakes_on_delivery(self):
        s, f = rs.raw_connect(self, self.store.port())
        s.sendall(b"a LOGIN %s %s\r\nb SELECT INBOX\r\n" %
                  (rs.DEMO_USER.encode(), rs.DEMO_PASSWORD.encode()))
        while not f.readline().startswith(b"b OK"):
            pass
        s.sendall(b"c IDLE\r\n")
        self.assertEqual(f.readline(), b"+ idling\r\n")
        self.assertEqual(self.send([rs.DEMO_USER],
                                   b"Subject: wake\r\n\r\nup\r\n")[0][0], 250)
        seen = []
        while True:
            line = f.readline()
            self.assertTrue(line, "closed; got %r" % seen)
            seen.append(line)
            if line == b"* 1 EXISTS\r\n":
                break
        s.sendall(b"DONE\r\n")
        while not f.readline().startswith(b"c OK"):
            pass

    def test_bdat(self):
        """CHUNKING (RFC 3030): chunks taken as they are (no unstuffing),
        one reply per chunk, then one per recipient after LAST."""
        s, f = self.raw()
        s.sendall(b"LHLO client.example\r\n")
        self.assertEqual(read_reply(f)[0], 250)
        part1 = b"Subject: bdat\r\n\r\n.\r\n..not stuffed\r\n\x00\xff"
        part2 = b"\r\nend\r\n"
        s.sendall(b"BDAT 3\r\nabcRSET\r\n")  # before MAIL: skipped
        self.assertEqual(read_reply(f)[0], 503)
        self.assertEqual(read_reply(f)[0], 250)
        s.sendall(b"MAIL FROM:<b@example.org> BODY=BINARYMIME\r\n"
                  b"RCPT TO:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                  b"BDAT %d\r\n%sBDAT %d LAST\r\n%s" %
                  (rs.DEMO_USER.encode(), BOB.encode(), len(part1), part1,
                   len(part2), part2))
        self.assertEqual(read_reply(f)[0], 250)
        self.assertEqual(read_reply(f)[0], 250)
        self.assertEqual(read_reply(f)[0], 250)
        self.assertEqual(read_reply(f)[0], 503)  # DATA with BINARYMIME
        self.assertEqual(read_reply(f), (250, [b"2.0.0 %d octets received"
                                              % len(part1)]))
        for rcpt in (rs.DEMO_USER, BOB):
            self.assertEqual(read_reply(f), (250, [b"2.1.5 Delivered <%s>"
                                                  % rcpt.encode()]))
        s.sendall(b"QUIT\r\n")
        self.assertEqual(read_reply(f)[0], 221)
        [path] = new_files(self.maildir)
        self.assertEqual(read(path), head_of(rs.DEMO_USER, "b@example.org")
                         + part1 + part2)

    def test_swaks(self):
        body = "Subject: swaks\n\nline one\n.dot line\n"
        r = subprocess.run(
            ["swaks", "--protocol", "LMTP", "--server",
             "127.0.0.1:%d" % self.lmtp_port, "--from", "s@example.org",
             "--to", "%s,%s" % (rs.DEMO_USER, NOBODY), "--helo",
             "client.example", "--data", body, "--timeout", "20"],
            capture_output=True, timeout=60)
        out = r.stdout.decode("utf-8", "replace")
        self.assertIn("<** 550 5.1.1 User unknown", out)
        self.assertIn("<-  250 2.1.5 Delivered <%s>" % rs.DEMO_USER, out)
        [path] = new_files(self.maildir)
        data = read(path)
        self.assertIn(b"\r\n.dot line\r\n", data)
        self.assertTrue(data.startswith(b"Return-Path: <s@example.org>\r\n"
                                        b"Delivered-To: <%s>\r\n" %
                                        rs.DEMO_USER.encode()))


class TestLmtpConfig(unittest.TestCase):
    def test_untrusted_listener_refused(self):
        d = h.temp_dir(self)
        rs.write_passwd(os.path.join(d, "passwd"), {rs.DEMO_USER: "x"})
        cfg = rs.store_config(d, h.free_port(), h.free_port(), lmtp=[
            {"name": "open", "listen": "127.0.0.1:%d" % h.free_port()}])
        store = rs.Ringstore(d, cfg)
        store.write_config()
        r = subprocess.run([rs.RINGSTORE, "-t", "-c", store.conf_path],
                           capture_output=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(b"lmtp 'open' must have trusted = true", r.stderr)


class TestLmtpBadInput(LmtpCase):
    limits = {"recipients_max": 5, "message_max": "64k",
              "smtp_line_max": "1k", "bad_commands": 5}

    def hello(self):
        s, f = self.raw()
        s.sendall(b"LHLO client.example\r\n")
        self.assertEqual(read_reply(f)[0], 250)
        return s, f

    def test_overlong_nul_bare_lf(self):
        s, f = self.hello()
        s.sendall(b"NOOP " + b"x" * 5000 + b"\r\nNOOP\r\n")
        self.assertEqual(read_reply(f), (500, [b"5.5.2 Line too long"]))
        self.assertEqual(read_reply(f), (250, [b"2.0.0 OK"]))
        s.sendall(b"NO\x00OP\r\nNOOP\r\n")
        self.assertEqual(read_reply(f)[0], 500)
        self.assertEqual(read_reply(f), (250, [b"2.0.0 OK"]))
        s.sendall(b"NOOP\nNOOP\r\n")
        self.assertEqual(read_reply(f)[0], 500)
        self.assertEqual(read_reply(f), (250, [b"2.0.0 OK"]))
        # HELO is not LMTP; VRFY learns nothing; EXPN is not offered
        s.sendall(b"VRFY demo\r\nEXPN list\r\nQUIT\r\n")
        self.assertEqual(read_reply(f)[0], 252)
        self.assertEqual(read_reply(f)[0], 502)
        self.assertEqual(read_reply(f)[0], 221)

    def test_bad_commands_then_421(self):
        s, f = self.hello()
        s.sendall(b"FOO\r\n" * 5)
        for _ in range(4):
            self.assertEqual(read_reply(f)[0], 500)
        self.assertEqual(read_reply(f)[0], 500)
        code, _ = read_reply(f)
        self.assertEqual(code, 421)
        self.assertEqual(f.readline(), b"")

    def test_bare_lf_in_data_refused(self):
        s, f = self.hello()
        s.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<%s>\r\nDATA\r\n" %
                  rs.DEMO_USER.encode())
        for want in (250, 250, 354):
            self.assertEqual(read_reply(f)[0], want)
        s.sendall(b"Subject: x\r\n\r\nbare\nlf\r\n.\r\n")
        code, texts = read_reply(f)
        self.assertEqual((code, texts[0][:6]), (550, b"5.5.2 "))
        self.assertEqual(new_files(self.maildir), [])

    def test_ten_thousand_rcpts(self):
        s, f = self.hello()
        other_s, other_f = self.hello()
        n = 10000

        def flood():
            s.sendall(b"MAIL FROM:<a@example.org>\r\n" +
                      b"RCPT TO:<%s>\r\n" % rs.DEMO_USER.encode() * n +
                      b"DATA\r\n")
        t = threading.Thread(target=flood, daemon=True)
        t.start()
        self.assertEqual(read_reply(f)[0], 250)
        codes = [read_reply(f)[0] for _ in range(100)]
        # another client is served while the flood goes on
        other_s.sendall(b"NOOP\r\n")
        self.assertEqual(read_reply(other_f), (250, [b"2.0.0 OK"]))
        codes += [read_reply(f)[0] for _ in range(n - 100)]
        self.assertEqual(codes[:5], [250] * 5)
        self.assertEqual(set(codes[5:]), {452})
        t.join(30)
        self.assertEqual(read_reply(f)[0], 354)
        s.sendall(b"Subject: many\r\n\r\nx\r\n.\r\n")
        for _ in range(5):
            self.assertEqual(read_reply(f)[0], 250)
        self.assertEqual(self.store.metric(
            "ringstore_lmtp_refusals_total", reason="recipients"), n - 5)

    def test_endless_data(self):
        s, f = self.hello()
        s.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<%s>\r\nDATA\r\n" %
                  rs.DEMO_USER.encode())
        for want in (250, 250, 354):
            self.assertEqual(read_reply(f)[0], want)
        ended = []

        def endless():
            block = (b"z" * 78 + b"\r\n") * 100
            try:
                while True:
                    s.sendall(block)
            except OSError as e:
                ended.append(e)
        t = threading.Thread(target=endless, daemon=True)
        t.start()
        code, texts = read_reply(f)
        self.assertEqual((code, texts[0][:5]), (552, b"5.3.4"))
        self.assertEqual(f.readline(), b"")
        t.join(60)
        # the server reset the connection: the sender got an error
        self.assertFalse(t.is_alive())
        self.assertEqual(len(ended), 1)
        self.assertEqual(new_files(self.maildir), [])

    def test_bdat_too_big(self):
        s, f = self.hello()
        s.sendall(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<%s>\r\n"
                  b"BDAT 99999999999\r\n" % rs.DEMO_USER.encode())
        for want in (250, 250):
            self.assertEqual(read_reply(f)[0], want)
        code, texts = read_reply(f)
        self.assertEqual((code, texts[0][:5]), (552, b"5.3.4"))
        self.assertEqual(f.readline(), b"")

    def transcript(self, data, one_byte):
        s = socket.create_connection(("127.0.0.1", self.lmtp_port),
                                     timeout=h.IO_TIMEOUT)
        self.addCleanup(s.close)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if one_byte:
            for i in range(len(data)):
                s.sendall(data[i:i + 1])
        else:
            s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk

    def test_pipelined_split_at_every_byte(self):
        data = (b"LHLO client.example\r\nMAIL FROM:<a@example.org>\r\n"
                b"RCPT TO:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                b"Subject: split\r\n\r\n..dot\r\nbody\r\n.\r\n"
                b"RSET\r\nNOOP\r\nVRFY x\r\n"
                b"MAIL FROM:<a@example.org>\r\nRCPT TO:<%s>\r\n"
                b"BDAT 8\r\nS: b\r\n\r\nBDAT 6 LAST\r\n.dot\r\n"
                b"QUIT\r\n" %
                (rs.DEMO_USER.encode(), NOBODY.encode(), BOB.encode(),
                 rs.DEMO_USER.encode()))
        whole = self.transcript(data, False)
        split = self.transcript(data, True)
        self.assertEqual(split, whole)
        codes = [int(l[:3]) for l in whole.split(b"\r\n") if l[3:4] == b" "]
        self.assertEqual(codes, [220, 250, 250, 250, 550, 250, 354, 250, 250,
                                 250, 250, 252, 250, 250, 250, 250, 221])
        files = new_files(self.maildir)
        self.assertEqual(len(files), 4)
        split_msgs = [p for p in files if read(p).endswith(
            b"Subject: split\r\n\r\n.dot\r\nbody\r\n")]
        bdat_msgs = [p for p in files if read(p).endswith(
            b"\r\nS: b\r\n\r\n.dot\r\n")]
        self.assertEqual((len(split_msgs), len(bdat_msgs)), (2, 2))


class TestLmtpIdle(LmtpCase):
    limits = {"idle_timeout": "1s"}

    def test_idle_timeout_421(self):
        s, f = self.raw()
        s.sendall(b"LHLO client.example\r\n")
        self.assertEqual(read_reply(f)[0], 250)
        code, texts = read_reply(f)  # nothing sent: the server speaks
        self.assertEqual((code, texts[0][:6]), (421, b"4.4.2 "))
        self.assertEqual(f.readline(), b"")


class TestLmtpKill(LmtpCase):
    """kill -9 during a burst from several clients: every message that
    got its 250 is on disk whole, nothing half-written is in new/, and
    the restarted store serves them."""

    def test_kill_during_burst(self):
        acked = []
        lock = threading.Lock()
        filler = b"0123456789abcdef" * 4 * 1024  # 64 KiB, several chunks

        def body(tag):
            return (b"Subject: %s\r\n\r\n" % tag + filler +
                    b"\r\nend %s\r\n" % tag)

        def client(k):
            def run(stop):
                i = 0
                try:
                    l = smtplib.LMTP("127.0.0.1", self.lmtp_port,
                                     timeout=h.IO_TIMEOUT)
                    l.ehlo("c%d" % k)
                    while not stop.is_set():
                        tag = b"m%d-%d" % (k, i)
                        i += 1
                        l.mail("s@example.org")
                        l.rcpt(rs.DEMO_USER)
                        code, _ = l.data(body(tag))
                        if code == 250:
                            with lock:
                                acked.append(tag)
                except (OSError, smtplib.SMTPException):
                    pass
            return run

        rs.kill_during(self.store, [client(k) for k in range(4)],
                       lambda: len(acked) >= 40, 60, "40 deliveries")
        on_disk = {}
        for p in new_files(self.maildir):
            data = read(p)
            tag = data.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0]
            # nothing half-written: every file in new/ is whole
            self.assertEqual(data, head_of(rs.DEMO_USER, "s@example.org") +
                             body(tag), p)
            on_disk[tag] = p
        for tag in acked:
            self.assertIn(tag, on_disk)
        # the UID list as the kill left it (deliveries append to it): a
        # valid header, and every acknowledged message listed with a UID
        with open(os.path.join(self.maildir, "ringstore-uidlist"),
                  "rb") as f:
            lines = f.read().split(b"\n")
        self.assertEqual(lines[0].split()[:2], [b"ringstore-uidlist", b"2"])
        uidvalidity = int(lines[0].split()[2])
        listed = {}
        for line in lines[1:]:
            uid, _, base = line.partition(b" ")
            if uid.isdigit() and base:
                listed[base.decode()] = int(uid)
        base_of = {tag: os.path.basename(p).split(":2,")[0]
                   for tag, p in on_disk.items()}
        for tag in acked:
            self.assertIn(base_of[tag], listed, tag)
        # restart: the store comes back and serves them all
        store = rs.Ringstore(self.dir, self.cfg).start(self)
        m = rs.imap_login(self, store.port(), rs.DEMO_USER, rs.DEMO_PASSWORD)
        typ, data = m.select("INBOX")
        self.assertEqual(typ, "OK")
        self.assertEqual(int(data[0]), len(on_disk))
        self.assertGreaterEqual(len(on_disk), 40)
        # same UIDVALIDITY, UIDs unique and ascending, and each listed
        # message kept the UID it had before the kill
        self.assertEqual(m.response("UIDVALIDITY")[1], [b"%d" % uidvalidity])
        typ, data = m.fetch("1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        self.assertEqual(typ, "OK")
        uids = []
        for item in data:
            if not isinstance(item, tuple):
                continue
            uid = int(item[0].split(b"(UID ", 1)[1].split(b" ", 1)[0])
            tag = item[1].split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0]
            uids.append(uid)
            if base_of[tag] in listed:
                self.assertEqual(uid, listed[base_of[tag]], tag)
        self.assertEqual(len(uids), len(on_disk))
        self.assertEqual(uids, sorted(set(uids)))
        l = smtplib.LMTP("127.0.0.1", self.lmtp_port, timeout=h.IO_TIMEOUT)
        self.addCleanup(l.close)
        self.assertEqual(l.sendmail("s@example.org", [rs.DEMO_USER],
                                    body(b"after")), {})
        l.quit()


class TestLmtpFullDisk(LmtpCase):
    """A 1 MiB tmpfs as the mail root: a message that fits as the tmp
    copy but not twice gets 452 4.3.1 and leaves nothing in new/."""

    def mail_root_dir(self):
        root = os.path.join(self.dir, "tmpfs")
        os.mkdir(root)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m",
                            "tmpfs", root], capture_output=True)
        if r.returncode != 0:
            if h.IN_CI:
                raise AssertionError("cannot mount a tmpfs: %r" % r.stderr)
            self.skipTest("cannot mount a tmpfs here (needs root): %s" %
                          r.stderr.decode().strip())
        self.addCleanup(subprocess.run, ["umount", "-l", root])
        return root

    def test_full_disk(self):
        # the user's Maildir exists first
        self.assertEqual(self.send([rs.DEMO_USER],
                                   b"Subject: s\r\n\r\nsmall\r\n")[0][0], 250)
        big = b"Subject: big\r\n\r\n" + (b"w" * 998 + b"\r\n") * 600
        replies = self.send([rs.DEMO_USER], big)
        self.assertEqual(replies[0][0], 452)
        self.assertTrue(replies[0][1].startswith(b"4.3.1 "), replies)
        self.assertEqual(len(new_files(self.maildir)), 1)
        self.assertEqual(os.listdir(os.path.join(self.maildir, "tmp")), [])
        # too big for the received copy itself: the same answer
        huge = b"Subject: huge\r\n\r\n" + (b"h" * 998 + b"\r\n") * 1200
        replies = self.send([rs.DEMO_USER], huge)
        self.assertEqual(replies[0][0], 452)
        self.assertTrue(replies[0][1].startswith(b"4.3.1 "), replies)
        self.assertEqual(len(new_files(self.maildir)), 1)
        # the space is back: the next small one goes in
        self.assertEqual(self.send([rs.DEMO_USER],
                                   b"Subject: s2\r\n\r\nsmall\r\n")[0][0], 250)
        self.assertEqual(self.store.metric(
            "ringstore_lmtp_deliveries_total", result="disk_full"), 1)
        self.assertEqual(self.store.metric(
            "ringstore_lmtp_refusals_total", reason="storage"), 1)


if __name__ == "__main__":
    unittest.main()


EXE_MESSAGE = (
    b"From: <sender@example.org>\r\nSubject: invoice\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
    b"--b1\r\nContent-Type: text/plain\r\n\r\nPlease see attached.\r\n"
    b"--b1\r\nContent-Type: application/octet-stream\r\n"
    b"Content-Disposition: attachment; filename*=utf-8''invoice.pdf%2Eexe\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n"
    b"--b1--\r\n")


class TestLmtpPolicyReject(LmtpCase):
    """The content policy applies to LMTP too: a dangerous attachment
    (its RFC 2231 name ends in .exe) is refused for every recipient."""
    policy = {"attachments": "reject"}

    def test_exe_refused_for_each_recipient(self):
        replies = self.send([rs.DEMO_USER, BOB], EXE_MESSAGE)
        self.assertEqual([r[0] for r in replies], [554, 554])
        for r in replies:
            self.assertIn(b"5.7.1", r[1])
            self.assertIn(b"invoice.pdf.exe", r[1])
        self.assertEqual(new_files(self.maildir), [])
        self.assertEqual(new_files(self.bobdir), [])
        # a clean message on the next transaction is delivered
        replies = self.send([BOB], b"Subject: clean\r\n\r\nhello\r\n")
        self.assertEqual([r[0] for r in replies], [250])
        self.assertEqual(len(new_files(self.bobdir)), 1)
        self.assertEqual(self.store.metric(
            "ringstore_policy_verdicts_total", service="lmtp",
            verdict="reject"), 1)


class TestLmtpPolicyStrip(LmtpCase):
    policy = {"attachments": "strip"}

    def test_exe_stripped(self):
        replies = self.send([BOB], EXE_MESSAGE)
        self.assertEqual([r[0] for r in replies], [250])
        files = new_files(self.bobdir)
        self.assertEqual(len(files), 1)
        m = read(files[0])
        self.assertTrue(m.startswith(head_of(BOB)))
        self.assertIn(b"Please see attached.", m)
        self.assertNotIn(b"TVqQAAMAAAAEAAAA", m)
        self.assertIn(b"invoice.pdf.exe", m)  # the note naming it
        left = [n for n in os.listdir(self.mail_root_dir())
                if n.startswith("policy.")]
        self.assertEqual(left, [])


class TestLmtpPolicyClamd(LmtpCase):
    """EICAR delivered over LMTP is refused by a real clamd."""
    policy = {"attachments": "off", "clamd_fail": "closed"}

    def policy_group(self):
        if not clamd_harness.available():
            if os.environ.get("CI"):
                raise AssertionError("clamd missing in CI")
            self.skipTest("clamd not installed")
        c = clamd_harness.Clamd(self.dir)
        c.start()
        self.addCleanup(c.stop)
        return dict(self.policy, clamd=c.socket)

    def test_eicar_refused(self):
        replies = self.send([BOB], b"Subject: test\r\n\r\n" +
                            clamd_harness.EICAR + b"\r\n")
        self.assertEqual(replies[0][0], 554)
        self.assertIn(b"virus found", replies[0][1])
        self.assertEqual(new_files(self.bobdir), [])
        replies = self.send([BOB], b"Subject: fine\r\n\r\nclean\r\n")
        self.assertEqual(replies[0][0], 250)
