"""test_ringstore_clients.py - ringstore with real IMAP clients.

curl's IMAP URLs (LIST, UID fetch, APPEND with -T) on a trusted
plaintext listener and over STARTTLS with --ssl-reqd and the test CA;
mbsync (isync) syncing a local Maildir both ways, twice in a row with
nothing changing the second time, then a local \\Seen reaching the
server and deletions on either side (Expunge Both) reaching the other;
the one keyword mbsync 1.4 syncs ($Forwarded, its Maildir P) set and
cleared on either side;
and crash safety: kill -9 during a burst of APPENDs, restart on
the same mail root, every APPEND that got OK is there with its bytes and
UIDs are unique and ascending.

Each class starts its own ringstore on free ports with a fresh mail root.
A test whose client program is missing is skipped (scripts/deps.sh
installs curl and isync).
"""

import hashlib
import imaplib
import os
import re
import shutil
import ssl
import subprocess
import time
import unittest

import harness as h
import rs_harness as rs

USER, PASSWORD = "demo@example.test", "ringgate-demo-pw"
CURL = shutil.which("curl")
MBSYNC = shutil.which("mbsync")


def message(n, subject="test", size=0, mid=None):
    body = b"".join(b"line %d of message %d %s\r\n" % (i, n, b"z" * 60)
                    for i in range(max(1, size // 80)))
    return (b"From: Alice <alice@example.test>\r\n"
            b"To: demo@example.test\r\n"
            b"Subject: %s %d\r\n"
            b"Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n"
            b"Message-ID: <%s@example.test>\r\n"
            b"\r\n" % (subject.encode(), n,
                       (mid or "m%d" % n).encode()) + body)


class StoreCase(unittest.TestCase):
    """A ringstore per test: trusted plaintext, or STARTTLS when tls."""

    tls = False

    def setUp(self):
        self.dir = h.temp_dir(self)
        rs.write_passwd(os.path.join(self.dir, "passwd"), {USER: PASSWORD})
        certs = []
        self.cert = None
        if self.tls:
            self.cert, key = h.make_cert(self.dir, "ec", stem="server")
            certs = [(self.cert, key)]
        cfg = rs.store_config(self.dir, h.free_port(), h.free_port(),
                              certs=certs)
        self.store = rs.Ringstore(self.dir, cfg).start(self)

    def login(self):
        m = imaplib.IMAP4("127.0.0.1", self.store.port(), timeout=20)
        self.addCleanup(rs.logout_quietly, m)
        if self.tls:
            m.starttls(ssl.create_default_context(cafile=self.cert))
        m.login(USER, PASSWORD)
        return m

    def append(self, m, folder, msg, flags=""):
        typ, data = m.append(folder, flags, None, msg)
        self.assertEqual(typ, "OK", data)
        match = re.search(rb"APPENDUID (\d+) (\d+)", data[0])
        self.assertIsNotNone(match, data)
        return int(match.group(2))

    def server_folder(self, m, folder):
        """{Message-ID: (uid, flags frozenset, body bytes)} of a folder."""
        typ, data = m.select(folder, readonly=True)
        self.assertEqual(typ, "OK", data)
        out = {}
        if data[0] == b"0":
            return out
        typ, data = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
        self.assertEqual(typ, "OK", data)
        items = [d for d in data if isinstance(d, tuple)]
        tails = [d for d in data if isinstance(d, bytes)]
        for i, (head, body) in enumerate(items):
            meta = head + (tails[i] if i < len(tails) else b"")
            uid = int(re.search(rb"UID (\d+)", meta).group(1))
            flags = re.search(rb"FLAGS \(([^)]*)\)", meta).group(1)
            mid = re.search(rb"(?im)^Message-ID: *(<[^>]*>)", body).group(1)
            self.assertNotIn(mid, out, "Message-ID twice in " + folder)
            out[mid] = (uid, frozenset(flags.split()), body)
        return out


# ---------------------------------------------------------------- curl

@unittest.skipUnless(CURL or h.IN_CI, "curl is not installed")
class TestCurlPlain(StoreCase):

    tls = False

    def curl(self, url, *args, check=True):
        cmd = [CURL, "-sS", "--max-time", "20",
               "-u", "%s:%s" % (USER, PASSWORD)]
        if self.tls:
            cmd += ["--ssl-reqd", "--cacert", self.cert]
        p = subprocess.run(cmd + list(args) + [url], capture_output=True,
                           timeout=40)
        if check:
            self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def url(self, path=""):
        return "imap://127.0.0.1:%d/%s" % (self.store.port(), path)

    def test_list_fetch_append(self):
        m = self.login()
        first = message(1, "curl fetch")
        self.assertEqual(self.append(m, "INBOX", first), 1)
        big = message(2, "curl big", size=300 * 1024)
        self.assertEqual(self.append(m, "INBOX", big), 2)

        out = self.curl(self.url()).stdout
        names = re.findall(rb'(?m)^\* LIST \([^)]*\) "[^"]*" "?([^"\r\n]+)',
                           out)
        for folder in (b"INBOX", b"Sent", b"Drafts", b"Trash", b"Junk"):
            self.assertIn(folder, names, out)

        self.assertEqual(self.curl(self.url("INBOX;UID=1")).stdout, first)
        self.assertEqual(self.curl(self.url("INBOX;UID=2")).stdout, big)
        # a UID that is not there: curl fails, the server keeps serving
        p = self.curl(self.url("INBOX;UID=99"), check=False)
        self.assertNotEqual(p.returncode, 0)

        upload = message(3, "curl upload", size=20 * 1024)
        path = os.path.join(self.dir, "upload.eml")
        with open(path, "wb") as f:
            f.write(upload)
        self.curl(self.url("INBOX"), "-T", path)
        self.curl(self.url("Sent"), "-T", path)
        inbox = self.server_folder(m, "INBOX")
        self.assertEqual(sorted(u for u, _, _ in inbox.values()), [1, 2, 3])
        self.assertEqual(inbox[b"<m3@example.test>"][0], 3)
        self.assertEqual(inbox[b"<m3@example.test>"][2], upload)
        sent = self.server_folder(m, "Sent")
        self.assertEqual(sent[b"<m3@example.test>"][2], upload)
        # and curl reads back what curl wrote
        self.assertEqual(self.curl(self.url("INBOX;UID=3")).stdout, upload)
        self.store.assert_alive()


class TestCurlStartTLS(TestCurlPlain):

    tls = True

    def test_ssl_reqd_needs_the_ca(self):
        p = subprocess.run([CURL, "-sS", "--max-time", "20", "--ssl-reqd",
                            "-u", "%s:%s" % (USER, PASSWORD),
                            self.url()], capture_output=True, timeout=40)
        self.assertNotEqual(p.returncode, 0)   # self-signed, not trusted
        p = subprocess.run([CURL, "-sS", "--max-time", "20",
                            "-u", "%s:%s" % (USER, "wrong"), "--ssl-reqd",
                            "--cacert", self.cert, self.url()],
                           capture_output=True, timeout=40)
        self.assertEqual(p.returncode, 67, p.stderr)   # login denied
        self.store.assert_alive()


# ---------------------------------------------------------------- mbsync

@unittest.skipUnless(MBSYNC or h.IN_CI, "mbsync (isync) is not installed")
class TestMbsyncPlain(StoreCase):

    tls = False

    def setUp(self):
        super().setUp()
        self.local = os.path.join(self.dir, "local")
        os.makedirs(self.local)
        self.rc = os.path.join(self.dir, "mbsyncrc")
        # mbsync 1.4 matches the certificate's DNS names only, not IP
        # addresses; the test certificate names localhost.
        host = "localhost" if self.tls else "127.0.0.1"
        account = ["IMAPAccount rs", "Host " + host,
                   "Port %d" % self.store.port(), "User " + USER,
                   "Pass " + PASSWORD, "Timeout 20", "PipelineDepth 8"]
        if self.tls:
            account += ["SSLType STARTTLS", "CertificateFile " + self.cert]
        else:
            account += ["SSLType None", "AuthMechs LOGIN"]
        lines = account + [
            "", "IMAPStore remote", "Account rs",
            "", "MaildirStore near", "Path %s/" % self.local,
            "Inbox %s/INBOX" % self.local, "SubFolders Verbatim",
            "", "Channel both", "Far :remote:", "Near :near:",
            "Patterns *", "Create Both", "Expunge Both", "SyncState *", ""]
        with open(self.rc, "w") as f:
            f.write("\n".join(lines))

    def mbsync(self):
        env = dict(os.environ, HOME=self.dir)
        p = subprocess.run([MBSYNC, "-a", "-c", self.rc], capture_output=True,
                           text=True, timeout=120, env=env, cwd=self.dir)
        self.assertEqual(p.returncode, 0,
                         "mbsync failed:\n%s%s" % (p.stdout, p.stderr))
        self.store.assert_alive()
        return p

    def local_put(self, folder, name, msg, sub="new"):
        d = os.path.join(self.local, folder)
        for s in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(d, s), exist_ok=True)
        with open(os.path.join(d, sub, name), "wb") as f:
            f.write(msg)

    def local_relabel(self, folder, entry, info):
        """Give a local message (a local_state() entry) the Maildir info
        flags info, in cur/, as a MUA would."""
        sub, name, _ = entry
        d = os.path.join(self.local, folder)
        os.rename(os.path.join(d, sub, name),
                  os.path.join(d, "cur", name.split(":2,", 1)[0] + ":2," +
                               info))

    def local_state(self):
        """{folder: {Message-ID: (subdir, file name, body CRLF)}}."""
        out = {}
        for folder in sorted(os.listdir(self.local)):
            d = os.path.join(self.local, folder)
            if not os.path.isdir(os.path.join(d, "cur")):
                continue
            msgs = out.setdefault(folder, {})
            for sub in ("new", "cur"):
                for name in sorted(os.listdir(os.path.join(d, sub))):
                    with open(os.path.join(d, sub, name), "rb") as f:
                        body = f.read()
                    mid = re.search(rb"(?im)^Message-ID: *(<[^>]*>)",
                                    body).group(1)
                    self.assertNotIn(mid, msgs, "twice in " + folder)
                    body = re.sub(rb"\r?\n", b"\r\n", body)
                    msgs[mid] = (sub, name, body)
        return out

    def server_state(self, m):
        typ, data = m.list()
        self.assertEqual(typ, "OK")
        out = {}
        for line in data:
            name = re.search(rb'"[^"]*" "?([^"]+)"?$', line).group(1)
            out[name.decode()] = self.server_folder(m, name.decode())
        return out

    @staticmethod
    def strip_tuid(body):
        return re.sub(rb"(?im)^X-TUID: [^\r\n]*\r\n", b"", body)

    def assert_same(self, local, server):
        self.assertEqual(sorted(local), sorted(server))
        for folder, msgs in server.items():
            self.assertEqual(sorted(msgs), sorted(local[folder]), folder)
            for mid, (uid, flags, body) in msgs.items():
                sub, name, lbody = local[folder][mid]
                self.assertEqual(self.strip_tuid(lbody),
                                 self.strip_tuid(body), (folder, mid))
                info = name.split(":2,", 1)[1] if ":2," in name else ""
                self.assertEqual("S" in info, b"\\Seen" in flags, name)
                self.assertEqual("F" in info, b"\\Flagged" in flags, name)

    def test_sync_both_ways_twice(self):
        m = self.login()
        self.append(m, "INBOX", message(1, "server inbox"))
        self.append(m, "INBOX", message(2, "server flagged"), "(\\Flagged)")
        self.append(m, "Sent", message(3, "server sent", size=50 * 1024),
                    "(\\Seen)")
        self.local_put("INBOX", "1700000000.l4.host", message(4, "local new"))
        self.local_put("INBOX", "1700000001.l5.host:2,S",
                       message(5, "local seen"), sub="cur")
        self.local_put("Local", "1700000002.l6.host:2,FS",
                       message(6, "local folder", size=10 * 1024), sub="cur")

        self.mbsync()
        local, server = self.local_state(), self.server_state(m)
        self.assertEqual(sorted(server["INBOX"]),
                         [b"<m%d@example.test>" % i for i in (1, 2, 4, 5)])
        self.assertEqual(sorted(server["Sent"]), [b"<m3@example.test>"])
        self.assertEqual(sorted(server["Local"]), [b"<m6@example.test>"])
        self.assertEqual(server["Local"][b"<m6@example.test>"][1],
                         frozenset((b"\\Seen", b"\\Flagged")))
        self.assertEqual(server["INBOX"][b"<m5@example.test>"][1],
                         frozenset((b"\\Seen",)))
        self.assert_same(local, server)

        # the second run changes nothing on either side
        self.mbsync()
        self.assertEqual(self.local_state(), local)
        self.assertEqual(self.server_state(m), server)

        # a local \Seen reaches the server
        sub, name, _ = local["INBOX"][b"<m1@example.test>"]
        self.assertEqual(server["INBOX"][b"<m1@example.test>"][1],
                         frozenset())
        base = name.split(":2,", 1)[0]
        d = os.path.join(self.local, "INBOX")
        os.rename(os.path.join(d, sub, name),
                  os.path.join(d, "cur", base + ":2,S"))
        self.mbsync()
        server2 = self.server_state(m)
        self.assertEqual(server2["INBOX"][b"<m1@example.test>"][1],
                         frozenset((b"\\Seen",)))
        local2 = self.local_state()
        self.assert_same(local2, server2)
        # and once more: stable
        self.mbsync()
        self.assertEqual(self.local_state(), local2)
        self.assertEqual(self.server_state(m), server2)

        # deletions both ways: one expunged on the server, one trashed
        # locally (T); Expunge Both removes each from the other side
        m.select("INBOX")
        uid2 = server2["INBOX"][b"<m2@example.test>"][0]
        self.assertEqual(m.uid("STORE", str(uid2), "+FLAGS.SILENT",
                               "(\\Deleted)")[0], "OK")
        self.assertEqual(m.expunge()[0], "OK")
        m.unselect()
        sub, name, _ = local2["INBOX"][b"<m4@example.test>"]
        base = name.split(":2,", 1)[0]
        os.rename(os.path.join(d, sub, name),
                  os.path.join(d, "cur", base + ":2,T"))
        self.mbsync()
        local3, server3 = self.local_state(), self.server_state(m)
        self.assertEqual(sorted(server3["INBOX"]),
                         [b"<m1@example.test>", b"<m5@example.test>"])
        self.assert_same(local3, server3)
        self.mbsync()
        self.assertEqual(self.local_state(), local3)
        self.assertEqual(self.server_state(m), server3)

    def test_forwarded_keyword_both_ways(self):
        """mbsync 1.4 syncs one keyword, $Forwarded, as the Maildir P
        flag, and only with a server whose PERMANENTFLAGS has \\*:
        set and cleared on either side, it reaches the other."""
        m = self.login()
        self.append(m, "INBOX", message(1, "forwarded on the server"))
        self.local_put("INBOX", "1700000010.l2.host:2,S",
                       message(2, "forwarded locally"), sub="cur")
        self.mbsync()
        server = self.server_state(m)["INBOX"]
        uid1 = server[b"<m1@example.test>"][0]
        m.select("INBOX")
        self.assertEqual(m.uid("STORE", str(uid1), "+FLAGS",
                               "($Forwarded)")[0], "OK")
        self.local_relabel("INBOX", self.local_state()["INBOX"][
            b"<m2@example.test>"], "PS")
        self.mbsync()
        local, server = self.local_state()["INBOX"], self.server_state(m)
        self.assertIn("P", local[b"<m1@example.test>"][1].split(":2,")[1])
        self.assertEqual(server["INBOX"][b"<m2@example.test>"][1],
                         frozenset((b"\\Seen", b"$Forwarded")))
        # the server keeps it as a keyword, in Dovecot's format
        md = os.path.join(self.dir, "mail", "example.test", "demo",
                          "Maildir")
        with open(os.path.join(md, "dovecot-keywords")) as f:
            self.assertEqual(f.read(), "0 $Forwarded\n")
        # cleared on either side
        m.select("INBOX")
        self.assertEqual(m.uid("STORE", str(uid1), "-FLAGS",
                               "($Forwarded)")[0], "OK")
        self.local_relabel("INBOX", local[b"<m2@example.test>"], "S")
        self.mbsync()
        local, server = self.local_state()["INBOX"], self.server_state(m)
        self.assertNotIn("P", local[b"<m1@example.test>"][1].split(":2,")[1])
        self.assertEqual(server["INBOX"][b"<m2@example.test>"][1],
                         frozenset((b"\\Seen",)))
        self.mbsync()
        self.assertEqual(self.local_state()["INBOX"], local)


class TestMbsyncStartTLS(TestMbsyncPlain):

    tls = True


# ---------------------------------------------------------------- crash

class TestCrashDuringAppends(StoreCase):

    tls = False
    THREADS = 2

    def appender(self, k, acked, stop):
        """APPEND until the connection dies; record (uid, body) per OK."""
        m = None
        try:
            m = imaplib.IMAP4("127.0.0.1", self.store.port(), timeout=20)
            m.login(USER, PASSWORD)
            n = 0
            while not stop.is_set():
                n += 1
                size = (n * 7919) % (64 * 1024) if n % 3 else 200
                body = message(k * 100000 + n, "burst", size=size)
                typ, data = m.append("INBOX", "", None, body)
                if typ != "OK":
                    acked.append(("NO", data))
                    continue
                uid = int(re.search(rb"APPENDUID \d+ (\d+)",
                                    data[0]).group(1))
                acked.append((uid, body))
        except (OSError, imaplib.IMAP4.abort, EOFError):
            pass   # the server was killed
        finally:
            if m is not None:
                try:
                    m.shutdown()
                except OSError:
                    pass

    def test_kill_9_mid_burst(self):
        m = self.login()
        self.append(m, "INBOX", message(0, "before"))
        m.select("INBOX")
        uidvalidity = m.untagged_responses["UIDVALIDITY"][0]
        rs.logout_quietly(m)

        acked = []
        threads = rs.kill_during(
            self.store,
            [lambda stop, k=k: self.appender(k + 1, acked, stop)
             for k in range(self.THREADS)],
            lambda: len(acked) >= 60, 60, "60 APPENDs acknowledged")
        self.assertEqual(self.store.proc.returncode, -9)
        self.assertFalse(any(t.is_alive() for t in threads))
        self.assertEqual([a for a in acked if a[0] == "NO"], [])
        self.store.stop()

        self.store.start(self)
        self.store.killed = False
        m = self.login()
        typ, data = m.select("INBOX")
        self.assertEqual(typ, "OK")
        self.assertEqual(m.untagged_responses["UIDVALIDITY"][0], uidvalidity)
        count = int(data[0])
        self.assertGreaterEqual(count, 1 + len(acked))
        typ, data = m.fetch("1:*", "(UID BODY.PEEK[])")
        self.assertEqual(typ, "OK")
        uids, by_uid = [], {}
        for item in data:
            if isinstance(item, tuple):
                uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
                uids.append(uid)
                by_uid[uid] = item[1]
        self.assertEqual(len(uids), count)
        self.assertEqual(uids, sorted(set(uids)), "UIDs not unique/ascending")
        self.assertEqual(len(set(by_uid.values())), len(by_uid),
                         "a message twice")
        for uid, body in acked:
            self.assertIn(uid, by_uid, "acknowledged UID %d lost" % uid)
            self.assertEqual(by_uid[uid], body, "UID %d changed" % uid)
        # the store keeps working: the next UID is above all of them
        new = self.append(m, "INBOX", message(999999, "after"))
        self.assertGreater(new, max(uids))


if __name__ == "__main__":
    unittest.main()
