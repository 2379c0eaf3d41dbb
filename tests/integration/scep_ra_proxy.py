#!/usr/bin/env python3
"""An approving RA in front of the real scepserver, for test_scep.sh.

scepserver (2.1) issues at once: it can neither hold a request (PENDING)
nor answer CertPoll/GetCertInitial (messageType 20: "not implemented").
This proxy plays the part of a CA with manual approval, in real SCEP
(RFC 8894), with the CA's own key from scepserver's depot:

- GET (GetCACert, GetCACaps) goes to scepserver unchanged.
- APPROVE holding "pass": every PKIOperation goes to scepserver as it
  is, the request saved as req-N.der beside LOG (the test checks it with
  openssl) and logged ("PASS 17 <txid>").
- Else a PKCSReq (19) or RenewalReq (17) is held: the answer is a CertRep
  with pkiStatus PENDING, a CMS SignedData signed with the depot's CA key
  (recipientNonce = the request's senderNonce, its transactionID).
- A CertPoll (20): its pkcsPKIEnvelope is decrypted with the CA key
  (openssl smime) and must hold an IssuerAndSubject naming the CA. While
  APPROVE does not exist: PENDING again. When it holds "approve": the held
  request goes to scepserver, which issues the certificate; its envelope
  (encrypted by scepserver to the requester's certificate) is answered in
  a SUCCESS CertRep for this poll's nonce. "reject": FAILURE badCertId.
Every step is logged to LOG ("HOLD 19 <txid>", "POLL <txid> pending", ...).

usage: scep_ra_proxy.py PORTFILE UPSTREAM DEPOT LOG APPROVE
"""
import hashlib
import http.server
import os
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

portfile, upstream, depot, logpath, approve = sys.argv[1:6]
CA_PEM = os.path.join(depot, "ca.pem")
# scepserver stores its key encrypted with an empty password: a clear copy
# beside LOG (the test's directory), for cryptography and openssl smime.
CA_KEY = os.path.join(os.path.dirname(logpath), "ca.key")
subprocess.run(["openssl", "pkey", "-in", os.path.join(depot, "ca.key"), "-passin", "pass:", "-out", CA_KEY],
               check=True, capture_output=True)
with open(CA_PEM, "rb") as f:
    ca = x509.load_pem_x509_certificate(f.read())
with open(CA_KEY, "rb") as f:
    ca_key = serialization.load_pem_private_key(f.read(), password=None)
held = {}


# ---- DER, just what SCEP needs ----
def tlv(tag, body):
    n = len(body)
    if n < 0x80:
        ln = bytes([n])
    else:
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        ln = bytes([0x80 | len(b)]) + b
    return bytes([tag]) + ln + body


def oid(dotted):
    a = [int(x) for x in dotted.split(".")]
    out = bytes([40 * a[0] + a[1]])
    for v in a[2:]:
        enc = [v & 0x7F]
        v >>= 7
        while v:
            enc.append(0x80 | (v & 0x7F))
            v >>= 7
        out += bytes(reversed(enc))
    return tlv(0x06, out)


def integer(v):
    return tlv(0x02, v.to_bytes(v.bit_length() // 8 + 1, "big", signed=True))


def seq(*parts):
    return tlv(0x30, b"".join(parts))


def parse(buf, off=0):
    """(tag, content start, content end) of the TLV at off."""
    tag = buf[off]
    ln = buf[off + 1]
    p = off + 2
    if ln & 0x80:
        k = ln & 0x7F
        ln = int.from_bytes(buf[p:p + k], "big")
        p += k
    if p + ln > len(buf):
        raise ValueError("truncated DER")
    return tag, p, p + ln


def children(buf, start, end):
    """(tag, content start, content end, TLV start) of each TLV inside."""
    out = []
    while start < end:
        t, s, e = parse(buf, start)
        out.append((t, s, e, start))
        start = e
    return out


OID_DATA, OID_SIGNED = "1.2.840.113549.1.7.1", "1.2.840.113549.1.7.2"
SCEP = "2.16.840.1.113733.1.9."
MSG_TYPE, PKI_STATUS, FAIL_INFO = oid(SCEP + "2"), oid(SCEP + "3"), oid(SCEP + "4")
SENDER_NONCE, RECIPIENT_NONCE, TXID = oid(SCEP + "5"), oid(SCEP + "6"), oid(SCEP + "7")


def pkimessage(der):
    """messageType, transactionID, senderNonce, pkiStatus and the
    encapsulated content (the pkcsPKIEnvelope; None when absent)."""
    _, s, e = parse(der)
    ci = children(der, s, e)
    _, s, e = parse(der, ci[1][1])  # [0] EXPLICIT SignedData
    sd = children(der, s, e)
    encap = children(der, sd[2][1], sd[2][2])
    content = None
    if len(encap) > 1:
        _, s, e = parse(der, encap[1][1])
        content = der[s:e]
    si_set = [c for c in sd if c[0] == 0x31][-1]
    si = children(der, si_set[1], si_set[2])[0]
    attrs = {}
    for t, s, e, _ in children(der, si[1], si[2]):
        if t != 0xA0:
            continue
        for _, a_s, a_e, _ in children(der, s, e):
            parts = children(der, a_s, a_e)
            key = der[a_s:parts[0][2]]
            _, v_s, v_e = parse(der, parts[1][1])
            attrs[key] = der[v_s:v_e]
    return (attrs.get(MSG_TYPE, b"").decode(), attrs.get(TXID, b"").decode(), attrs.get(SENDER_NONCE, b""),
            attrs.get(PKI_STATUS, b"").decode(), content)


def certrep(status, txid, recipient_nonce, envelope=None, fail_info=None):
    """A CertRep: SignedData signed with the CA key (RFC 8894 §3.3.2)."""
    sha256 = seq(oid("2.16.840.1.101.3.4.2.1"), b"\x05\x00")
    content = envelope if envelope is not None else b""
    attrs = [
        seq(oid("1.2.840.113549.1.9.3"), tlv(0x31, oid(OID_DATA))),
        seq(oid("1.2.840.113549.1.9.4"), tlv(0x31, tlv(0x04, hashlib.sha256(content).digest()))),
        seq(MSG_TYPE, tlv(0x31, tlv(0x13, b"3"))),
        seq(PKI_STATUS, tlv(0x31, tlv(0x13, status.encode()))),
        seq(TXID, tlv(0x31, tlv(0x13, txid.encode()))),
        seq(SENDER_NONCE, tlv(0x31, tlv(0x04, os.urandom(16)))),
        seq(RECIPIENT_NONCE, tlv(0x31, tlv(0x04, recipient_nonce))),
    ]
    if fail_info is not None:
        attrs.append(seq(FAIL_INFO, tlv(0x31, tlv(0x13, fail_info.encode()))))
    body = b"".join(sorted(attrs))  # DER SET OF: sorted encodings
    sig = ca_key.sign(tlv(0x31, body), padding.PKCS1v15(), hashes.SHA256())
    signer_info = seq(integer(1), seq(ca.subject.public_bytes(), integer(ca.serial_number)), sha256,
                      tlv(0xA0, body), seq(oid("1.2.840.113549.1.1.1"), b"\x05\x00"), tlv(0x04, sig))
    encap = seq(oid(OID_DATA), tlv(0xA0, tlv(0x04, envelope))) if envelope is not None else seq(oid(OID_DATA))
    signed = seq(integer(1), tlv(0x31, sha256), encap, tlv(0xA0, ca.public_bytes(serialization.Encoding.DER)),
                 tlv(0x31, signer_info))
    return seq(oid(OID_SIGNED), tlv(0xA0, signed))


def issuer_and_subject(envelope):
    """The CertPoll's content, decrypted with the CA key by openssl."""
    with tempfile.NamedTemporaryFile(suffix=".der") as f:
        f.write(envelope)
        f.flush()
        plain = subprocess.run(["openssl", "smime", "-decrypt", "-inform", "DER", "-binary", "-in", f.name,
                                "-recip", CA_PEM, "-inkey", CA_KEY], check=True, capture_output=True).stdout
    _, s, e = parse(plain)
    names = children(plain, s, e)
    if e != len(plain) or len(names) != 2 or plain[names[0][3]:names[0][2]] != ca.subject.public_bytes():
        raise ValueError("not an IssuerAndSubject naming the CA")
    return plain


def log(line):
    with open(logpath, "a") as f:
        f.write(line + "\n")


class RA(http.server.BaseHTTPRequestHandler):
    def answer(self, body, ctype="application/x-pki-message"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with urllib.request.urlopen(upstream + self.path, timeout=10) as r:
            self.answer(r.read(), r.headers.get("Content-Type", "application/octet-stream"))

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        try:
            mtype, txid, nonce, _, content = pkimessage(body)
            decision = open(approve).read().strip() if os.path.exists(approve) else ""
            if decision == "pass":
                n = len([f for f in os.listdir(os.path.dirname(logpath)) if f.startswith("req-")])
                with open(os.path.join(os.path.dirname(logpath), "req-%d.der" % n), "wb") as f:
                    f.write(body)
                req = urllib.request.Request(upstream + "/scep?operation=PKIOperation", data=body,
                                             headers={"Content-Type": "application/x-pki-message"})
                with urllib.request.urlopen(req, timeout=10) as r:
                    rep = r.read()
                log("PASS %s %s req-%d.der" % (mtype, txid, n))
                self.answer(rep)
                return
            if mtype in ("19", "17"):
                held.setdefault(txid, body)
                log("HOLD %s %s" % (mtype, txid))
                self.answer(certrep("3", txid, nonce))
                return
            if mtype != "20":
                raise ValueError("messageType %s" % mtype)
            issuer_and_subject(content)
            if decision == "reject":
                log("POLL %s rejected" % txid)
                self.answer(certrep("2", txid, nonce, fail_info="4"))
                return
            if decision != "approve" or txid not in held:
                log("POLL %s pending" % txid)
                self.answer(certrep("3", txid, nonce))
                return
            req = urllib.request.Request(upstream + "/scep?operation=PKIOperation", data=held.pop(txid),
                                         headers={"Content-Type": "application/x-pki-message"})
            with urllib.request.urlopen(req, timeout=10) as r:
                rep = r.read()
            _, _, _, status, envelope = pkimessage(rep)
            if status != "0":
                log("POLL %s upstream status %s" % (txid, status))
                self.answer(certrep("2", txid, nonce, fail_info="2"))
                return
            log("POLL %s issued" % txid)
            self.answer(certrep("0", txid, nonce, envelope=envelope))
        except Exception as ex:  # a broken request: no CertRep
            log("ERROR %s" % ex)
            self.send_error(500)

    def log_message(self, *args):
        pass


srv = http.server.HTTPServer(("127.0.0.1", 0), RA)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
