// The v2 secret string (docs/crypt.md, "5. The format"): parse, seal, open, check.
#include <sodium.h>

#include <cstring>

#include "lithos/crypt/crypt.hpp"

namespace lithos::crypt {

namespace {

const std::string kOnlyEd25519 = "Only ed25519 keys are supported";
const std::string kOnlyV2 = "Only v2 secrets are supported";
const std::string kInvalidFormat = "invalid key format";
const std::string kDecryptionError = "decryption error. This usually means the key is wrong.";

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

Result<void> check_plaintext_input(std::string_view ns, std::string_view secret) {
  if (!valid_namespace(ns)) {
    return fail("invalid namespace " + debug_quote(ns) + ": must match ^[a-zA-Z0-9_.-]*$");
  }
  if (secret.find('\0') != std::string_view::npos) {
    return fail(std::string("no null bytes allowed in secret"));
  }
  return {};
}

// NS ":" SECRET, in a buffer that is wiped afterwards.
SecureBuffer make_plaintext(std::string_view ns, std::string_view secret) {
  SecureBuffer plaintext(ns.size() + 1 + secret.size());
  if (!ns.empty()) std::memcpy(plaintext.data(), ns.data(), ns.size());
  plaintext.data()[ns.size()] = ':';
  if (!secret.empty()) std::memcpy(plaintext.data() + ns.size() + 1, secret.data(), secret.size());
  return plaintext;
}

std::string assemble(const PublicKey& key, std::string_view ns, std::string_view secret,
                     const std::string& sealed) {
  std::string out = "v2:";
  out += short_hash({reinterpret_cast<const char*>(key.ed25519.data()), key.ed25519.size()});
  out += ':';
  out += short_hash(ns);
  out += ':';
  out += short_hash(secret);
  out += ':';
  out += base64_encode(sealed);
  return out;
}

using Seal = int (*)(unsigned char* out, const SecureBuffer& plaintext,
                     const unsigned char* x25519_pk, const void* context);

Result<std::string> encrypt_impl(const PublicKey& key, std::string_view ns, std::string_view secret,
                                 Seal seal, const void* context) {
  if (!ensure_sodium()) return fail(std::string("libsodium initialisation failed"));
  if (key.type != KeyType::ed25519) return fail(kOnlyEd25519);
  if (auto ok = check_plaintext_input(ns, secret); !ok) return fail(ok.error());
  unsigned char x25519_pk[crypto_box_PUBLICKEYBYTES];
  if (crypto_sign_ed25519_pk_to_curve25519(x25519_pk, key.ed25519.data()) != 0) {
    return fail(std::string("invalid public key"));
  }
  const SecureBuffer plaintext = make_plaintext(ns, secret);
  std::string sealed(plaintext.size() + crypto_box_SEALBYTES, '\0');
  if (seal(reinterpret_cast<unsigned char*>(sealed.data()), plaintext, x25519_pk, context) != 0) {
    return fail(std::string("encryption error"));
  }
  return assemble(key, ns, secret, sealed);
}

int seal_random(unsigned char* out, const SecureBuffer& plaintext, const unsigned char* pk,
                const void*) {
  return crypto_box_seal(out, plaintext.data(), plaintext.size(), pk);
}

// crypto_box_seal spelled out with an injected ephemeral key:
// epk = X25519(esk, 9); nonce = BLAKE2b-192(epk || pk); epk || box(m).
int seal_with_ephemeral(unsigned char* out, const SecureBuffer& plaintext, const unsigned char* pk,
                        const void* context) {
  const auto* esk = static_cast<const unsigned char*>(context);
  unsigned char* epk = out;
  if (crypto_scalarmult_base(epk, esk) != 0) return -1;
  unsigned char nonce[crypto_box_NONCEBYTES];
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, sizeof nonce);
  crypto_generichash_update(&state, epk, crypto_box_PUBLICKEYBYTES);
  crypto_generichash_update(&state, pk, crypto_box_PUBLICKEYBYTES);
  crypto_generichash_final(&state, nonce, sizeof nonce);
  return crypto_box_easy(out + crypto_box_PUBLICKEYBYTES, plaintext.data(), plaintext.size(), nonce,
                         pk, esk);
}

}  // namespace

Result<V2Fields> parse_v2(std::string_view value) {
  if (value.substr(0, 3) != "v2:") return fail(kOnlyV2);
  std::string_view fields[5];
  std::size_t count = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t colon = value.find(':', start);
    if (count == 5) return fail(kInvalidFormat);
    fields[count++] = value.substr(start, colon == std::string_view::npos ? colon : colon - start);
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  if (count != 5) return fail(kInvalidFormat);
  auto cipher = base64_decode(fields[4]);
  if (!cipher) return fail(cipher.error());
  V2Fields out;
  out.key_hash = std::string(fields[1]);
  out.namespace_hash = std::string(fields[2]);
  out.secret_hash = std::string(fields[3]);
  out.cipher = std::move(*cipher);
  return out;
}

Result<std::string> encrypt(const PublicKey& key, std::string_view ns, std::string_view secret) {
  return encrypt_impl(key, ns, secret, seal_random, nullptr);
}

Result<std::string> encrypt_with_ephemeral_key(const PublicKey& key, std::string_view ns,
                                               std::string_view secret,
                                               const std::array<unsigned char, 32>& ephemeral_sk) {
  return encrypt_impl(key, ns, secret, seal_with_ephemeral, ephemeral_sk.data());
}

Result<Decrypted> decrypt(const PrivateKey& key, std::string_view value,
                          const DecryptOptions& options) {
  if (!ensure_sodium()) return fail(std::string("libsodium initialisation failed"));
  // Step 1
  if (key.type != KeyType::ed25519 || key.private_value.size() != crypto_sign_SECRETKEYBYTES) {
    return fail(kOnlyEd25519);
  }
  // Steps 2–4
  auto fields = parse_v2(value);
  if (!fields) return fail(fields.error());
  const std::string& cipher = fields->cipher;
  // Step 5
  if (cipher.size() < crypto_box_SEALBYTES) return fail(kDecryptionError);
  unsigned char x25519_pk[crypto_box_PUBLICKEYBYTES];
  SecureBuffer x25519_sk(crypto_box_SECRETKEYBYTES);
  if (crypto_sign_ed25519_pk_to_curve25519(x25519_pk, key.public_key.data()) != 0 ||
      crypto_sign_ed25519_sk_to_curve25519(x25519_sk.data(), key.private_value.data()) != 0) {
    return fail(kDecryptionError);
  }
  SecureBuffer plaintext(cipher.size() - crypto_box_SEALBYTES);
  if (crypto_box_seal_open(plaintext.data(), bytes(cipher), cipher.size(), x25519_pk,
                           x25519_sk.data()) != 0) {
    return fail(kDecryptionError);
  }
  x25519_sk.clear();
  // Step 6
  const std::string_view text = plaintext.view();
  const std::size_t colon = text.find(':');
  const std::string_view ns = text.substr(0, colon);
  if (options.require_utf8_namespace && !valid_utf8(ns)) {
    return fail(std::string("can't decode namespace from utf-8"));
  }
  if (colon == std::string_view::npos) return fail(std::string("decrypted data is invalid"));
  const std::string_view secret = text.substr(colon + 1);
  // Steps 7–9
  const std::string_view public_key{reinterpret_cast<const char*>(key.public_key.data()),
                                    key.public_key.size()};
  if (fields->key_hash != short_hash(public_key)) return fail(std::string("invalid key hash"));
  if (fields->namespace_hash != short_hash(ns)) return fail(std::string("invalid namespace hash"));
  if (fields->secret_hash != short_hash(secret)) return fail(std::string("invalid secret hash"));
  Decrypted out;
  out.ns = std::string(ns);
  out.secret = SecureBuffer(secret);
  return out;
}

Result<Decrypted> decrypt(const std::vector<PrivateKey>& keys, std::string_view value) {
  if (keys.empty()) return fail(kInvalidFormat);
  auto last = decrypt(keys.back(), value);
  if (last) return last;
  for (std::size_t i = 0; i + 1 < keys.size(); ++i) {
    auto other = decrypt(keys[i], value);
    if (other) return other;
  }
  return last;
}

Result<void> check_key(const PublicKey& key, std::string_view value) {
  if (key.type != KeyType::ed25519) return fail(kOnlyEd25519);
  if (value.substr(0, 3) != "v2:") return fail(kOnlyV2);
  const std::size_t second = 3;  // the field after "v2:"
  if (second > value.size()) return fail(std::string("bad format of data"));
  const std::string_view field = value.substr(second, value.find(':', second) - second);
  const std::string_view public_key{reinterpret_cast<const char*>(key.ed25519.data()),
                                    key.ed25519.size()};
  if (field != short_hash(public_key)) return fail(std::string("key doesn't match"));
  return {};
}

}  // namespace lithos::crypt
