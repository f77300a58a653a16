// The lithos "v2" secret format (docs/crypt.md): short hashes, the v2 string
// parser, encryption and decryption. Everything is built on libsodium.
//
//   v2:KEYHASH:NSHASH:SECRETHASH:CIPHER
//
// No function here throws; errors are values carrying the original's messages.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "lithos/common/result.hpp"
#include "lithos/common/text.hpp"
#include "lithos/crypt/keys.hpp"
#include "lithos/crypt/secure_buffer.hpp"

namespace lithos::crypt {

// crypto_box_seal overhead: ephemeral public key (32) + Poly1305 tag (16).
inline constexpr std::size_t kSealOverhead = 48;

// Initialises libsodium once (thread-safe). Every function below calls it;
// returns false if libsodium cannot be initialised.
bool ensure_sodium();

// base64_standard(BLAKE2b-48(bytes)): always 8 characters.
std::string short_hash(std::string_view bytes);

// The unkeyed BLAKE2b-512 digest of `bytes`: 64 raw bytes.
std::string blake2b_512(std::string_view bytes);

// Standard base64 with `=` padding.
std::string base64_encode(std::string_view bytes);
// The original's lenient decoder: padding optional, excess padding and any
// byte outside the alphabet rejected, no whitespace, non-zero trailing bits
// accepted. Errors: `Invalid byte B, offset O.` and
// `Encoded text cannot have a 6-bit remainder.`
Result<std::string> base64_decode(std::string_view text);

// `^[a-zA-Z0-9_.-]*$`
bool valid_namespace(std::string_view ns);
using lithos::valid_utf8;

// The fields of a v2 string. Parsing needs no key: lithos_check uses it to
// report malformed secrets and to compare `namespace_hash` with
// short_hash(ns) of each allowed namespace.
struct V2Fields {
  std::string key_hash;
  std::string namespace_hash;
  std::string secret_hash;
  std::string cipher;  // decoded sealed box (public data)

  // A sealed box is at least kSealOverhead bytes; a shorter one can never be
  // opened (decryption reports `decryption error…`).
  bool cipher_too_short() const { return cipher.size() < kSealOverhead; }
};

// The format checks of decryption: `Only v2 secrets are supported`,
// `invalid key format` (not exactly 5 `:`-separated fields), base64 messages.
Result<V2Fields> parse_v2(std::string_view value);

// Encrypts `secret` for `key` in namespace `ns` and returns the v2 string
// (without newline). Errors: `Only ed25519 keys are supported`,
// `invalid namespace "NS": must match ^[a-zA-Z0-9_.-]*$`,
// `no null bytes allowed in secret`, `invalid public key` (libsodium refuses
// to convert it: not a valid / small-order point), `encryption error`.
Result<std::string> encrypt(const PublicKey& key, std::string_view ns, std::string_view secret);

// FOR TESTS ONLY: the same with the ephemeral secret key injected, so that the
// output is deterministic (the test vector). Never use a fixed key for real secrets.
Result<std::string> encrypt_with_ephemeral_key(const PublicKey& key, std::string_view ns,
                                               std::string_view secret,
                                               const std::array<unsigned char, 32>& ephemeral_sk);

struct Decrypted {
  std::string ns;       // the namespace inside the box
  SecureBuffer secret;  // wiped on destruction
};

struct DecryptOptions {
  // The knot requires the namespace part to be UTF-8;
  // lithos_crypt decrypt does not.
  bool require_utf8_namespace = false;
};

// Decryption with one key, up to the hash checks: `Only ed25519 keys are supported`,
// the parse_v2 errors, `decryption error. This usually means the key is wrong.`,
// `can't decode namespace from utf-8` (only with require_utf8_namespace),
// `decrypted data is invalid`, `invalid key hash`, `invalid namespace hash`,
// `invalid secret hash`. The secret itself is not checked (no NUL/UTF-8 rule).
Result<Decrypted> decrypt(const PrivateKey& key, std::string_view value,
                          const DecryptOptions& options = {});

// lithos_crypt's decrypt over a whole key file: the last key is tried first
// (as in the original), then the others in file order; the first success
// wins. If none succeeds the error is the last key's (the original's message).
// An empty key list gives `invalid key format`.
Result<Decrypted> decrypt(const std::vector<PrivateKey>& keys, std::string_view value);

// lithos_crypt check-key: `Only ed25519 keys are supported`,
// `Only v2 secrets are supported`, `bad format of data`, `key doesn't match`.
Result<void> check_key(const PublicKey& key, std::string_view value);

}  // namespace lithos::crypt
