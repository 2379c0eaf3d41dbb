#!/usr/bin/env python3
"""kh_wire.py: raw keyhold frames for the limits tests (DESIGN §4): a
4-byte big-endian length, then a protobuf Request; answers are Response
frames. Encodes the few messages it needs by hand (no protobuf module).

  kh_wire.py --socket S hold N SECONDS       open N connections, hold them
  kh_wire.py --socket S extra                one more connection: print the refusal
  kh_wire.py --socket S pipeline N METHOD    N requests in one write; print codes
  kh_wire.py --socket S slow                 a GetStatus one byte per second
  kh_wire.py --socket S idle                 connect, send nothing, wait for the close
  kh_wire.py --socket S rawlen HEXLEN        a frame header only: is the connection closed?
  kh_wire.py --socket S req METHODHEX BODYHEX one request with these raw bytes: print the answer
  kh_wire.py --socket S halfframes N LEN SECONDS
                                             N connections each sending a LEN-byte frame but its
                                             last byte; print, hold SECONDS, close
  kh_wire.py --socket S flood N SECONDS      one served connection, then N more that send
                                             nothing; after SECONDS, is the first still served?
Prints one JSON document.
"""
import json
import socket
import struct
import sys
import time

CODES = {0: "OK", 3: "INVALID_ARGUMENT", 5: "NOT_FOUND", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED",
         12: "UNIMPLEMENTED", 14: "UNAVAILABLE", 16: "UNAUTHENTICATED", 13: "INTERNAL"}


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7f
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def request(rid, method, body=b""):
    if isinstance(method, str):
        method = method.encode()
    msg = varint(1 << 3) + varint(rid) + field_bytes(2, method) + field_bytes(4, body)
    return struct.pack(">I", len(msg)) + msg


def parse(buf):
    """Fields of one protobuf message: {num: [values]}."""
    out, off = {}, 0
    while off < len(buf):
        key, off = read_varint(buf, off)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, off = read_varint(buf, off)
        elif wt == 2:
            n, off = read_varint(buf, off)
            v, off = buf[off:off + n], off + n
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def read_varint(buf, off):
    v = shift = 0
    while True:
        b = buf[off]
        off += 1
        v |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return v, off


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def read_response(s):
    hdr = recv_exact(s, 4)
    if hdr is None:
        return None
    (n,) = struct.unpack(">I", hdr)
    msg = parse(recv_exact(s, n))
    st = parse(msg.get(2, [b""])[0])
    code = st.get(1, [0])[0]
    text = st.get(2, [b""])[0].decode(errors="replace")
    return {"id": msg.get(1, [0])[0], "code": CODES.get(code, str(code)), "message": text}


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def main():
    args = sys.argv[1:]
    if args[:1] != ["--socket"]:
        sys.exit(__doc__)
    path, cmd, rest = args[1], args[2], args[3:]
    res = {}
    if cmd == "hold":
        n, secs = int(rest[0]), float(rest[1])
        conns = [connect(path) for _ in range(n)]
        # Each proves it is served: one GetStatus answered.
        for i, s in enumerate(conns):
            s.sendall(request(i + 1, "GetStatus"))
            r = read_response(s)
            if r is None or r["code"] != "OK":
                res["error"] = "connection %d not served: %r" % (i, r)
        print(json.dumps({"held": n, **res}), flush=True)
        time.sleep(secs)
        for s in conns:
            s.close()
        return
    if cmd == "extra":
        s = connect(path)
        s.settimeout(30)
        try:
            s.sendall(request(1, "GetStatus"))
        except OSError:
            pass
        r = read_response(s)
        closed = False
        try:
            closed = s.recv(1) == b""
        except OSError:
            closed = True
        res = {"response": r, "closed": closed}
    elif cmd == "pipeline":
        n, method = int(rest[0]), rest[1]
        s = connect(path)
        s.settimeout(60)
        s.sendall(b"".join(request(i + 1, method) for i in range(n)))
        got = [read_response(s) for _ in range(n)]
        res["answers"] = len([g for g in got if g is not None])
        res["ids"] = sorted(g["id"] for g in got if g)
        res["codes"] = {}
        for g in got:
            if g:
                res["codes"][g["code"]] = res["codes"].get(g["code"], 0) + 1
        res["messages"] = sorted(set(g["message"] for g in got if g and g["code"] != "OK"))
        # The connection is still good for one more.
        s.sendall(request(n + 1, method))
        after = read_response(s)
        res["after"] = after["code"] if after else None
    elif cmd == "slow":
        s = connect(path)
        s.settimeout(60)
        frame = request(7, "GetStatus")
        for b in frame:
            s.sendall(bytes([b]))
            time.sleep(1)
        r = read_response(s)
        res = {"bytes": len(frame), "response": r}
    elif cmd == "idle":
        s = connect(path)
        s.settimeout(60)
        try:
            closed = s.recv(1) == b""
        except socket.timeout:
            closed = False
        res = {"closed": closed}
    elif cmd == "rawlen":
        s = connect(path)
        s.settimeout(30)
        s.sendall(bytes.fromhex(rest[0]))
        try:
            closed = s.recv(1) == b""
        except socket.timeout:
            closed = False
        except OSError:
            closed = True
        res = {"closed": closed}
    elif cmd == "req":
        s = connect(path)
        s.settimeout(30)
        s.sendall(request(9, bytes.fromhex(rest[0]), bytes.fromhex(rest[1])))
        res = {"response": read_response(s)}
    elif cmd == "halfframes":
        n, length, secs = int(rest[0]), int(rest[1]), float(rest[2])
        conns, closed = [], set()
        for i in range(n):
            s = connect(path)
            try:
                s.sendall(struct.pack(">I", length) + b"\0" * (length - 1))
            except OSError:
                closed.add(i)
            conns.append(s)
        # How many the server closed (it may close one on the header).
        time.sleep(1)
        for i, s in enumerate(conns):
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed.add(i)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
        print(json.dumps({"sent": n, "closed": len(closed)}), flush=True)
        time.sleep(secs)
        for s in conns:
            s.close()
        return
    elif cmd == "flood":
        n, secs = int(rest[0]), float(rest[1])
        first = connect(path)
        first.settimeout(30)
        first.sendall(request(1, "GetStatus"))
        r = read_response(first)
        conns = []
        for _ in range(n):
            try:
                conns.append(connect(path))
            except OSError:
                break
        print(json.dumps({"first": r["code"] if r else None, "opened": len(conns)}), flush=True)
        time.sleep(secs)
        first.sendall(request(2, "GetStatus"))
        r = read_response(first)
        closed = 0
        for s in conns:
            s.settimeout(0.05)
            try:
                s.recv(4096)  # the refusal, or the close
                closed += 1
            except socket.timeout:
                pass
            except OSError:
                closed += 1
            s.close()
        res = {"after": r["code"] if r else None, "refused": closed, "opened": len(conns)}
    else:
        sys.exit(__doc__)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
