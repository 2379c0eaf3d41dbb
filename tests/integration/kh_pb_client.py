#!/usr/bin/env python3
"""kh_pb_client.py: a stock protobuf client (python3-protobuf, code that
protoc generated from proto/keyhold.proto) sending requests whose text is
long and not ASCII, so that the server's messages quote it cut short.
proto3 strings must be valid UTF-8: google.protobuf refuses to parse a
Response whose Status.message is cut inside a character.

  kh_pb_client.py --socket S --gen DIR
Prints one JSON document: {case: {"parsed": bool, "code": N, "message": str|error}}.
"""
import json
import socket
import struct
import sys

# Three-byte characters: a cut at a byte count not divisible by 3 (the
# service's "%.64s", "%.32s", "%.80s") lands inside one.
EURO = "\u20ac"


def frame(req):
    data = req.SerializeToString()
    return struct.pack(">I", len(data)) + data


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


def main():
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    sys.path.insert(0, args["--gen"])
    import keyhold_pb2 as pb  # generated at test time by protoc
    from google.protobuf.message import DecodeError

    long_text = EURO * 40 + "\u00fc" * 3
    cases = {
        # SAN DNS:%.80s is not a valid host name
        "csr_san": ("CreateCsr", pb.CreateCsrRequest(key="cli-pb", subject="CN=x", san="DNS:" + long_text)),
        # unknown EKU '%.64s'
        "csr_eku": ("CreateCsr", pb.CreateCsrRequest(key="cli-pb", subject="CN=x", eku=EURO * 30)),
        # revocation method '%.32s' is unknown (the list holds 64 bytes)
        "trustpoint_revocation": ("CreateTrustpoint",
                                  pb.CreateTrustpointRequest(name="pbtp", generate=pb.P256, subject="CN=x",
                                                             revocation=EURO * 15)),
    }
    out = {}
    rid = 0
    for name, (method, body) in cases.items():
        rid += 1
        req = pb.Request(id=rid, method=method, body=body.SerializeToString())
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(args["--socket"])
        s.sendall(frame(req))
        n = struct.unpack(">I", recv_exact(s, 4))[0]
        raw = recv_exact(s, n)
        s.close()
        try:
            resp = pb.Response.FromString(raw)
            out[name] = {"parsed": True, "code": resp.status.code, "message": resp.status.message}
        except DecodeError as e:
            out[name] = {"parsed": False, "error": str(e), "raw": raw.hex()}
    json.dump(out, sys.stdout, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()
