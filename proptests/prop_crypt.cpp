// RapidCheck properties of the crypt library (docs/crypt.md, "7. For developers").
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <string>
#include <vector>

#include "crypt_test_support.hpp"
#include "lithos/crypt/crypt.hpp"
#include "lithos/crypt/keys.hpp"
#include "lithos/crypt/secrets.hpp"

namespace lc = lithos::crypt;
using namespace crypt_test;

namespace {

const std::string kNamespaceChars =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";

rc::Gen<std::string> gen_namespace() {
  return rc::gen::container<std::string>(rc::gen::elementOf(kNamespaceChars));
}

// Any bytes except NUL.
rc::Gen<std::string> gen_secret() {
  return rc::gen::container<std::string>(
      rc::gen::map(rc::gen::inRange(1, 256), [](int c) { return static_cast<char>(c); }));
}

rc::Gen<std::string> gen_bytes() {
  return rc::gen::container<std::string>(rc::gen::arbitrary<char>());
}

struct KeyPair {
  lc::PublicKey pub;
  lc::PrivateKey priv;
};

// A key pair from a random seed, through both key-file parsers.
KeyPair key_pair(const std::string& seed) {
  const RawKey raw = raw_key_from_seed(seed);
  auto pub = lc::parse_public_key("ssh-ed25519 " + raw_b64(ed25519_public_blob(raw)) + " k\n");
  RC_ASSERT(pub.ok());
  auto priv = lc::parse_private_keys(openssh_container({raw}));
  RC_ASSERT(priv.ok());
  RC_ASSERT(priv->size() == 1u);
  return {*pub, std::move(priv->front())};
}

rc::Gen<std::string> gen_seed() {
  return rc::gen::container<std::string>(32, rc::gen::arbitrary<char>());
}

}  // namespace

RC_GTEST_PROP(CryptProp, EncryptDecryptRoundTrip, ()) {
  const auto keys = key_pair(*gen_seed());
  const auto ns = *gen_namespace();
  const auto secret = *gen_secret();
  auto value = lc::encrypt(keys.pub, ns, secret);
  RC_ASSERT(value.ok());
  auto fields = lc::parse_v2(*value);
  RC_ASSERT(fields.ok());
  RC_ASSERT(fields->namespace_hash == lc::short_hash(ns));
  RC_ASSERT(fields->secret_hash == lc::short_hash(secret));
  RC_ASSERT(fields->cipher.size() == lc::kSealOverhead + ns.size() + 1 + secret.size());
  auto opened = lc::decrypt(keys.priv, *value);
  RC_ASSERT(opened.ok());
  RC_ASSERT(opened->ns == ns);
  RC_ASSERT(opened->secret.view() == secret);
  // The knot accepts it in its namespace iff the secret is UTF-8.
  std::vector<lc::PrivateKey> ring;
  ring.push_back(keys.priv.clone());
  auto decoded = lc::decode_secrets(ring, {ns}, {}, {{"V", {*value}}});
  if (lc::valid_utf8(secret)) {
    RC_ASSERT(decoded.ok());
    RC_ASSERT((*decoded)[0].value.view() == secret);
  } else {
    RC_ASSERT(!decoded.ok());
    RC_ASSERT(decoded.error() ==
              "Error decoding secrets: Can't decrypt secret \"V\", errors: Can't decode secret "
              "as utf-8");
  }
}

RC_GTEST_PROP(CryptProp, InjectedEphemeralKeyMatchesSealedBoxLayout, ()) {
  const auto keys = key_pair(*gen_seed());
  const auto ns = *gen_namespace();
  const auto secret = *gen_secret();
  std::array<unsigned char, 32> esk;
  const auto esk_bytes = *rc::gen::container<std::string>(32, rc::gen::arbitrary<char>());
  std::copy(esk_bytes.begin(), esk_bytes.end(), esk.begin());
  auto a = lc::encrypt_with_ephemeral_key(keys.pub, ns, secret, esk);
  auto b = lc::encrypt_with_ephemeral_key(keys.pub, ns, secret, esk);
  RC_ASSERT(a.ok());
  RC_ASSERT(*a == *b);
  auto opened = lc::decrypt(keys.priv, *a);  // opened by libsodium's crypto_box_seal_open
  RC_ASSERT(opened.ok());
  RC_ASSERT(opened->secret.view() == secret);
}

RC_GTEST_PROP(CryptProp, AnyChangeOfTheCipherFieldIsRejected, ()) {
  const auto keys = key_pair(*gen_seed());
  const auto ns = *gen_namespace();
  const auto secret = *gen_secret();
  auto value = lc::encrypt(keys.pub, ns, secret);
  RC_ASSERT(value.ok());
  const std::size_t start = value->rfind(':') + 1;
  const auto original = lc::parse_v2(*value);
  RC_ASSERT(original.ok());

  // A changed base64 character: rejected, unless it only touched the unused
  // trailing bits of the last character (the decoded bytes are then equal).
  std::string changed = *value;
  const auto index = *rc::gen::inRange(start, changed.size());
  const auto replacement = static_cast<char>(*rc::gen::inRange(0, 256));
  RC_PRE(replacement != changed[index]);
  changed[index] = replacement;
  auto opened = lc::decrypt(keys.priv, changed);
  if (opened.ok()) {
    auto fields = lc::parse_v2(changed);
    RC_ASSERT(fields.ok());
    RC_ASSERT(fields->cipher == original->cipher);
  }

  // A changed byte of the sealed box itself is always rejected.
  std::string cipher = original->cipher;
  const auto byte = *rc::gen::inRange<std::size_t>(0, cipher.size());
  cipher[byte] = static_cast<char>(cipher[byte] ^ *rc::gen::inRange(1, 256));
  const auto tampered = value->substr(0, start) + lc::base64_encode(cipher);
  auto rejected = lc::decrypt(keys.priv, tampered);
  RC_ASSERT(!rejected.ok());
  RC_ASSERT(rejected.error() == "decryption error. This usually means the key is wrong.");
}

RC_GTEST_PROP(CryptProp, Base64DecodeInvertsEncode, ()) {
  const auto bytes = *gen_bytes();
  const auto text = lc::base64_encode(bytes);
  auto decoded = lc::base64_decode(text);
  RC_ASSERT(decoded.ok());
  RC_ASSERT(*decoded == bytes);
  std::string unpadded = text;
  while (!unpadded.empty() && unpadded.back() == '=') unpadded.pop_back();
  auto decoded_unpadded = lc::base64_decode(unpadded);
  RC_ASSERT(decoded_unpadded.ok());
  RC_ASSERT(*decoded_unpadded == bytes);
}

RC_GTEST_PROP(CryptProp, ParsersNeverCrashOnArbitraryStrings, ()) {
  const auto text = *gen_bytes();
  const auto fixed_key = lc::parse_private_keys(kPrivateKeyFile);
  RC_ASSERT(fixed_key.ok());
  for (const std::string& candidate : {text, "v2:" + text, "v2:a:b:c:" + text}) {
    auto fields = lc::parse_v2(candidate);
    if (fields.ok()) {
      RC_ASSERT(fields->key_hash.find(':') == std::string::npos);
    }
    auto opened = lc::decrypt(fixed_key->front(), candidate);
    if (opened.ok()) RC_ASSERT(opened->ns.find(':') == std::string::npos);
    (void)lc::base64_decode(candidate);
    (void)lc::check_key(lc::parse_public_key(kPublicKeyFile).value(), candidate);
  }
  (void)lc::parse_public_key(text);
  (void)lc::parse_public_key("ssh-ed25519 " + raw_b64(text));
  (void)lc::parse_public_key("ssh-rsa " + raw_b64(text));
  auto keys = lc::parse_private_keys(text);
  if (keys.ok()) RC_ASSERT(!keys->empty());
  keys = lc::parse_private_keys(pem(text));
  if (keys.ok()) RC_ASSERT(!keys->empty());
}

RC_GTEST_PROP(CryptProp, PrivateKeyParserSurvivesMutatedContainers, ()) {
  const auto count = *rc::gen::inRange(1, 4);
  std::vector<RawKey> raws;
  for (int i = 0; i < count; ++i) raws.push_back(raw_key_from_seed(*gen_seed()));
  const std::string text = openssh_container(raws);
  const std::string body = text.substr(36, text.size() - 36 - 34);
  std::string compact;
  for (const char c : body) {
    if (c != '\n') compact += c;
  }
  auto binary = lc::base64_decode(compact);
  RC_ASSERT(binary.ok());
  std::string mutated = *binary;
  const auto changes = *rc::gen::inRange(1, 8);
  for (int i = 0; i < changes; ++i) {
    const auto at = *rc::gen::inRange<std::size_t>(0, mutated.size());
    mutated[at] = *rc::gen::arbitrary<char>();
  }
  if (*rc::gen::arbitrary<bool>()) {
    mutated.resize(*rc::gen::inRange<std::size_t>(0, mutated.size()));
  }
  auto keys = lc::parse_private_keys(pem(mutated));
  if (keys.ok()) {
    RC_ASSERT(!keys->empty());
    for (const auto& key : *keys) {
      if (key.type == lc::KeyType::ed25519) RC_ASSERT(key.private_value.size() == 64u);
    }
  }
}
