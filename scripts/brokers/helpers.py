#!/usr/bin/env python3
"""Small helpers for scripts/brokers (standard library only).

  helpers.py endpoints-merge FILE NAME JSON   set FILE[NAME] = JSON, keep the other entries
  helpers.py kafka-ready HOST PORT            Kafka Metadata v4 round trip, needs >= 1 broker in the answer
  helpers.py amqp-ready HOST PORT             AMQP 0-9-1 handshake: protocol header -> Connection.Start
"""
import json
import os
import socket
import struct
import sys
import tempfile


def endpoints_merge(path, name, value):
    data = {}
    if os.path.exists(path):
        try:
            with open(path) as f:
                data = json.load(f)
        except (ValueError, OSError):
            data = {}
        if not isinstance(data, dict):
            data = {}
    data[name] = json.loads(value)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".endpoints.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, separators=(",", ":"))
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
    return buf


def kafka_ready(host, port):
    """Metadata v4 (non-flexible; KIP-896 keeps v4+ in Kafka 4.x) for all topics."""
    client = b"mqkit-readiness"
    header = struct.pack(">hhih", 3, 4, 42, len(client)) + client
    body = struct.pack(">ib", -1, 0)  # topics = null (all), allow_auto_topic_creation = false
    req = header + body
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(struct.pack(">i", len(req)) + req)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        resp = recv_exact(s, size)
    corr, _throttle, nbrokers = struct.unpack(">iii", resp[:12])
    if corr != 42:
        raise RuntimeError("bad correlation id %d" % corr)
    if nbrokers < 1:
        raise RuntimeError("metadata lists no broker yet")
    off = 12
    node_id, hlen = struct.unpack(">ih", resp[off:off + 6])
    host_ans = resp[off + 6:off + 6 + hlen].decode()
    port_ans = struct.unpack(">i", resp[off + 6 + hlen:off + 10 + hlen])[0]
    print("kafka metadata: broker %d at %s:%d" % (node_id, host_ans, port_ans))


def amqp_ready(host, port):
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"AMQP\x00\x00\x09\x01")
        frame_type, channel, size = struct.unpack(">BHI", recv_exact(s, 7))
        payload = recv_exact(s, size)
        class_id, method_id = struct.unpack(">HH", payload[:4])
        if (frame_type, channel, class_id, method_id) != (1, 0, 10, 10):
            raise RuntimeError("unexpected AMQP frame %r" % ((frame_type, channel, class_id, method_id),))
    print("amqp: Connection.Start received")


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    try:
        if cmd == "endpoints-merge":
            endpoints_merge(*args)
        elif cmd == "kafka-ready":
            kafka_ready(*args)
        elif cmd == "amqp-ready":
            amqp_ready(*args)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except Exception as e:  # readiness probes: any failure = not ready yet
        print("%s: %s" % (cmd, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
