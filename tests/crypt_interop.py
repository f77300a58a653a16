#!/usr/bin/env python3
"""Independent v2 secret implementation over PyNaCl, for interoperability tests.

  crypt_interop.py seal PUBKEY_FILE NAMESPACE SECRET_HEX   -> prints a v2 string
  crypt_interop.py open PRIVKEY_FILE V2_STRING             -> prints NS_HEX SECRET_HEX

The key files are parsed here (OpenSSH formats), the box is
nacl.public.SealedBox over keys converted with
nacl.bindings.crypto_sign_ed25519_{pk,sk}_to_curve25519, hashes are
hashlib.blake2b(digest_size=6). Exit status 1 with a message on any mismatch.
"""

import base64
import hashlib
import struct
import sys

import nacl.bindings
import nacl.public


def short(data: bytes) -> str:
    return base64.b64encode(hashlib.blake2b(data, digest_size=6).digest()).decode()


def ssh_string(buf: bytes, pos: int):
    (length,) = struct.unpack(">I", buf[pos:pos + 4])
    start = pos + 4
    if start + length > len(buf):
        raise ValueError("truncated")
    return buf[start:start + length], start + length


def read_public(path: str) -> bytes:
    with open(path) as f:
        kind, blob = f.readline().split()[:2]
    raw = base64.b64decode(blob)
    name, pos = ssh_string(raw, 0)
    key, _ = ssh_string(raw, pos)
    assert kind == "ssh-ed25519" and name == b"ssh-ed25519" and len(key) == 32
    return key


def read_private(path: str) -> bytes:
    """Returns the 64-byte private value (seed || pk) of a single-key file."""
    with open(path) as f:
        text = f.read()
    body = text.split("-----BEGIN OPENSSH PRIVATE KEY-----")[1]
    body = body.split("-----END OPENSSH PRIVATE KEY-----")[0]
    raw = base64.b64decode("".join(body.split()))
    magic = b"openssh-key-v1\0"
    assert raw.startswith(magic)
    pos = len(magic)
    for _ in range(3):  # cipher, kdf, kdf options
        _, pos = ssh_string(raw, pos)
    (count,) = struct.unpack(">I", raw[pos:pos + 4])
    pos += 4
    assert count == 1
    _, pos = ssh_string(raw, pos)  # public blob
    section, _ = ssh_string(raw, pos)
    check1, check2 = struct.unpack(">II", section[:8])
    assert check1 == check2
    p = 8
    kind, p = ssh_string(section, p)
    assert kind == b"ssh-ed25519"
    _, p = ssh_string(section, p)
    value, p = ssh_string(section, p)
    assert len(value) == 64
    return value


def seal(pub_path: str, namespace: str, secret: bytes) -> str:
    ed_pk = read_public(pub_path)
    x_pk = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(ed_pk)
    box = nacl.public.SealedBox(nacl.public.PublicKey(x_pk))
    sealed = box.encrypt(namespace.encode() + b":" + secret)
    return ":".join(["v2", short(ed_pk), short(namespace.encode()), short(secret),
                     base64.b64encode(sealed).decode()])


def open_(priv_path: str, value: str):
    ed_sk = read_private(priv_path)
    ed_pk = ed_sk[32:]
    fields = value.split(":")
    if len(fields) != 5 or fields[0] != "v2":
        raise SystemExit("bad v2 string")
    x_sk = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(ed_sk)
    box = nacl.public.SealedBox(nacl.public.PrivateKey(x_sk))
    plain = box.decrypt(base64.b64decode(fields[4]))
    namespace, _, secret = plain.partition(b":")
    if fields[1] != short(ed_pk):
        raise SystemExit("key hash mismatch")
    if fields[2] != short(namespace):
        raise SystemExit("namespace hash mismatch")
    if fields[3] != short(secret):
        raise SystemExit("secret hash mismatch")
    return namespace, secret


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "seal":
        print(seal(sys.argv[2], sys.argv[3], bytes.fromhex(sys.argv[4])))
        return 0
    if len(sys.argv) == 4 and sys.argv[1] == "open":
        namespace, secret = open_(sys.argv[2], sys.argv[3])
        print(namespace.hex(), secret.hex())
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
