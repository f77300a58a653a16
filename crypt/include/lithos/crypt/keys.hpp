// OpenSSH key files (docs/crypt.md, "1. Set up a key pair"): public key lines and unencrypted
// `openssh-key-v1` private keys. Only Ed25519 keys can be used; RSA keys are
// recognised so that the caller can reject them with the original's message.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "lithos/common/result.hpp"
#include "lithos/common/text.hpp"
#include "lithos/crypt/secure_buffer.hpp"

namespace lithos::crypt {

enum class KeyType { ed25519, rsa };

using Ed25519PublicKey = std::array<unsigned char, 32>;

struct PublicKey {
  KeyType type = KeyType::ed25519;
  Ed25519PublicKey ed25519{};  // meaningful for KeyType::ed25519 only
  std::string comment;
};

struct PrivateKey {
  KeyType type = KeyType::ed25519;
  // For Ed25519: the public half stored in the private value (bytes 32..63),
  // used for KEYHASH and the sealed-box nonce.
  Ed25519PublicKey public_key{};
  // For Ed25519: the 64-byte private value (seed || public key); empty for RSA.
  SecureBuffer private_value;
  std::string comment;

  PrivateKey clone() const;
};

// Parses the first line of an OpenSSH public key file (`ssh-ed25519 AAAA… comment`).
// The type name inside the blob must equal the first token (a fix over the
// original). Errors: `invalid key format`, `unsupported key type "X"`.
Result<PublicKey> parse_public_key(std::string_view text);

// Parses one or more concatenated PEM blocks (`OPENSSH PRIVATE KEY`, also
// `RSA PRIVATE KEY`, recognised as RSA). Every key of every block is returned in
// file order; N>1 `openssh-key-v1` containers use OpenSSH's real layout.
// Errors: `invalid key format`, `key was encrypted`, `unsupported key type "X"`.
Result<std::vector<PrivateKey>> parse_private_keys(std::string_view text);

// File wrappers (no ownership/mode check; see secrets.hpp for the knot's).
// I/O errors are `PATH: reason`; otherwise the parser's message.
Result<PublicKey> read_public_key_file(const std::string& path);
Result<std::vector<PrivateKey>> read_private_key_file(const std::string& path);

using lithos::debug_quote;

}  // namespace lithos::crypt
