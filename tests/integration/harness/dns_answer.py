# The one DNS answer the test servers give (tests/integration/functional): the test name
# resolves to one IPv4 address, has no AAAA, and every other name is NXDOMAIN.
# Self-contained on purpose: test_network.py also runs its source inside a network
# namespace, as part of a script of its own.
import socket
import struct


def dns_answer(query, test_name, address):
    """(name, qtype, reply) for a DNS query packet, or None when it is malformed."""
    if len(query) < 12:
        return None
    i, labels = 12, []
    while i < len(query) and query[i]:
        labels.append(query[i + 1:i + 1 + query[i]].decode(errors="replace"))
        i += 1 + query[i]
    if i + 5 > len(query):
        return None
    qtype = struct.unpack("!H", query[i + 1:i + 3])[0]
    name = ".".join(labels).lower()
    question = query[12:i + 5]
    if name == test_name and qtype == 1:
        answer = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + socket.inet_aton(address)
        reply = query[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + question + answer
    elif name == test_name:  # No AAAA: NOERROR, no answer.
        reply = query[:2] + b"\x81\x80\x00\x01\x00\x00\x00\x00\x00\x00" + question
    else:  # NXDOMAIN.
        reply = query[:2] + b"\x81\x83\x00\x01\x00\x00\x00\x00\x00\x00" + question
    return name, qtype, reply
