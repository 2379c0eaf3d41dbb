#!/usr/bin/env python3
"""rev_server.py: the loopback HTTP server of the revocation tests.

GET /NAME serves DIR/NAME (CRLs as `openssl ca -gencrl` writes them).
POST /ocsp/CA answers an OCSP request with `openssl ocsp` run on the
request (-reqin/-respout) with CA's index, certificate and responder key
from DIR/CA/: index.txt, ca.pem, ocsp.pem, ocsp.key; DIR/CA/ndays, when
present, sets -ndays (a nextUpdate); DIR/CA/canned.der, when present, is
sent instead (a response made for another request). Every request is
logged as "METHOD PATH STATUS" to --log and every OCSP request body saved
as DIR/requests/N.der.

`openssl ocsp -port` (OpenSSL 3.0) listens on every interface; this server
binds 127.0.0.1 only and hands each request to the same `openssl ocsp`
responder code. It listens on --port (0: any free one, written to
--port-file) and runs until killed.
"""
import argparse
import http.server
import os
import subprocess
import sys
import tempfile

MAX_BODY = 64 * 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    root = os.path.abspath(a.dir)
    os.makedirs(os.path.join(root, "requests"), exist_ok=True)

    def log(line):
        with open(a.log, "a") as f:
            f.write(line + "\n")

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args):
            pass

        def reply(self, code, body=b"", ctype="application/octet-stream"):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            log("%s %s %d" % (self.command, self.path, code))

        def do_GET(self):
            name = self.path.lstrip("/")
            p = os.path.join(root, name)
            if "/" in name or name.startswith(".") or not os.path.isfile(p):
                return self.reply(404)
            with open(p, "rb") as f:
                self.reply(200, f.read(), "application/pkix-crl")

        def do_POST(self):
            parts = self.path.strip("/").split("/")
            n = int(self.headers.get("Content-Length", "0"))
            if len(parts) != 2 or parts[0] != "ocsp" or n <= 0 or n > MAX_BODY:
                return self.reply(400)
            ca = os.path.join(root, parts[1])
            body = self.rfile.read(n)
            count = len(os.listdir(os.path.join(root, "requests")))
            with open(os.path.join(root, "requests", "%04d.der" % count), "wb") as f:
                f.write(body)
            if not os.path.isdir(ca):
                return self.reply(404)
            canned = os.path.join(ca, "canned.der")
            if os.path.isfile(canned):
                with open(canned, "rb") as f:
                    return self.reply(200, f.read(), "application/ocsp-response")
            with tempfile.TemporaryDirectory() as tmp:
                req, resp = os.path.join(tmp, "req.der"), os.path.join(tmp, "resp.der")
                with open(req, "wb") as f:
                    f.write(body)
                cmd = ["openssl", "ocsp", "-index", os.path.join(ca, "index.txt"),
                       "-CA", os.path.join(ca, "ca.pem"), "-rsigner", os.path.join(ca, "ocsp.pem"),
                       "-rkey", os.path.join(ca, "ocsp.key"), "-reqin", req, "-respout", resp]
                nd = os.path.join(ca, "ndays")
                if os.path.isfile(nd):
                    cmd += ["-ndays", open(nd).read().strip()]
                r = subprocess.run(cmd, capture_output=True)
                if r.returncode != 0 or not os.path.isfile(resp):
                    sys.stderr.write(r.stderr.decode(errors="replace"))
                    return self.reply(500)
                with open(resp, "rb") as f:
                    self.reply(200, f.read(), "application/ocsp-response")

    class S(http.server.HTTPServer):
        allow_reuse_address = True

    srv = S(("127.0.0.1", a.port), H)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
