"""test_ringstore_relay.py - ringstore's relay spool and queue runner
against smtp_sink.py as the smarthost.

Until the submission intake exists, messages are queued the way it will
queue them: spool_put() through the rs_spool_put helper (built with the
tests), with ringstore running or not. Covered: delivery over STARTTLS
with the certificate verified against a CA the test makes (and never with
a wrong CA), dot-stuffing byte-exact, kill -9 after spool_put returned
then delivery after restart, smarthost down then retried and delivered,
a 5xx recipient -> an RFC 3464 DSN in the sender's INBOX (read with
imaplib), give-up -> DSN, a null sender's failure -> no DSN, a non-local
sender's DSN -> relayed with the null sender.
"""

import email
import imaplib
import os
import threading
import time
import unittest

import harness as h
import rs_harness as rs
from smtp_sink import SmtpSink

SPOOL_PUT = os.path.join(h.BUILD_DIR, "tests", "rs_spool_put")
USER = rs.DEMO_USER
TIMEOUT = 30


def make_ca_and_leaf(directory, names=("localhost", "127.0.0.1")):
    """A CA (self-signed, CA:TRUE) and a server certificate it signs for
    names. Returns (ca_cert, leaf_cert, leaf_key)."""
    ca, ca_key = h.make_cert(directory, stem="relay-ca",
                             names=("Relay Test CA",))
    key = os.path.join(directory, "leaf.key")
    csr = os.path.join(directory, "leaf.csr")
    leaf = os.path.join(directory, "leaf.crt")
    ext = os.path.join(directory, "leaf.ext")
    san = ",".join(("IP:" if n[0].isdigit() else "DNS:") + n for n in names)
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nsubjectAltName=%s\n" % san)
    h.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
           "ec_paramgen_curve:prime256v1", "-nodes", "-subj",
           "/CN=" + names[0], "-keyout", key, "-out", csr])
    h.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey",
           ca_key, "-CAcreateserial", "-days", "30", "-extfile", ext,
           "-out", leaf])
    return ca, leaf, key


class RelayTest(unittest.TestCase):
    def setUp(self):
        self.dir = h.temp_dir(self)
        rs.write_passwd(os.path.join(self.dir, "passwd"),
                        {USER: rs.DEMO_PASSWORD})
        # the smarthost's certificate is signed by a CA the test makes;
        # ringstore trusts only that CA (relay.ca_file)
        self.ca, self.cert, self.key = make_ca_and_leaf(self.dir)
        self.sink = SmtpSink(os.path.join(self.dir, "sink"), cert=self.cert,
                             key=self.key).start()
        self.addCleanup(self.sink.stop)
        self.mail = os.path.join(self.dir, "mail")
        self.spool = os.path.join(self.mail, ".spool")
        self.inbox_new = os.path.join(self.mail, "example.test", "demo",
                                      "Maildir", "new")
        self.store = None

    # -- helpers
    def start_store(self, fresh=False, **relay):
        conf = {"smarthost": "localhost:%d" % self.sink.port,
                "ca_file": self.ca, "helo": "store.test",
                "retry_min": "1s", "retry_max": "2s",
                "scan_interval": "200ms", "timeout": "10s"}
        conf.update(relay)
        if self.store is None or fresh:
            cfg = rs.store_config(self.dir, h.free_port(), h.free_port(),
                                  relay=conf)
            self.store = rs.Ringstore(self.dir, cfg)
        self.store.start(self)
        return self.store

    def put(self, rcpts, body=None, sender=USER, user=USER):
        body = body or (b"From: <%s>\r\nTo: <%s>\r\nSubject: relay test\r\n"
                        b"\r\nhello\r\n" % (sender.encode(),
                                             rcpts[0].encode()))
        path = os.path.join(self.dir, "msg-%d.eml" % time.monotonic_ns())
        with open(path, "wb") as f:
            f.write(body)
        out = h.run([SPOOL_PUT, self.spool, user or "-", sender, path,
                     *rcpts])
        qid = out.stdout.strip()
        self.assertRegex(qid, r"^[0-9a-f]{20}$")
        return qid, body

    def entries(self):
        d = os.path.join(self.spool, "env")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def envelope(self, qid):
        with open(os.path.join(self.spool, "env", qid)) as f:
            return f.read()

    def wait_messages(self, n):
        h.wait_for(lambda: len(self.sink.messages()) >= n, TIMEOUT,
                   what="%d message(s) at the sink" % n)
        return self.sink.messages()

    def wait_dsn(self):
        h.wait_for(lambda: os.path.isdir(self.inbox_new) and
                   os.listdir(self.inbox_new), TIMEOUT,
                   what="a DSN in the INBOX")
        m = imaplib.IMAP4("127.0.0.1", self.store.port(), timeout=20)
        self.addCleanup(rs.logout_quietly, m)
        m.login(USER, rs.DEMO_PASSWORD)
        typ, data = m.select("INBOX")
        self.assertEqual(typ, "OK")
        self.assertEqual(int(data[0]), 1)
        typ, data = m.fetch("1", "(BODY.PEEK[])")
        self.assertEqual(typ, "OK")
        return email.message_from_bytes(data[0][1])

    def report(self, dsn):
        """The DSN's three parts: text, per-message fields + per-recipient
        field groups, original header."""
        self.assertEqual(dsn.get_content_type(), "multipart/report")
        self.assertEqual(dsn.get_param("report-type"), "delivery-status")
        self.assertIn("MAILER-DAEMON@store.test", dsn["From"])
        self.assertEqual(dsn["Auto-Submitted"], "auto-replied")
        parts = dsn.get_payload()
        self.assertEqual([p.get_content_type() for p in parts],
                         ["text/plain", "message/delivery-status",
                          "text/rfc822-headers"])
        status = parts[1].get_payload()
        # email parses message/delivery-status into header blocks
        return parts[0].get_payload(), status, parts[2].get_payload()

    # -- tests
    def test_delivered_over_verified_starttls(self):
        self.start_store()
        body = (b"From: <demo@example.test>\r\nSubject: dots\r\n\r\n"
                b".leading dot\r\n..two\r\n.\r\nend\r\n")
        qid, body = self.put(["x@remote.test", "y@remote.test"], body)
        (env, data), = self.wait_messages(1)
        self.assertEqual(env["mail_from"], USER)
        self.assertEqual(env["rcpts"], ["x@remote.test", "y@remote.test"])
        self.assertTrue(env["tls"])
        self.assertEqual(env["helo"], "store.test")
        self.assertEqual(env["mail_params"], ["BODY=8BITMIME"])
        self.assertTrue(data.startswith(b"Received: "))
        self.assertTrue(data.endswith(body), data)
        h.wait_for(lambda: not self.entries(), TIMEOUT, what="spool empty")
        self.store.wait_metric("ringstore_relay_delivered_total", 2)
        self.store.wait_metric("ringstore_relay_attempts_total", 1,
                               result="sent")
        self.assertIn("queue_id=%s" % qid, self.store.stderr())
        self.assertNotIn("leading dot", self.store.stderr())

    def test_smarthost_by_ip_address(self):
        # the certificate's IP SAN is what is verified
        self.start_store(smarthost="127.0.0.1:%d" % self.sink.port)
        self.put(["x@remote.test"])
        (env, _), = self.wait_messages(1)
        self.assertTrue(env["tls"])

    def test_wrong_name_is_never_trusted(self):
        cert, key = h.make_cert(self.dir, stem="wrongname",
                                names=("elsewhere.test",))
        self.sink.stop()
        self.sink = SmtpSink(os.path.join(self.dir, "sink2"), cert=cert,
                             key=key).start()
        self.addCleanup(self.sink.stop)
        self.start_store(ca_file=cert)
        qid, _ = self.put(["x@remote.test"])
        self.store.wait_metric("ringstore_relay_attempts_total",
                               lambda v: v and v >= 1, timeout=TIMEOUT,
                               result="deferred")
        self.assertEqual(self.sink.messages(), [])
        self.assertIn("TLS", self.envelope(qid))

    def test_verify_off_takes_any_certificate(self):
        other, _ = h.make_cert(self.dir, stem="other")
        self.start_store(ca_file=other, verify=False)
        self.put(["x@remote.test"])
        (env, _), = self.wait_messages(1)
        self.assertTrue(env["tls"])

    def test_wrong_ca_is_never_trusted(self):
        other, _ = h.make_cert(self.dir, stem="other")
        self.start_store(ca_file=other)
        qid, _ = self.put(["x@remote.test"])
        self.store.wait_metric("ringstore_relay_attempts_total",
                               lambda v: v and v >= 1, timeout=TIMEOUT,
                               result="deferred")
        self.assertEqual(self.sink.messages(), [])
        env = self.envelope(qid)
        self.assertIn("rcpt pending", env)
        self.assertIn("TLS", env)

    def test_kill9_after_put_then_delivered_after_restart(self):
        self.sink.down()
        store = self.start_store()
        qid, body = self.put(["x@remote.test"])
        # the entry is durable once rs_spool_put printed its id
        store.proc.kill()
        store.killed = True
        store.proc.wait(10)
        store.stop()
        self.assertEqual(self.entries(), [qid])
        self.sink.up()
        # new ports: the killed process's io_uring may hold its sockets
        # for a moment after it died
        self.start_store(fresh=True)
        (env, data), = self.wait_messages(1)
        self.assertTrue(data.endswith(body))
        # once the entry is gone nothing can send it again
        h.wait_for(lambda: not self.entries(), TIMEOUT, what="spool empty")
        self.assertEqual(len(self.sink.messages()), 1)

    def test_kill9_during_data_then_delivered_once(self):
        hold = threading.Event()
        self.sink.hold = hold
        store = self.start_store()
        # 2.3 MiB: more than the socket buffers hold
        body = b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * (1 << 15)
        qid, body = self.put(["x@remote.test"], body)
        h.wait_for(lambda: self.sink.holding, TIMEOUT, what="DATA started")
        store.proc.kill()
        store.killed = True
        store.proc.wait(10)
        store.stop()
        self.sink.hold = None
        hold.set()
        self.assertEqual(self.entries(), [qid])
        self.start_store(fresh=True)
        (env, data), = self.wait_messages(1)
        self.assertTrue(data.endswith(body))
        h.wait_for(lambda: not self.entries(), TIMEOUT, what="spool empty")

    def test_smarthost_down_retried_then_delivered(self):
        self.sink.down()
        self.start_store()
        qid, _ = self.put(["x@remote.test"])
        self.store.wait_metric("ringstore_relay_attempts_total",
                               lambda v: v and v >= 2, timeout=TIMEOUT,
                               result="deferred")
        self.assertIn("cannot%20connect", self.envelope(qid))
        self.assertEqual(self.entries(), [qid])
        self.store.wait_metric("ringstore_relay_queued", 1)
        self.sink.up()
        self.wait_messages(1)
        h.wait_for(lambda: not self.entries(), TIMEOUT, what="spool empty")
        self.store.wait_metric("ringstore_relay_queued", 0)
        self.store.wait_metric("ringstore_relay_attempts_total", 1,
                               result="sent")

    def test_5xx_recipient_gets_a_dsn_in_the_senders_inbox(self):
        self.sink.answers["bad@remote.test"] = "550 5.1.1 no such user here"
        self.start_store()
        qid, _ = self.put(["good@remote.test", "bad@remote.test"])
        (env, _), = self.wait_messages(1)
        self.assertEqual(env["rcpts"], ["good@remote.test"])
        dsn = self.wait_dsn()
        self.assertEqual(dsn["To"], "<%s>" % USER)
        text, status, headers = self.report(dsn)
        self.assertIn("bad@remote.test", text)
        self.assertNotIn("good@remote.test", text)
        self.assertEqual(status[0]["Reporting-MTA"], "dns; store.test")
        self.assertIn("Arrival-Date", status[0])
        self.assertEqual(len(status), 2)
        r = status[1]
        self.assertEqual(r["Final-Recipient"], "rfc822; bad@remote.test")
        self.assertEqual(r["Action"], "failed")
        self.assertEqual(r["Status"], "5.1.1")
        self.assertEqual(r["Diagnostic-Code"],
                         "smtp; 550 5.1.1 no such user here")
        self.assertIn("Subject: relay test", str(headers))
        self.assertNotIn("hello", str(headers))
        h.wait_for(lambda: not self.entries(), TIMEOUT, what="spool empty")
        self.store.wait_metric("ringstore_relay_bounced_total", 1)
        self.store.wait_metric("ringstore_relay_dsn_total", 1, to="inbox")

    def test_give_up_sends_a_dsn(self):
        self.sink.down()
        self.start_store(give_up="2s")
        self.put(["x@remote.test"])
        dsn = self.wait_dsn()
        _, status, _ = self.report(dsn)
        r = status[1]
        self.assertEqual(r["Final-Recipient"], "rfc822; x@remote.test")
        self.assertEqual(r["Action"], "failed")
        self.assertTrue(r["Status"].startswith("4."), r["Status"])
        self.assertIn("cannot connect", r["Diagnostic-Code"])
        h.wait_for(lambda: not self.entries(), TIMEOUT, what="spool empty")
        self.assertEqual(self.sink.messages(), [])

    def test_null_sender_failure_gets_no_dsn(self):
        self.sink.answers["bad@remote.test"] = "550 5.1.1 no"
        self.start_store()
        self.put(["bad@remote.test"], sender="", user=None)
        h.wait_for(lambda: not self.entries(), TIMEOUT, what="spool empty")
        self.store.wait_metric("ringstore_relay_dsn_total", 1, to="none")
        self.assertFalse(os.path.isdir(self.inbox_new) and
                         os.listdir(self.inbox_new))
        self.assertEqual(self.sink.messages(), [])

    def test_non_local_sender_dsn_goes_out_with_null_sender(self):
        self.sink.answers["bad@remote.test"] = "550 5.1.1 no"
        self.start_store()
        self.put(["bad@remote.test"], sender="someone@other.test",
                 user=None)
        (env, data), = self.wait_messages(1)
        self.assertEqual(env["mail_from"], "")
        self.assertEqual(env["rcpts"], ["someone@other.test"])
        self.assertIn(b"multipart/report", data)
        self.assertIn(b"Final-Recipient: rfc822; bad@remote.test", data)
        h.wait_for(lambda: not self.entries(), TIMEOUT, what="spool empty")
        self.store.wait_metric("ringstore_relay_dsn_total", 1, to="spool")

    def test_4xx_recipient_is_retried_alone(self):
        self.sink.answers["later@remote.test"] = "451 4.2.1 mailbox busy"
        self.start_store()
        qid, body = self.put(["now@remote.test", "later@remote.test"])
        (env, _), = self.wait_messages(1)
        self.assertEqual(env["rcpts"], ["now@remote.test"])
        self.store.wait_metric("ringstore_relay_attempts_total",
                               lambda v: v and v >= 1, timeout=TIMEOUT,
                               result="deferred")
        text = self.envelope(qid)
        self.assertIn("rcpt sent 2.0.0 <now@remote.test>", text)
        self.assertIn("rcpt pending 4.2.1 <later@remote.test>", text)
        del self.sink.answers["later@remote.test"]
        msgs = self.wait_messages(2)
        self.assertEqual(msgs[1][0]["rcpts"], ["later@remote.test"])
        self.assertTrue(msgs[1][1].endswith(body))
        h.wait_for(lambda: not self.entries(), TIMEOUT, what="spool empty")
        self.assertEqual(len(self.sink.messages()), 2)

    def test_hung_smarthost_times_out(self):
        self.sink.mute = True
        self.start_store(timeout="1s")
        qid, _ = self.put(["x@remote.test"])
        self.store.wait_metric("ringstore_relay_attempts_total",
                               lambda v: v and v >= 1, timeout=TIMEOUT,
                               result="deferred")
        self.assertIn("timeout", self.envelope(qid))
        # stopped (SIGTERM, checked clean) while the next attempt hangs

    def test_large_message_streamed_byte_exact(self):
        self.start_store()
        lines = []
        for i in range(120000):  # ~8.5 MiB, a dot now and then
            lines.append(b"%s%06d %s\r\n" % (b"." if i % 7 == 0 else b"",
                                              i, b"x" * 60))
        body = b"Subject: big\r\n\r\n" + b"".join(lines)
        self.put(["x@remote.test"], body)
        (env, data), = self.wait_messages(1)
        self.assertTrue(data.endswith(body))
        self.assertEqual(len(data) - len(body),
                         data.index(b"Subject: big"))
        h.wait_for(lambda: not self.entries(), TIMEOUT, what="spool empty")

    def test_auth_plain_to_the_smarthost(self):
        self.sink.auth = ("relayuser", "s3cret pw")
        pw = os.path.join(self.dir, "relay.pw")
        with open(pw, "w") as f:
            f.write("s3cret pw\n")
        self.start_store(user="relayuser", password_file=pw)
        self.put(["x@remote.test"])
        (env, _), = self.wait_messages(1)
        self.assertEqual(env["auth"], "relayuser")
        self.assertTrue(env["tls"])
        self.assertNotIn("s3cret", self.store.stderr())

    def test_wrong_smarthost_password_defers(self):
        self.sink.auth = ("relayuser", "right")
        pw = os.path.join(self.dir, "relay.pw")
        with open(pw, "w") as f:
            f.write("wrong\n")
        self.start_store(user="relayuser", password_file=pw)
        qid, _ = self.put(["x@remote.test"])
        self.store.wait_metric("ringstore_relay_attempts_total",
                               lambda v: v and v >= 1, timeout=TIMEOUT,
                               result="deferred")
        self.assertIn("535", self.envelope(qid))
        self.assertEqual(self.sink.messages(), [])

    def test_starttls_required_but_not_offered(self):
        self.sink.offer_tls = False
        self.start_store()
        qid, _ = self.put(["x@remote.test"])
        self.store.wait_metric("ringstore_relay_attempts_total",
                               lambda v: v and v >= 1, timeout=TIMEOUT,
                               result="deferred")
        self.assertIn("STARTTLS", self.envelope(qid))
        self.assertEqual(self.sink.messages(), [])

    def test_starttls_off(self):
        self.sink.offer_tls = False
        self.start_store(starttls="off")
        self.put(["x@remote.test"])
        (env, _), = self.wait_messages(1)
        self.assertFalse(env["tls"])

    def test_utf8_address_without_smtputf8_bounces(self):
        self.start_store()
        self.put(["j\u00f6rg@remote.test"])
        dsn = self.wait_dsn()
        _, status, _ = self.report(dsn)
        self.assertEqual(status[1]["Status"], "5.6.7")
        self.assertIn("SMTPUTF8", status[1]["Diagnostic-Code"])
        self.assertEqual(self.sink.messages(), [])

    def test_config_check_reads_the_relay_files(self):
        conf = {"smarthost": "localhost:%d" % self.sink.port,
                "ca_file": self.ca, "user": "u",
                "password_file": os.path.join(self.dir, "missing.pw")}
        store = rs.Ringstore(self.dir, rs.store_config(
            self.dir, h.free_port(), h.free_port(), relay=conf))
        store.write_config()
        p = h.run([rs.RINGSTORE, "-t", "-c", store.conf_path], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("relay.password_file", p.stderr)
        with open(conf["password_file"], "w") as f:
            f.write("pw\n")
        p = h.run([rs.RINGSTORE, "-t", "-c", store.conf_path], check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        conf["ca_file"] = os.path.join(self.dir, "missing-ca.pem")
        store.write_config()
        p = h.run([rs.RINGSTORE, "-t", "-c", store.conf_path], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("missing-ca.pem", p.stderr)
        conf["smarthost"] = "no-port"
        store.write_config()
        p = h.run([rs.RINGSTORE, "-t", "-c", store.conf_path], check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("relay.smarthost", p.stderr)


if __name__ == "__main__":
    unittest.main()
