"""test_clamd_harness.py - the clamd fixture other tests use
(clamd_harness.py): clamd starts with the one-signature database, finds
EICAR raw and in a base64 attachment of a mail, passes a clean message,
refuses a stream over its StreamMaxLength, and is gone after stop().
"""

import base64
import os
import socket
import unittest

import clamd_harness as ch
import harness as h


@unittest.skipUnless(ch.available() or h.IN_CI, "clamd (clamav-daemon) not installed")
class ClamdHarness(unittest.TestCase):

    def test_clamd(self):
        d = h.temp_dir(self)
        c = ch.Clamd(d, stream_max="64K")
        self.addCleanup(c.stop)
        c.start()
        self.assertEqual(c.scan(b"Subject: x\r\n\r\n" + ch.EICAR),
                         "stream: %s FOUND" % ch.SIGNATURE)
        mail = (b"From: a@example.org\r\nTo: b@example.org\r\n"
                b"Subject: x\r\nMIME-Version: 1.0\r\n"
                b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
                b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\n"
                b"Content-Type: application/octet-stream\r\n"
                b"Content-Transfer-Encoding: base64\r\n\r\n"
                + base64.encodebytes(ch.EICAR).replace(b"\n", b"\r\n")
                + b"--b--\r\n")
        self.assertNotIn(ch.EICAR, mail)
        self.assertEqual(c.scan(mail), "stream: %s FOUND" % ch.SIGNATURE)
        self.assertEqual(c.scan(b"Subject: x\r\n\r\nhello\r\n"),
                         "stream: OK")
        try:
            answer = c.scan(b"x" * (256 * 1024))
        except OSError:
            answer = "connection dropped"
        self.assertNotEqual(answer, "stream: OK")
        c.stop()
        with socket.socket(socket.AF_UNIX) as s:
            self.assertRaises(OSError, s.connect, c.socket)


if __name__ == "__main__":
    unittest.main()
