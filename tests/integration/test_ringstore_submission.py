"""test_ringstore_submission.py - ringstore's submission intake with real
clients (smtplib, swaks, imaplib, raw sockets).

A ringstore per test with an IMAP listener (to read INBOXes), a
submission listener with STARTTLS ("sub", untrusted: AUTH only after
TLS, no XCLIENT) and a trusted one ("gate", as behind ringgate: cleartext
AUTH and XCLIENT from loopback). Users: the demo user with aliases, bob,
and a master identity.

Covered: EHLO keywords before and after STARTTLS; AUTH PLAIN and LOGIN
after STARTTLS (538 before it); MAIL before AUTH 530; VRFY 252, EXPN and
ETRN 502; the envelope sender and the header From: must be the user's
(553 5.7.1), an alias is; delivery to a local user's INBOX with a
Received header (without the client address when hidden); a remote
domain without smarthost 550 5.7.1; recipients per message; SIZE
announced and enforced; the Received hop count (554 5.4.6); master AUTH
with an authzid; XCLIENT from a trusted listener and refused on another;
bad input (overlong line, NUL, bare LF, pipelined commands split at
every byte, bad commands until 421).
"""

import base64
import imaplib
import os
import shutil
import smtplib
import subprocess
import time
import unittest

import clamd_harness
import harness as h
import rs_harness as rs
from smtp_sink import SmtpSink

USER, PASSWORD = rs.DEMO_USER, rs.DEMO_PASSWORD
ALIAS = "sales@example.test"
OTHER_DOMAIN_ALIAS = "demo@other.test"
BOB, BOB_PW = "bob@example.test", "bob-secret"
MASTER, MASTER_PW = "ringgate-master", "master-secret"
SWAKS = shutil.which("swaks")


def write_users(path):
    lines = [
        (USER, rs.scram_hash(PASSWORD),
         "alias=%s,%s" % (ALIAS, OTHER_DOMAIN_ALIAS)),
        (BOB, rs.scram_hash(BOB_PW), ""),
        (MASTER, rs.scram_hash(MASTER_PW), ""),
    ]
    with open(path, "w") as f:
        for user, pw, extra in lines:
            f.write("%s:%s::::::%s\n" % (user, pw, extra))


def message(frm, to, subject="hello", body="Hello there.\r\n",
            extra=""):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\n%s\r\n%s" %
            (frm, to, subject, extra, body)).encode()


class SubmitCase(unittest.TestCase):
    hide_ip = False

    def setUp(self):
        self.dir = h.temp_dir(self)
        write_users(os.path.join(self.dir, "passwd"))
        cfg = rs.tls_store_config(self)
        cfg["imap"] = [{"name": "imap",
                        "listen": "127.0.0.1:%d" % h.free_port(),
                        "trusted": True, "starttls": False}]
        cfg["submission"] = [
            {"name": "sub", "listen": "127.0.0.1:%d" % h.free_port(),
             "starttls": True},
            {"name": "gate", "listen": "127.0.0.1:%d" % h.free_port(),
             "trusted": True, "starttls": False},
        ]
        cfg["auth"]["master_users"] = [MASTER]
        cfg["auth"]["master_nets"] = ["127.0.0.0/8"]
        cfg["limits"].update({"message_max": "64k", "recipients_max": 3})
        cfg["submit"] = {"hops_max": 4, "hide_client_ip": self.hide_ip,
                         "hostname": "store.example.test",
                         "local_domains": ["example.test"]}
        self.configure(cfg)
        self.store = rs.Ringstore(self.dir, cfg).start(self)

    def configure(self, cfg):
        """Subclasses change the config here."""

    # -- helpers
    def port(self, name):
        for r in self.store.cfg["submission"] + self.store.cfg["imap"]:
            if r["name"] == name:
                return int(r["listen"].rsplit(":", 1)[1])
        raise KeyError(name)

    def ctx(self):
        return h.client_context(cafiles=[self.cert])

    def smtp(self, listener="sub", tls=True, login=True, user=USER,
             password=PASSWORD):
        s = smtplib.SMTP("127.0.0.1", self.port(listener), timeout=20)
        self.addCleanup(self.quit, s)
        s.ehlo("client.example")
        if tls:
            s.starttls(context=self.ctx())
            s.ehlo("client.example")
        if login:
            s.login(user, password)
        return s

    @staticmethod
    def quit(s):
        try:
            s.quit()
        except Exception:
            pass

    def raw(self, listener="gate"):
        return rs.raw_connect(self, self.port(listener), greeting=b"220 ")

    def reply(self, f):
        """One whole reply: its lines."""
        lines = []
        while True:
            line = f.readline()
            self.assertTrue(line, "closed after %r" % lines)
            lines.append(line)
            if line[3:4] != b"-":
                return lines

    def send(self, s, f, line):
        s.sendall(line + b"\r\n")
        return self.reply(f)

    def raw_login(self, s, f):
        self.send(s, f, b"EHLO raw.example")
        ir = base64.b64encode(("\0%s\0%s" % (USER, PASSWORD)).encode())
        r = self.send(s, f, b"AUTH PLAIN " + ir)
        self.assertTrue(r[0].startswith(b"235 2.7.0"), r)

    def inbox(self, user=USER, password=PASSWORD):
        """Every message in user's INBOX, as bytes."""
        m = imaplib.IMAP4("127.0.0.1", self.port("imap"), timeout=20)
        self.addCleanup(rs.logout_quietly, m)
        m.login(user, password)
        typ, data = m.select("INBOX")
        self.assertEqual(typ, "OK")
        n = int(data[0])
        out = []
        for i in range(1, n + 1):
            typ, d = m.fetch(str(i), "(BODY.PEEK[])")
            out.append(d[0][1])
        return out

    def metric(self, name, **labels):
        return self.store.metric(name, **labels) or 0


class TestSession(SubmitCase):

    def test_ehlo_keywords_before_and_after_starttls(self):
        s = smtplib.SMTP("127.0.0.1", self.port("sub"), timeout=20)
        self.addCleanup(self.quit, s)
        code, _ = s.ehlo("client.example")
        self.assertEqual(code, 250)
        for k in ("pipelining", "size", "8bitmime", "enhancedstatuscodes",
                  "starttls"):
            self.assertTrue(s.has_extn(k), k)
        self.assertEqual(s.esmtp_features["size"], str(64 * 1024))
        self.assertFalse(s.has_extn("auth"))
        self.assertFalse(s.has_extn("xclient"))
        s.starttls(context=self.ctx())
        s.ehlo("client.example")
        self.assertFalse(s.has_extn("starttls"))
        mechs = s.esmtp_features["auth"].split()
        self.assertIn("PLAIN", mechs)
        self.assertIn("LOGIN", mechs)
        self.assertFalse(s.has_extn("xclient"))

    def test_auth_before_tls_538(self):
        s = smtplib.SMTP("127.0.0.1", self.port("sub"), timeout=20)
        self.addCleanup(self.quit, s)
        s.ehlo("client.example")
        ir = base64.b64encode(("\0%s\0%s" % (USER, PASSWORD)).encode())
        code, text = s.docmd("AUTH", "PLAIN " + ir.decode())
        self.assertEqual(code, 538)
        self.assertTrue(text.startswith(b"5.7.11"), text)

    def test_auth_plain_and_login_after_starttls(self):
        for mech in ("PLAIN", "LOGIN"):
            s = smtplib.SMTP("127.0.0.1", self.port("sub"), timeout=20)
            self.addCleanup(self.quit, s)
            s.ehlo("client.example")
            s.starttls(context=self.ctx())
            s.ehlo("client.example")
            s.user, s.password = USER, PASSWORD
            code, text = s.auth(mech, getattr(s, "auth_" + mech.lower()))
            self.assertEqual(code, 235, (mech, text))
            self.assertTrue(text.startswith(b"2.7.0"), text)

    def test_wrong_password_535_and_cancel_501(self):
        s = smtplib.SMTP("127.0.0.1", self.port("gate"), timeout=20)
        self.addCleanup(self.quit, s)
        s.ehlo("client.example")
        with self.assertRaises(smtplib.SMTPAuthenticationError) as e:
            s.login(USER, "wrong")
        self.assertEqual(e.exception.smtp_code, 535)
        self.assertTrue(e.exception.smtp_error.startswith(b"5.7.8"))
        code, _ = s.docmd("AUTH", "LOGIN")
        self.assertEqual(code, 334)
        code, text = s.docmd("*")
        self.assertEqual((code, text[:5]), (501, b"5.0.0"))

    def test_mail_before_auth_530_and_harmless_commands(self):
        s, f = self.raw("sub")
        self.send(s, f, b"EHLO raw.example")
        r = self.send(s, f, b"MAIL FROM:<%s>" % USER.encode())
        self.assertTrue(r[0].startswith(b"530 5.7.0"), r)
        self.assertTrue(self.send(s, f, b"RCPT TO:<%s>" % BOB.encode())[0]
                        .startswith(b"530 5.7.0"))
        self.assertTrue(self.send(s, f, b"DATA")[0].startswith(b"530 5.7.0"))
        self.assertTrue(self.send(s, f, b"VRFY bob")[0]
                        .startswith(b"252 2.5.2"))
        self.assertTrue(self.send(s, f, b"EXPN staff")[0]
                        .startswith(b"502 5.5.1"))
        self.assertTrue(self.send(s, f, b"ETRN example.test")[0]
                        .startswith(b"502 5.5.1"))
        self.assertTrue(self.send(s, f, b"ATRN")[0].startswith(b"502"))
        self.assertTrue(self.send(s, f, b"NOOP")[0].startswith(b"250"))
        self.assertTrue(self.send(s, f, b"RSET")[0].startswith(b"250"))
        self.assertTrue(self.send(s, f, b"HELP")[0].startswith(b"214"))
        self.assertTrue(self.send(s, f, b"QUIT")[0].startswith(b"221"))

    def test_vrfy_and_expn_after_login(self):
        s = self.smtp()
        code, text = s.verify(BOB)
        self.assertEqual(code, 252)
        code, text = s.verify("nobody@example.test")
        self.assertEqual(code, 252)
        code, _ = s.expn("staff")
        self.assertEqual(code, 502)
        code, _ = s.docmd("ETRN", "example.test")
        self.assertEqual(code, 502)

    def test_local_delivery_with_received(self):
        s = self.smtp()
        s.sendmail(USER, [BOB], message(USER, BOB, subject="to bob"))
        msgs = self.inbox(BOB, BOB_PW)
        self.assertEqual(len(msgs), 1)
        m = msgs[0]
        self.assertIn(b"Subject: to bob", m)
        first = m.split(b"\r\n")[0]
        self.assertTrue(first.startswith(b"Return-Path:") or
                        first.startswith(b"Received:") or
                        first.startswith(b"Delivered-To:"), first)
        rcvd = m[m.index(b"Received: from client.example"):]
        rcvd = rcvd[:rcvd.index(b"\r\n\r\n") if b"\r\n\r\n" in rcvd else 400]
        self.assertIn(b"([127.0.0.1])", rcvd)
        self.assertIn(b"by store.example.test with ESMTPSA id", rcvd)
        self.assertGreaterEqual(
            self.metric("ringstore_submit_messages_total"), 1)

    def test_spoofed_envelope_sender_553(self):
        s = self.smtp()
        with self.assertRaises(smtplib.SMTPSenderRefused) as e:
            s.sendmail(BOB, [BOB], message(BOB, BOB))
        self.assertEqual(e.exception.smtp_code, 553)
        self.assertTrue(e.exception.smtp_error.startswith(b"5.7.1"))
        with self.assertRaises(smtplib.SMTPSenderRefused):
            s.sendmail("", [BOB], message(USER, BOB))
        self.assertEqual(self.metric("ringstore_submit_refused_total",
                                     reason="sender"), 2)

    def test_spoofed_header_from_553(self):
        s = self.smtp()
        with self.assertRaises(smtplib.SMTPDataError) as e:
            s.sendmail(USER, [BOB], message("Bob <%s>" % BOB, BOB))
        self.assertEqual(e.exception.smtp_code, 553)
        self.assertTrue(e.exception.smtp_error.startswith(b"5.7.1"))
        # a second From: address that is not the user's
        with self.assertRaises(smtplib.SMTPDataError):
            s.sendmail(USER, [BOB],
                       message("%s, %s" % (USER, BOB), BOB))
        self.assertEqual(self.inbox(BOB, BOB_PW), [])
        self.assertEqual(self.metric("ringstore_submit_refused_total",
                                     reason="from"), 2)

    def test_alias_accepted(self):
        s = self.smtp()
        s.sendmail(ALIAS, [BOB], message("Sales <%s>" % ALIAS.upper(), BOB,
                                         subject="from alias"))
        s.sendmail(OTHER_DOMAIN_ALIAS, [USER],
                   message(OTHER_DOMAIN_ALIAS, USER, subject="to self"))
        self.assertEqual(len(self.inbox(BOB, BOB_PW)), 1)
        self.assertEqual(len(self.inbox()), 1)

    def test_remote_domain_without_smarthost_550(self):
        s = self.smtp()
        s.mail(USER)
        code, text = s.rcpt("someone@remote.example")
        self.assertEqual((code, text[:5]), (550, b"5.7.1"))
        code, text = s.rcpt("nobody@example.test")
        self.assertEqual((code, text[:5]), (550, b"5.1.1"))
        self.assertEqual(self.metric("ringstore_submit_refused_total",
                                     reason="relay"), 1)

    def test_too_many_recipients(self):
        s = self.smtp()
        s.mail(USER)
        for _ in range(3):
            self.assertEqual(s.rcpt(BOB)[0], 250)
        code, text = s.rcpt(BOB)
        self.assertEqual(code, 452)
        self.assertTrue(text.startswith(b"4.5.3"), text)

    def test_size_over_limit(self):
        s = self.smtp()
        code, text = s.mail(USER, ["SIZE=%d" % (1 << 20)])
        self.assertEqual((code, text[:5]), (552, b"5.3.4"))
        s.rset()
        # smtplib announces the size itself: refused at MAIL
        big = message(USER, BOB, body=("y" * 998 + "\r\n") * 80)
        with self.assertRaises(smtplib.SMTPSenderRefused) as e:
            s.sendmail(USER, [BOB], big)
        self.assertEqual(e.exception.smtp_code, 552)
        # a client that does not: refused after the data
        r, f = self.raw("gate")
        self.raw_login(r, f)
        self.send(r, f, b"MAIL FROM:<%s>" % USER.encode())
        self.send(r, f, b"RCPT TO:<%s>" % BOB.encode())
        self.assertTrue(self.send(r, f, b"DATA")[0].startswith(b"354"))
        r.sendall(big + b"\r\n.\r\n")
        self.assertTrue(self.reply(f)[0].startswith(b"552"))
        self.assertEqual(self.inbox(BOB, BOB_PW), [])

    def test_hop_count_loop(self):
        s = self.smtp()
        hops = "".join("Received: from hop%d by x; Mon, 1 Jan 2024 "
                       "00:00:00 +0000\r\n" % i for i in range(5))
        msg = (hops.encode() + message(USER, BOB))
        with self.assertRaises(smtplib.SMTPDataError) as e:
            s.sendmail(USER, [BOB], msg)
        self.assertEqual(e.exception.smtp_code, 554)
        self.assertTrue(e.exception.smtp_error.startswith(b"5.4.6"))
        # four is still fine
        hops = hops.split("\r\n", 1)[1]
        s.sendmail(USER, [BOB], hops.encode() + message(USER, BOB))
        self.assertEqual(len(self.inbox(BOB, BOB_PW)), 1)

    def test_master_identity(self):
        s = smtplib.SMTP("127.0.0.1", self.port("gate"), timeout=20)
        self.addCleanup(self.quit, s)
        s.ehlo("gate.example")
        ir = base64.b64encode(("%s\0%s\0%s" % (USER, MASTER, MASTER_PW))
                              .encode())
        code, text = s.docmd("AUTH", "PLAIN " + ir.decode())
        self.assertEqual(code, 235, text)
        # acts as the user: the user's addresses, not the master's
        s.sendmail(USER, [BOB], message(USER, BOB, subject="via master"))
        self.assertEqual(len(self.inbox(BOB, BOB_PW)), 1)
        # a master for itself has no mailbox: its sender is nobody's
        s2 = smtplib.SMTP("127.0.0.1", self.port("gate"), timeout=20)
        self.addCleanup(self.quit, s2)
        s2.ehlo("gate.example")
        ir = base64.b64encode(("%s\0%s\0%s" % (USER, BOB, BOB_PW)).encode())
        code, _ = s2.docmd("AUTH", "PLAIN " + ir.decode())
        self.assertEqual(code, 535)

    def test_xclient_trusted(self):
        s, f = self.raw("gate")
        r = self.send(s, f, b"EHLO gate.example")
        self.assertIn(b"XCLIENT NAME ADDR PORT PROTO HELO LOGIN\r\n",
                      [ln[4:] for ln in r])
        r = self.send(s, f, b"XCLIENT ADDR=192.0.2.7 NAME=client.example "
                      b"HELO=laptop.example LOGIN=" + USER.encode())
        self.assertTrue(r[0].startswith(b"220 "), r)
        self.send(s, f, b"EHLO gate.example")
        self.assertTrue(self.send(s, f, b"MAIL FROM:<%s>" % USER.encode())
                        [0].startswith(b"250"))
        self.assertTrue(self.send(s, f, b"RCPT TO:<%s>" % BOB.encode())
                        [0].startswith(b"250"))
        self.assertTrue(self.send(s, f, b"DATA")[0].startswith(b"354"))
        s.sendall(message(USER, BOB, subject="xclient") + b"\r\n.\r\n")
        self.assertTrue(self.reply(f)[0].startswith(b"250"))
        m = self.inbox(BOB, BOB_PW)[0]
        self.assertIn(b"Received: from laptop.example ([192.0.2.7])", m)
        # without LOGIN the session starts over, still logged out
        s2, f2 = self.raw("gate")
        self.send(s2, f2, b"EHLO gate.example")
        r = self.send(s2, f2, b"XCLIENT ADDR=198.51.100.1")
        self.assertTrue(r[0].startswith(b"220 "), r)
        self.send(s2, f2, b"EHLO gate.example")
        self.assertTrue(self.send(s2, f2, b"MAIL FROM:<%s>" % USER.encode())
                        [0].startswith(b"530"))

    def test_xclient_unknown_user_and_bad_attribute(self):
        s, f = self.raw("gate")
        self.send(s, f, b"EHLO gate.example")
        r = self.send(s, f, b"XCLIENT LOGIN=nobody@example.test")
        self.assertTrue(r[0].startswith(b"535 5.7.8"), r)
        r = self.send(s, f, b"XCLIENT ADDR=999.1.1.1")
        self.assertTrue(r[0].startswith(b"501 5.5.4"), r)
        r = self.send(s, f, b"XCLIENT FOO=bar")
        self.assertTrue(r[0].startswith(b"501"), r)
        self.assertTrue(self.send(s, f, b"MAIL FROM:<%s>" % USER.encode())
                        [0].startswith(b"530"))

    def test_xclient_untrusted_550(self):
        s = self.smtp(login=False)
        self.assertFalse(s.has_extn("xclient"))
        code, text = s.docmd("XCLIENT", "LOGIN=" + USER)
        self.assertEqual((code, text[:5]), (550, b"5.7.0"))
        code, _ = s.docmd("MAIL", "FROM:<%s>" % USER)
        self.assertEqual(code, 530)

    def test_swaks_submission(self):
        if SWAKS is None and not h.IN_CI:
            self.skipTest("swaks not installed")
        p = subprocess.run(
            [SWAKS, "--server", "127.0.0.1:%d" % self.port("sub"), "--tls",
             "--tls-ca-path", self.cert, "--auth", "PLAIN",
             "--auth-user", USER, "--auth-password", PASSWORD,
             "--from", USER, "--to", BOB, "--h-From", USER,
             "--header", "Subject: by swaks", "--timeout", "20"],
            capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0,
                         (p.stdout + p.stderr).decode()[-2000:])
        self.assertIn(b"by swaks", self.inbox(BOB, BOB_PW)[0])
        p = subprocess.run(
            [SWAKS, "--server", "127.0.0.1:%d" % self.port("sub"), "--tls",
             "--tls-ca-path", self.cert, "--auth", "LOGIN",
             "--auth-user", USER, "--auth-password", PASSWORD,
             "--from", BOB, "--to", BOB, "--timeout", "20"],
            capture_output=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"553 5.7.1", p.stdout)


class TestHiddenIp(SubmitCase):
    hide_ip = True

    def test_received_without_ip(self):
        s = self.smtp()
        s.sendmail(USER, [BOB], message(USER, BOB))
        m = self.inbox(BOB, BOB_PW)[0]
        i = m.index(b"Received: from client.example")
        rcvd = m[i:i + 300]
        self.assertNotIn(b"127.0.0.1", rcvd)
        self.assertIn(b"by store.example.test with ESMTPSA", rcvd)


class TestRelay(SubmitCase):
    """A smarthost (smtp_sink.py with STARTTLS): remote recipients are
    spooled durably and relayed."""

    def configure(self, cfg):
        self.sink = SmtpSink(os.path.join(self.dir, "sink"), cert=self.cert,
                             key=os.path.join(self.dir, "server.key"))
        self.sink.start()
        self.addCleanup(self.sink.stop)
        cfg["relay"] = {"smarthost": "localhost:%d" % self.sink.port,
                        "ca_file": self.cert, "helo": "store.test",
                        "retry_min": "1s", "retry_max": "2s",
                        "scan_interval": "200ms", "timeout": "10s"}

    def wait_sink(self, n):
        h.wait_for(lambda: len(self.sink.messages()) >= n, 30,
                   what="%d message(s) at the smarthost" % n)
        return self.sink.messages()

    def test_remote_spooled_and_local_delivered(self):
        s = self.smtp()
        remote = "carol@remote.example"
        s.sendmail(USER, [remote, BOB],
                   message(USER, "%s, %s" % (remote, BOB),
                           subject="mixed"))
        env, data = self.wait_sink(1)[0]
        self.assertEqual(env["mail_from"], USER)
        self.assertEqual(env["rcpts"], [remote])
        self.assertTrue(data.startswith(b"Received: from client.example "
                                        b"([127.0.0.1])"), data[:200])
        self.assertIn(b"Subject: mixed", data)
        local = self.inbox(BOB, BOB_PW)
        self.assertEqual(len(local), 1)
        self.assertIn(b"Subject: mixed", local[0])
        self.assertEqual(self.metric("ringstore_submit_recipients_total",
                                     where="remote"), 1)

    def test_spooled_message_survives_kill(self):
        self.sink.down()
        s = self.smtp()
        s.sendmail(USER, ["dave@remote.example"],
                   message(USER, "dave@remote.example", subject="durable"))
        self.quit(s)
        self.store.proc.kill()
        self.store.killed = True
        self.store.proc.wait(10)
        self.store.stop()
        self.sink.up()
        self.store.killed = False
        self.store.start(self)
        env, data = self.wait_sink(1)[0]
        self.assertEqual(env["rcpts"], ["dave@remote.example"])
        self.assertIn(b"Subject: durable", data)


EXE_MESSAGE = (
    "From: %s\r\nTo: %s\r\nSubject: invoice\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
    "--b1\r\nContent-Type: text/plain\r\n\r\nPlease see attached.\r\n"
    "--b1\r\nContent-Type: application/octet-stream\r\n"
    "Content-Disposition: attachment; filename=\"invoice.pdf.exe\"\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n"
    "--b1--\r\n" % (USER, BOB)).encode()


class TestPolicyReject(SubmitCase):
    def configure(self, cfg):
        cfg["policy"] = {"attachments": "reject"}

    def test_exe_attachment_rejected(self):
        s = self.smtp()
        with self.assertRaises(smtplib.SMTPDataError) as e:
            s.sendmail(USER, [BOB], EXE_MESSAGE)
        self.assertEqual(e.exception.smtp_code, 554)
        self.assertIn(b"invoice.pdf.exe", e.exception.smtp_error)
        self.assertTrue(e.exception.smtp_error.startswith(b"5.7.1"))
        # the session goes on; a clean message passes
        s.sendmail(USER, [BOB], message(USER, BOB, subject="clean"))
        msgs = self.inbox(BOB, BOB_PW)
        self.assertEqual(len(msgs), 1)
        self.assertIn(b"Subject: clean", msgs[0])
        self.assertEqual(self.metric("ringstore_policy_verdicts_total",
                                     service="submission", verdict="reject"), 1)
        self.assertEqual(self.metric("ringstore_submit_refused_total",
                                     reason="policy"), 1)


class TestPolicyStrip(SubmitCase):
    def configure(self, cfg):
        cfg["policy"] = {"attachments": "strip"}

    def test_exe_attachment_stripped(self):
        s = self.smtp()
        s.sendmail(USER, [BOB], EXE_MESSAGE)
        msgs = self.inbox(BOB, BOB_PW)
        self.assertEqual(len(msgs), 1)
        m = msgs[0]
        self.assertIn(b"Received: from client.example", m)
        self.assertIn(b"Please see attached.", m)
        self.assertNotIn(b"TVqQAAMAAAAEAAAA", m)
        self.assertIn(b"invoice.pdf.exe", m)  # the note naming it
        self.assertEqual(self.metric("ringstore_policy_verdicts_total",
                                     service="submission",
                                     verdict="stripped"), 1)
        # no copy left behind in the mail root
        left = [n for n in os.listdir(os.path.join(self.dir, "mail"))
                if n.startswith("policy.")]
        self.assertEqual(left, [])


class TestPolicyClamd(SubmitCase):
    """A real clamd (clamd_harness: its own config, a one-signature
    database for the EICAR string) behind the content policy; swaks
    submits."""

    def configure(self, cfg):
        if (not clamd_harness.available() or SWAKS is None) and not h.IN_CI:
            self.skipTest("clamd or swaks not installed")
        c = clamd_harness.Clamd(self.dir)
        c.start()
        self.addCleanup(c.stop)
        cfg["policy"] = {"attachments": "reject", "clamd": c.socket,
                         "clamd_fail": "closed"}

    def swaks(self, body):
        return subprocess.run(
            [SWAKS, "--server", "127.0.0.1:%d" % self.port("sub"), "--tls",
             "--tls-ca-path", self.cert, "--auth", "PLAIN",
             "--auth-user", USER, "--auth-password", PASSWORD,
             "--from", USER, "--to", BOB, "--h-From", USER,
             "--body", body, "--timeout", "20"],
            capture_output=True, timeout=60)

    def test_eicar_refused_clean_delivered(self):
        p = self.swaks("attached: " + clamd_harness.EICAR.decode())
        self.assertNotEqual(p.returncode, 0)
        self.assertRegex(p.stdout.decode(), r"<~?\* +554 5\.7\.1 virus found")
        self.assertEqual(self.inbox(BOB, BOB_PW), [])
        p = self.swaks("nothing to see here")
        self.assertEqual(p.returncode, 0, p.stdout.decode()[-1500:])
        self.assertEqual(len(self.inbox(BOB, BOB_PW)), 1)
        self.assertEqual(self.metric("ringstore_policy_verdicts_total",
                                     service="submission", verdict="virus"),
                         1)


class TestBadInput(SubmitCase):

    def test_overlong_line(self):
        s, f = self.raw("gate")
        r = self.send(s, f, b"EHLO " + b"a" * 9000)
        self.assertTrue(r[0].startswith(b"500 5.5.6"), r)
        self.assertTrue(self.send(s, f, b"NOOP")[0].startswith(b"250"))
        # after login too
        self.raw_login(s, f)
        r = self.send(s, f, b"NOOP " + b"b" * 9000)
        self.assertTrue(r[0].startswith(b"500"), r)
        self.assertTrue(self.send(s, f, b"NOOP")[0].startswith(b"250"))

    def test_nul_and_bare_lf(self):
        s, f = self.raw("gate")
        r = self.send(s, f, b"EHLO a\0b")
        self.assertTrue(r[0].startswith(b"500 5.5.2"), r)
        s.sendall(b"NOOP\n")
        r = self.reply(f)
        self.assertTrue(r[0].startswith(b"500 5.5.2"), r)
        self.assertTrue(self.send(s, f, b"NOOP")[0].startswith(b"250"))

    def test_bad_commands_then_421(self):
        s, f = self.raw("gate")
        for _ in range(4):
            self.assertTrue(self.send(s, f, b"FOO")[0].startswith(b"500"))
        s.sendall(b"BAR\r\n")
        lines = f.read()
        self.assertIn(b"421 4.7.0", lines)

    def test_starttls_drops_pipelined_plaintext(self):
        s, f = self.raw("sub")
        self.send(s, f, b"EHLO raw.example")
        ir = base64.b64encode(("\0%s\0%s" % (USER, PASSWORD)).encode())
        s.sendall(b"STARTTLS\r\nAUTH PLAIN " + ir + b"\r\n")
        self.assertTrue(f.readline().startswith(b"220 2.0.0"))
        t = self.ctx().wrap_socket(s, server_hostname="localhost")
        tf = t.makefile("rb")
        # the AUTH sent in the clear was not run: the next reply is the
        # NOOP's, and AUTH wants a new EHLO first
        t.sendall(b"NOOP\r\n")
        self.assertTrue(self.reply(tf)[0].startswith(b"250 2.0.0"))
        t.sendall(b"AUTH PLAIN " + ir + b"\r\n")
        self.assertTrue(self.reply(tf)[0].startswith(b"503 5.5.1"))
        t.sendall(b"EHLO raw.example\r\n")
        r = self.reply(tf)
        self.assertNotIn(b"250-STARTTLS\r\n", r)
        t.sendall(b"AUTH PLAIN " + ir + b"\r\n")
        self.assertTrue(self.reply(tf)[0].startswith(b"235 2.7.0"))
        t.close()

    def test_many_pipelined_recipients(self):
        s, f = self.raw("gate")
        self.raw_login(s, f)
        n = 10000
        s.sendall(b"MAIL FROM:<" + USER.encode() + b">\r\n" +
                  (b"RCPT TO:<%s>\r\n" % BOB.encode()) * n + b"NOOP\r\n")
        codes = []
        while True:
            line = f.readline()
            if not line:
                break
            codes.append(line[:3])
            if len(codes) == n + 2:
                break
        self.assertEqual(codes[0], b"250")
        self.assertEqual(codes[1:4], [b"250"] * 3)
        self.assertEqual(set(codes[4:n + 1]), {b"452"})
        self.assertEqual(codes[-1], b"250")

    def test_pipelined_split_at_every_byte(self):
        ir = base64.b64encode(("\0%s\0%s" % (USER, PASSWORD)).encode())
        script = (b"EHLO split.example\r\nAUTH PLAIN " + ir + b"\r\n"
                  b"MAIL FROM:<" + USER.encode() + b">\r\n"
                  b"RCPT TO:<" + BOB.encode() + b">\r\nDATA\r\n" +
                  message(USER, BOB, subject="split") +
                  b"\r\n.\r\nQUIT\r\n")
        s, f = self.raw("gate")
        for i in range(len(script)):
            s.sendall(script[i:i + 1])
        out = f.read()
        codes = [ln[:3] for ln in out.split(b"\r\n") if ln[3:4] == b" "]
        self.assertEqual(codes, [b"250", b"235", b"250", b"250", b"354",
                                 b"250", b"221"], out)
        self.assertEqual(len(self.inbox(BOB, BOB_PW)), 1)


if __name__ == "__main__":
    unittest.main()
