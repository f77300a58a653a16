// Unit tests of the crypt library: the fixed test vector, base64 rules, OpenSSH key
// files, the v2 parser, encryption/decryption messages and the knot's decoding.
// One file over 600 lines on purpose: one library, one test vector.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "crypt_test_support.hpp"
#include "lithos/crypt/crypt.hpp"
#include "lithos/crypt/keys.hpp"
#include "lithos/crypt/secrets.hpp"

namespace lc = lithos::crypt;
using namespace crypt_test;

namespace {

std::string key_bytes(const lc::Ed25519PublicKey& key) {
  return {reinterpret_cast<const char*>(key.data()), key.size()};
}

lc::PublicKey vector_public_key() {
  auto key = lc::parse_public_key(kPublicKeyFile);
  EXPECT_TRUE(key.ok()) << key.error();
  return *key;
}

std::vector<lc::PrivateKey> vector_private_keys() {
  auto keys = lc::parse_private_keys(kPrivateKeyFile);
  EXPECT_TRUE(keys.ok()) << keys.error();
  return std::move(*keys);
}

lc::PrivateKey private_key_from_seed(int n) {
  auto keys = lc::parse_private_keys(openssh_container({raw_key_from_seed(seed_of(n))}));
  EXPECT_TRUE(keys.ok());
  return std::move(keys->front());
}

lc::PublicKey public_key_from_seed(int n) {
  const RawKey raw = raw_key_from_seed(seed_of(n));
  auto key = lc::parse_public_key("ssh-ed25519 " + raw_b64(ed25519_public_blob(raw)) + " k\n");
  EXPECT_TRUE(key.ok());
  return *key;
}

std::string error_of(const lithos::Result<lc::Decrypted>& r) {
  return r.ok() ? "OK" : r.error();
}

// Replaces field `index` (0-based) of a v2 string.
std::string with_field(const std::string& v2, int index, const std::string& value) {
  std::vector<std::string> fields;
  std::size_t start = 0;
  while (true) {
    const auto colon = v2.find(':', start);
    fields.push_back(v2.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  fields.at(index) = value;
  std::string out;
  for (std::size_t i = 0; i < fields.size(); ++i) out += (i ? ":" : "") + fields[i];
  return out;
}

}  // namespace

// ---- short hash ---------------------------------------------------------------

TEST(CryptShortHash, SpecExamples) {
  EXPECT_EQ(lc::short_hash("the_secret"), "8MtOoWUX");
  EXPECT_EQ(lc::short_hash("myapp"), "KqWSX0BY");
  EXPECT_EQ(lc::short_hash(""), "3dnEB2f5");
  EXPECT_EQ(lc::short_hash(unhex(kEdPublicHex)), "i4+dWTpg");
}

TEST(CryptShortHash, IsTrueBlake2b48NotATruncation) {
  unsigned char full[64];
  crypto_generichash(full, 64, reinterpret_cast<const unsigned char*>("myapp"), 5, nullptr, 0);
  EXPECT_NE(lc::short_hash("myapp"), lc::base64_encode({reinterpret_cast<const char*>(full), 6}));
  EXPECT_EQ(lc::short_hash("x").size(), 8u);
}

// ---- base64 -------------------------------------------------------------------

TEST(CryptBase64, EncodesStandardWithPadding) {
  EXPECT_EQ(lc::base64_encode(""), "");
  EXPECT_EQ(lc::base64_encode("A"), "QQ==");
  EXPECT_EQ(lc::base64_encode("AB"), "QUI=");
  EXPECT_EQ(lc::base64_encode("\xfb\xff"), "+/8=");
}

TEST(CryptBase64, LenientDecoding) {
  struct Case {
    std::string input;
    std::string expected;  // decoded bytes, or the error message
    bool ok;
  };
  const std::vector<Case> cases = {
      {"", "", true},
      {"QQ==", "A", true},
      {"QQ", "A", true},    // padding optional
      {"QQ=", "A", true},   // partial padding accepted
      {"QR==", "A", true},  // non-zero trailing bits accepted
      {"QUJD", "ABC", true},
      {"QUJDRA", "ABCD", true},
      {"+/8=", "\xfb\xff", true},
      {"Q", "Encoded text cannot have a 6-bit remainder.", false},
      {"QQ===", "Encoded text cannot have a 6-bit remainder.", false},
      {"QUJD!", "Invalid byte 33, offset 4.", false},
      {"QQ=A", "Invalid byte 61, offset 2.", false},
      {"Q===", "Invalid byte 61, offset 1.", false},
      {"====", "Invalid byte 61, offset 0.", false},
      {"QUJD====", "Invalid byte 61, offset 4.", false},
      {"QUJ===", "Invalid byte 61, offset 3.", false},  // excess padding
      {"QQ==QUJDQUJD", "Invalid byte 61, offset 2.", false},
      {"QU JDA", "Invalid byte 32, offset 2.", false},                  // no whitespace
      {"QU JD", "Encoded text cannot have a 6-bit remainder.", false},  // length first
      {"QUJD\n", "Invalid byte 10, offset 4.", false},
      {"QU-_", "Invalid byte 45, offset 2.", false},  // not the URL alphabet
      {"QUJDQUJD\xff", "Invalid byte 255, offset 8.", false},
  };
  for (const auto& c : cases) {
    auto r = lc::base64_decode(c.input);
    ASSERT_EQ(r.ok(), c.ok) << c.input;
    EXPECT_EQ(c.ok ? *r : r.error(), c.expected) << c.input;
  }
}

// ---- public keys --------------------------------------------------------------

TEST(CryptPublicKey, ParsesSpecKey) {
  const auto key = vector_public_key();
  EXPECT_EQ(key.type, lc::KeyType::ed25519);
  EXPECT_EQ(hex(key_bytes(key.ed25519)), kEdPublicHex);
  EXPECT_EQ(key.comment, "test@lithos");
}

TEST(CryptPublicKey, OnlyFirstLineAndNoPaddingNeeded) {
  std::string text = kPublicKeyFile;
  const auto eq = text.find("G4 ");
  ASSERT_NE(eq, std::string::npos);
  auto no_comment = lc::parse_public_key(text.substr(0, eq + 2) + "\r\ngarbage\n");
  ASSERT_TRUE(no_comment.ok()) << no_comment.error();
  EXPECT_EQ(hex(key_bytes(no_comment->ed25519)), kEdPublicHex);
  EXPECT_FALSE(lc::parse_public_key("\n" + kPublicKeyFile).ok());  // first line is empty
}

TEST(CryptPublicKey, Errors) {
  const RawKey raw = raw_key_from_seed(seed_of(1));
  const std::string blob = raw_b64(ed25519_public_blob(raw));
  EXPECT_EQ(lc::parse_public_key("").error(), "invalid key format");
  EXPECT_EQ(lc::parse_public_key("ssh-ed25519\n").error(), "invalid key format");
  EXPECT_EQ(lc::parse_public_key("ssh-ed25519 !!!!\n").error(), "invalid key format");
  EXPECT_EQ(lc::parse_public_key("ecdsa-sha2-nistp256 AAAA x\n").error(),
            "unsupported key type \"ecdsa-sha2-nistp256\"");
  // The type inside the blob must match the first token (a fix over the original).
  EXPECT_EQ(lc::parse_public_key("ssh-rsa " + blob + "\n").error(), "invalid key format");
  // The key string must be exactly 32 bytes.
  SshWriter w;
  w.str("ssh-ed25519");
  w.str(std::string(31, 'x'));
  EXPECT_EQ(lc::parse_public_key("ssh-ed25519 " + raw_b64(w.data)).error(), "invalid key format");
  // Truncated blob.
  EXPECT_EQ(lc::parse_public_key("ssh-ed25519 " + raw_b64(ed25519_public_blob(raw).substr(0, 40)))
                .error(),
            "invalid key format");
}

TEST(CryptPublicKey, SshKeygenKeys) {
  TempDir dir;
  const auto ed = ssh_keygen(dir, "ed");
  auto key = lc::read_public_key_file(ed + ".pub");
  ASSERT_TRUE(key.ok()) << key.error();
  EXPECT_EQ(key->type, lc::KeyType::ed25519);
  EXPECT_EQ(key->comment, "ed");

  const auto rsa = ssh_keygen(dir, "rsa", "rsa");
  auto rsa_key = lc::read_public_key_file(rsa + ".pub");
  ASSERT_TRUE(rsa_key.ok()) << rsa_key.error();
  EXPECT_EQ(rsa_key->type, lc::KeyType::rsa);
  EXPECT_EQ(lc::encrypt(*rsa_key, "", "x").error(), "Only ed25519 keys are supported");
  EXPECT_EQ(lc::check_key(*rsa_key, kVector).error(), "Only ed25519 keys are supported");

  const auto ecdsa = ssh_keygen(dir, "ecdsa", "ecdsa");
  EXPECT_EQ(lc::read_public_key_file(ecdsa + ".pub").error(),
            "unsupported key type \"ecdsa-sha2-nistp256\"");
  const auto missing = dir.file("missing.pub");
  EXPECT_EQ(lc::read_public_key_file(missing).error(), missing + ": No such file or directory");
}

// ---- private keys -------------------------------------------------------------

TEST(CryptPrivateKey, ParsesSpecKey) {
  const auto keys = vector_private_keys();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].type, lc::KeyType::ed25519);
  EXPECT_EQ(hex(key_bytes(keys[0].public_key)), kEdPublicHex);
  EXPECT_EQ(hex(keys[0].private_value.view()), kSeedHex + kEdPublicHex);
  EXPECT_EQ(keys[0].comment, "test@lithos");
}

TEST(CryptPrivateKey, SshKeygenKeys) {
  TempDir dir;
  const auto ed = ssh_keygen(dir, "ed");
  auto keys = lc::read_private_key_file(ed);
  ASSERT_TRUE(keys.ok()) << keys.error();
  ASSERT_EQ(keys->size(), 1u);
  auto pub = lc::read_public_key_file(ed + ".pub");
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(keys->front().public_key, pub->ed25519);

  auto rsa = lc::read_private_key_file(ssh_keygen(dir, "rsa", "rsa"));
  ASSERT_TRUE(rsa.ok()) << rsa.error();
  ASSERT_EQ(rsa->size(), 1u);
  EXPECT_EQ(rsa->front().type, lc::KeyType::rsa);
  EXPECT_EQ(error_of(lc::decrypt(rsa->front(), kVector)), "Only ed25519 keys are supported");

  EXPECT_EQ(lc::read_private_key_file(ssh_keygen(dir, "ecdsa", "ecdsa")).error(),
            "unsupported key type \"ecdsa-sha2-nistp256\"");
  EXPECT_EQ(lc::read_private_key_file(ssh_keygen(dir, "enc", "ed25519", "passphrase")).error(),
            "key was encrypted");
}

TEST(CryptPrivateKey, PemRsaKeyIsRecognised) {
  TempDir dir;
  const auto path = dir.file("pem");
  const auto r =
      run({"ssh-keygen", "-q", "-t", "rsa", "-b", "1024", "-m", "PEM", "-N", "", "-f", path});
  ASSERT_EQ(r.status, 0) << r.err;
  auto keys = lc::read_private_key_file(path);
  ASSERT_TRUE(keys.ok()) << keys.error();
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ(keys->front().type, lc::KeyType::rsa);
}

TEST(CryptPrivateKey, ConcatenatedPemBlocksYieldAllKeys) {
  TempDir dir;
  const auto a = ssh_keygen(dir, "a");
  const auto b = ssh_keygen(dir, "b");
  auto keys = lc::parse_private_keys(read_file(a) + read_file(b) + "\n" + kPrivateKeyFile +
                                     "trailing text is ignored\n");
  ASSERT_TRUE(keys.ok()) << keys.error();
  ASSERT_EQ(keys->size(), 3u);
  EXPECT_EQ((*keys)[0].comment, "a");
  EXPECT_EQ((*keys)[1].comment, "b");
  EXPECT_EQ((*keys)[2].comment, "test@lithos");
  // A malformed later block fails the whole file.
  EXPECT_EQ(lc::parse_private_keys(read_file(a) + "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"
                                                  "-----END OPENSSH PRIVATE KEY-----\n")
                .error(),
            "unsupported key type \"\"");
}

TEST(CryptPrivateKey, MultiKeyContainerUsesOpensshLayout) {
  const std::vector<RawKey> raws = {raw_key_from_seed(seed_of(1)), raw_key_from_seed(seed_of(2)),
                                    raw_key_from_seed(seed_of(3))};
  auto keys = lc::parse_private_keys(openssh_container(raws));
  ASSERT_TRUE(keys.ok()) << keys.error();
  ASSERT_EQ(keys->size(), 3u);
  for (std::size_t i = 0; i < raws.size(); ++i) {
    EXPECT_EQ((*keys)[i].public_key, raws[i].pk);
    EXPECT_EQ((*keys)[i].comment, "key" + std::to_string(i));
    EXPECT_EQ((*keys)[i].private_value.view(),
              std::string_view(reinterpret_cast<const char*>(raws[i].sk.data()), 64));
  }
  // A secret for the second key decrypts with the container.
  auto value = lc::encrypt(public_key_from_seed(2), "ns", "two");
  ASSERT_TRUE(value.ok());
  auto opened = lc::decrypt(*keys, *value);
  ASSERT_TRUE(opened.ok()) << opened.error();
  EXPECT_EQ(opened->secret.view(), "two");
}

TEST(CryptPrivateKey, MalformedFiles) {
  const RawKey raw = raw_key_from_seed(seed_of(1));
  EXPECT_EQ(lc::parse_private_keys("").error(), "unsupported key type \"unknown\"");
  EXPECT_EQ(lc::parse_private_keys(" " + kPrivateKeyFile).error(),
            "unsupported key type \"unknown\"");
  EXPECT_EQ(lc::parse_private_keys(kPublicKeyFile).error(), "unsupported key type \"unknown\"");
  // Missing END marker.
  EXPECT_EQ(lc::parse_private_keys(kPrivateKeyFile.substr(0, 200)).error(), "invalid key format");
  // Body that is not base64.
  EXPECT_EQ(lc::parse_private_keys("-----BEGIN OPENSSH PRIVATE KEY-----\n%%%%\n"
                                   "-----END OPENSSH PRIVATE KEY-----\n")
                .error(),
            "invalid key format");
  // The private value must be 64 bytes (the original crashed).
  EXPECT_EQ(lc::parse_private_keys(openssh_container({raw}, 63)).error(), "invalid key format");
  EXPECT_EQ(lc::parse_private_keys(openssh_container({raw}, 65)).error(), "invalid key format");
  // Other magic.
  std::string wrong_magic = "openssh-key-v2";
  wrong_magic += '\0';
  wrong_magic += std::string(40, 'x');
  EXPECT_EQ(lc::parse_private_keys(pem(wrong_magic)).error(),
            "unsupported key type \"openssh-key-v2\"");
  // Every truncation of a valid container is an error, never a crash.
  const std::string binary = unhex(
      hex(lc::base64_decode(
              std::string("b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"
                          "QyNTUxOQAAACADoQe/884Qvh1w3RjnS8CZZ+TWMJulDV8d3IZkElUxuAAAAJABAgMEAQID"
                          "BAAAAAtzc2gtZWQyNTUxOQAAACADoQe/884Qvh1w3RjnS8CZZ+TWMJulDV8d3IZkElUxuA"
                          "AAAEAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHwOhB7/zzhC+HXDdGOdLwJln"
                          "5NYwm6UNXx3chmQSVTG4AAAAC3Rlc3RAbGl0aG9zAQI="))
              .value()));
  ASSERT_TRUE(lc::parse_private_keys(pem(binary)).ok());
  for (std::size_t cut = 15; cut + 2 < binary.size(); ++cut) {
    auto r = lc::parse_private_keys(pem(binary.substr(0, cut)));
    EXPECT_FALSE(r.ok()) << cut;
    if (!r.ok()) {
      EXPECT_EQ(r.error(), "invalid key format") << cut;
    }
  }
  // Mismatched check integers.
  std::string bad_check = binary;
  bad_check[bad_check.find("\x01\x02\x03\x04\x01\x02\x03\x04") + 7] = 9;
  EXPECT_EQ(lc::parse_private_keys(pem(bad_check)).error(), "invalid key format");
  // N = 0
  std::string zero = binary;
  zero[zero.find("\x00\x00\x00\x01\x00\x00\x00\x33", 0, 8) + 3] = 0;
  EXPECT_EQ(lc::parse_private_keys(pem(zero)).error(), "invalid key format");
}

// ---- v2 parser ----------------------------------------------------------------

TEST(CryptV2Parse, SpecVectorFields) {
  auto fields = lc::parse_v2(kVector);
  ASSERT_TRUE(fields.ok()) << fields.error();
  EXPECT_EQ(fields->key_hash, "i4+dWTpg");
  EXPECT_EQ(fields->namespace_hash, "KqWSX0BY");
  EXPECT_EQ(fields->secret_hash, "8MtOoWUX");
  EXPECT_EQ(fields->cipher.size(), 48u + 16u);
  EXPECT_EQ(hex(fields->cipher.substr(0, 32)),
            "132c442be010fbd57e72603328aa76e71fccc1503aae219327d14d9c9993f472");
  EXPECT_EQ(hex(fields->cipher.substr(32, 16)), "e898a31705eb906eba8ff066cf70134c");
  EXPECT_EQ(hex(fields->cipher.substr(48)), "87c49bec67efd06de4e4659a32882f8e");
  EXPECT_FALSE(fields->cipher_too_short());
  // lithos_check's use: which namespace does a secret belong to?
  EXPECT_EQ(fields->namespace_hash, lc::short_hash("myapp"));
}

TEST(CryptV2Parse, Errors) {
  EXPECT_EQ(lc::parse_v2("").error(), "Only v2 secrets are supported");
  EXPECT_EQ(lc::parse_v2("v1:a:b:c:QUJD").error(), "Only v2 secrets are supported");
  EXPECT_EQ(lc::parse_v2("V2:a:b:c:QUJD").error(), "Only v2 secrets are supported");
  EXPECT_EQ(lc::parse_v2("v2").error(), "Only v2 secrets are supported");
  EXPECT_EQ(lc::parse_v2("v2:a:b:QUJD").error(), "invalid key format");
  EXPECT_EQ(lc::parse_v2("v2:a:b:c:QUJD:").error(), "invalid key format");
  EXPECT_EQ(lc::parse_v2("v2:a:b:c:d:QUJD").error(), "invalid key format");
  EXPECT_EQ(lc::parse_v2("v2:a:b:c:Q").error(), "Encoded text cannot have a 6-bit remainder.");
  EXPECT_EQ(lc::parse_v2("v2:a:b:c:QU JDA").error(), "Invalid byte 32, offset 2.");
  auto short_cipher = lc::parse_v2("v2:a:b:c:QQ");
  ASSERT_TRUE(short_cipher.ok());
  EXPECT_TRUE(short_cipher->cipher_too_short());
  auto empty = lc::parse_v2("v2::::");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->cipher.empty());
}

// ---- encryption and the test vector ----------------------------------------------

TEST(CryptEncrypt, ReproducesSpecVectorWithInjectedEphemeralKey) {
  std::array<unsigned char, 32> esk;
  esk.fill(0x42);
  auto value = lc::encrypt_with_ephemeral_key(vector_public_key(), "myapp", "the_secret", esk);
  ASSERT_TRUE(value.ok()) << value.error();
  EXPECT_EQ(*value, kVector);
}

TEST(CryptEncrypt, RandomEphemeralKeys) {
  const auto key = vector_public_key();
  auto a = lc::encrypt(key, "myapp", "the_secret");
  auto b = lc::encrypt(key, "myapp", "the_secret");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->substr(0, 30), "v2:i4+dWTpg:KqWSX0BY:8MtOoWUX:");
  EXPECT_EQ(b->substr(0, 30), a->substr(0, 30));
  EXPECT_NE(*a, *b);
  EXPECT_EQ(a->size(), kVector.size());
}

TEST(CryptEncrypt, RejectsBadInput) {
  const auto key = vector_public_key();
  EXPECT_EQ(lc::encrypt(key, "my:app", "x").error(),
            "invalid namespace \"my:app\": must match ^[a-zA-Z0-9_.-]*$");
  EXPECT_FALSE(lc::encrypt(key, "a b", "x").ok());
  EXPECT_FALSE(lc::encrypt(key, "é", "x").ok());
  EXPECT_EQ(lc::encrypt(key, "ns", std::string("a\0b", 3)).error(),
            "no null bytes allowed in secret");
  EXPECT_TRUE(lc::encrypt(key, "A-z_0.9", "").ok());
  // Small-order / invalid points are refused by libsodium's conversion.
  lc::PublicKey weak = key;
  weak.ed25519.fill(0);
  weak.ed25519[0] = 1;  // y = 1: the identity point
  EXPECT_EQ(lc::encrypt(weak, "", "x").error(), "invalid public key");
}

TEST(CryptNamespace, Regex) {
  EXPECT_TRUE(lc::valid_namespace(""));
  EXPECT_TRUE(lc::valid_namespace("abc-XYZ_0.9"));
  for (const char* bad : {":", " ", "a/b", "a+b", "\n", "ü", "a*"}) {
    EXPECT_FALSE(lc::valid_namespace(bad)) << bad;
  }
}

TEST(CryptUtf8, Strict) {
  EXPECT_TRUE(lc::valid_utf8(""));
  EXPECT_TRUE(lc::valid_utf8("héllo wörld ✓ 😀"));
  EXPECT_FALSE(lc::valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(lc::valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(lc::valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(lc::valid_utf8("\xe2\x9c"));          // truncated
  EXPECT_FALSE(lc::valid_utf8("\xff"));
}

// ---- decrypt and check-key ----------------------------------------------------------

TEST(CryptDecrypt, SpecVector) {
  const auto keys = vector_private_keys();
  auto opened = lc::decrypt(keys.front(), kVector);
  ASSERT_TRUE(opened.ok()) << opened.error();
  EXPECT_EQ(opened->ns, "myapp");
  EXPECT_EQ(opened->secret.view(), "the_secret");
}

TEST(CryptDecrypt, StepErrors) {
  const auto keys = vector_private_keys();
  const auto& key = keys.front();
  const auto other = private_key_from_seed(7);
  const RawKey raw = raw_key_from_seed(unhex(kSeedHex));
  EXPECT_EQ(error_of(lc::decrypt(key, "v1:x")), "Only v2 secrets are supported");
  EXPECT_EQ(error_of(lc::decrypt(key, "v2:a:b:c")), "invalid key format");
  EXPECT_EQ(error_of(lc::decrypt(key, "v2:a:b:c:d:e")), "invalid key format");
  EXPECT_EQ(error_of(lc::decrypt(key, "v2:a:b:c:Q")),
            "Encoded text cannot have a 6-bit remainder.");
  const std::string wrong_key = "decryption error. This usually means the key is wrong.";
  EXPECT_EQ(error_of(lc::decrypt(other, kVector)), wrong_key);
  // A cipher shorter than 48 bytes is an error, not a crash (the original crashed).
  EXPECT_EQ(error_of(lc::decrypt(key, "v2:a:b:c:")), wrong_key);
  EXPECT_EQ(error_of(lc::decrypt(key, "v2:a:b:c:QUJD")), wrong_key);
  const std::string cipher = kVector.substr(kVector.rfind(':') + 1);
  EXPECT_EQ(error_of(lc::decrypt(key, with_field(kVector, 4, cipher.substr(0, 64)))), wrong_key);
  // Tampered byte inside the box.
  std::string tampered = cipher;
  tampered[50] = tampered[50] == 'A' ? 'B' : 'A';
  EXPECT_EQ(error_of(lc::decrypt(key, with_field(kVector, 4, tampered))), wrong_key);
  // Hash fields are checked after decryption, in step order.
  EXPECT_EQ(error_of(lc::decrypt(key, with_field(kVector, 1, "AAAAAAAA"))), "invalid key hash");
  EXPECT_EQ(error_of(lc::decrypt(key, with_field(with_field(kVector, 1, "x"), 2, "x"))),
            "invalid key hash");
  EXPECT_EQ(error_of(lc::decrypt(key, with_field(kVector, 2, "AAAAAAAA"))),
            "invalid namespace hash");
  EXPECT_EQ(error_of(lc::decrypt(key, with_field(kVector, 3, "AAAAAAAA"))), "invalid secret hash");
  // Plaintext without ':'.
  EXPECT_EQ(error_of(lc::decrypt(key, raw_v2(raw.pk, "nocolon", raw_short("nocolon"), "x"))),
            "decrypted data is invalid");
  // The secret may contain ':'; the namespace ends at the first one.
  auto colons = lc::decrypt(key, raw_v2(raw.pk, "ns:a:b", raw_short("ns"), raw_short("a:b")));
  ASSERT_TRUE(colons.ok()) << colons.error();
  EXPECT_EQ(colons->ns, "ns");
  EXPECT_EQ(colons->secret.view(), "a:b");
  // A non-UTF-8 namespace: only the knot's mode checks it (before the ':').
  const std::string bad_ns = "\xff\xfe";
  const std::string v = raw_v2(raw.pk, bad_ns + ":s", raw_short(bad_ns), raw_short("s"));
  EXPECT_TRUE(lc::decrypt(key, v).ok());
  lc::DecryptOptions knot;
  knot.require_utf8_namespace = true;
  EXPECT_EQ(error_of(lc::decrypt(key, v, knot)), "can't decode namespace from utf-8");
  EXPECT_EQ(error_of(lc::decrypt(key, raw_v2(raw.pk, "\xff", "x", "y"), knot)),
            "can't decode namespace from utf-8");
}

TEST(CryptDecrypt, KeyListTriesLastKeyFirstThenOthers) {
  std::vector<lc::PrivateKey> keys;
  keys.push_back(vector_private_keys().front().clone());
  keys.push_back(private_key_from_seed(7));
  auto opened = lc::decrypt(keys, kVector);
  ASSERT_TRUE(opened.ok()) << opened.error();
  EXPECT_EQ(opened->secret.view(), "the_secret");
  // On failure the message is the last key's.
  EXPECT_EQ(error_of(lc::decrypt(keys, "v2:a:b:c:QUJD")),
            "decryption error. This usually means the key is wrong.");
  EXPECT_EQ(error_of(lc::decrypt(std::vector<lc::PrivateKey>{}, kVector)), "invalid key format");
}

TEST(CryptCheckKey, Messages) {
  const auto key = vector_public_key();
  EXPECT_TRUE(lc::check_key(key, kVector).ok());
  EXPECT_TRUE(lc::check_key(key, "v2:i4+dWTpg").ok());  // nothing else is verified
  EXPECT_EQ(lc::check_key(key, "v1:i4+dWTpg:a:b:c").error(), "Only v2 secrets are supported");
  EXPECT_EQ(lc::check_key(key, "v2:").error(), "key doesn't match");
  EXPECT_EQ(lc::check_key(public_key_from_seed(3), kVector).error(), "key doesn't match");
}

// ---- the knot's decoding ---------------------------------------------------------

TEST(CryptKnot, AllowedNamespaces) {
  using Set = std::set<std::string>;
  EXPECT_EQ(lc::allowed_namespaces({}, {}), Set{""});
  EXPECT_EQ(lc::allowed_namespaces({"a"}, {}), Set{"a"});
  EXPECT_EQ(lc::allowed_namespaces({}, {"b"}), (Set{"", "b"}));
  EXPECT_EQ(lc::allowed_namespaces({"a", "c"}, {"b"}), (Set{"a", "b", "c"}));
}

TEST(CryptKnot, SpecVectorNeedsItsNamespace) {
  const auto keys = vector_private_keys();
  auto ok = lc::decode_secrets(keys, {"myapp"}, {}, {{"SECRET", {kVector}}});
  ASSERT_TRUE(ok.ok()) << ok.error();
  ASSERT_EQ(ok->size(), 1u);
  EXPECT_EQ((*ok)[0].name, "SECRET");
  EXPECT_EQ((*ok)[0].value.view(), "the_secret");
  // Through extra-secrets-namespaces.
  EXPECT_TRUE(lc::decode_secrets(keys, {}, {"myapp"}, {{"SECRET", {kVector}}}).ok());
  // Default: exactly the empty namespace.
  EXPECT_EQ(lc::decode_secrets(keys, {}, {}, {{"SECRET", {kVector}}}).error(),
            "Error decoding secrets: Can't decrypt secret \"SECRET\", errors: expected "
            "namespaces {\"\"} got \"myapp\"");
  EXPECT_EQ(lc::decode_secrets(keys, {"b", "a"}, {"Myapp"}, {{"S", {kVector}}}).error(),
            "Error decoding secrets: Can't decrypt secret \"S\", errors: expected namespaces "
            "{\"Myapp\", \"a\", \"b\"} got \"myapp\"");
}

TEST(CryptKnot, EveryKeyTimesEveryValueInOrder) {
  TempDir dir;
  auto rsa = lc::read_private_key_file(ssh_keygen(dir, "rsa", "rsa"));
  ASSERT_TRUE(rsa.ok());
  std::vector<lc::PrivateKey> keys;
  keys.push_back(std::move(rsa->front()));
  keys.push_back(private_key_from_seed(9));
  keys.push_back(vector_private_keys().front().clone());
  const std::vector<std::string> values = {"v1:old", kVector};
  auto ok = lc::decode_secrets(keys, {"myapp"}, {}, {{"S", values}});
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ((*ok)[0].value.view(), "the_secret");

  const std::string wrong = "decryption error. This usually means the key is wrong.";
  const std::string only_v2 = "Only v2 secrets are supported";
  const std::string only_ed = "Only ed25519 keys are supported";
  EXPECT_EQ(lc::decode_secrets(keys, {"other"}, {}, {{"S", values}}).error(),
            "Error decoding secrets: Can't decrypt secret \"S\", errors: " + only_ed + ", " +
                only_ed + ", " + only_v2 + ", " + wrong + ", " + only_v2 +
                ", expected namespaces {\"other\"} got \"myapp\"");
}

TEST(CryptKnot, SecretRules) {
  const auto keys = vector_private_keys();
  const RawKey raw = raw_key_from_seed(unhex(kSeedHex));
  const std::string with_nul("a\0b", 3);
  const std::string v_nul = raw_v2(raw.pk, ":" + with_nul, raw_short(""), raw_short(with_nul));
  EXPECT_EQ(lc::decode_secrets(keys, {}, {}, {{"N", {v_nul}}}).error(),
            "Error decoding secrets: Can't decrypt secret \"N\", errors: no null bytes allowed in "
            "secret");
  const std::string v_bin = raw_v2(raw.pk, ":\xff", raw_short(""), raw_short("\xff"));
  EXPECT_EQ(lc::decode_secrets(keys, {}, {}, {{"B", {v_bin}}}).error(),
            "Error decoding secrets: Can't decrypt secret \"B\", errors: Can't decode secret as "
            "utf-8");
  // An empty list of values has no attempts.
  EXPECT_EQ(lc::decode_secrets(keys, {}, {}, {{"E", {}}}).error(),
            "Error decoding secrets: Can't decrypt secret \"E\", errors: ");
}

TEST(CryptKnot, ByteSortedNamesFirstFailureAborts) {
  const auto keys = vector_private_keys();
  auto good = lc::encrypt(vector_public_key(), "", "value");
  ASSERT_TRUE(good.ok());
  auto all = lc::decode_secrets(keys, {}, {}, {{"b", {*good}}, {"A", {*good}}, {"_", {*good}}});
  ASSERT_TRUE(all.ok()) << all.error();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].name, "A");
  EXPECT_EQ((*all)[1].name, "_");
  EXPECT_EQ((*all)[2].name, "b");
  // 'B' (0x42) sorts before 'a' (0x61): the first failing variable is B.
  const auto r = lc::decode_secrets(keys, {}, {}, {{"a", {"bad"}}, {"B", {"bad"}}});
  EXPECT_EQ(r.error(),
            "Error decoding secrets: Can't decrypt secret \"B\", errors: Only v2 secrets are "
            "supported");
}

// ---- key file checks ----------------------------------------------------------------

class CryptKeyFile : public ::testing::Test {
 protected:
  lc::KeyFilePolicy own_policy() const {
    lc::KeyFilePolicy policy;
    policy.required_owner = ::geteuid();  // root in CI: the real policy
    return policy;
  }
  TempDir dir_;
};

TEST_F(CryptKeyFile, AcceptsModesThatAreSubsetsOf0600) {
  const auto path = dir_.file("key");
  for (const mode_t mode : {0600, 0400, 0200, 0000}) {
    write_file(path, kPrivateKeyFile, mode);
    if (::geteuid() != 0 && (mode & 0400) == 0) continue;  // unreadable without root
    auto keys = lc::load_secrets_private_key(path, own_policy());
    ASSERT_TRUE(keys.ok()) << std::oct << mode << ": " << keys.error();
    EXPECT_EQ(keys->size(), 1u);
  }
  // Symlinks are followed.
  write_file(path, kPrivateKeyFile, 0600);
  const auto link = dir_.file("link");
  ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);
  EXPECT_TRUE(lc::load_secrets_private_key(link, own_policy()).ok());
}

TEST_F(CryptKeyFile, RefusesLooseModes) {
  const auto path = dir_.file("key");
  for (const mode_t mode : {0644, 0640, 0604, 0700, 0660, 0606, 0610, 0601}) {
    write_file(path, kPrivateKeyFile, mode);
    EXPECT_EQ(lc::load_secrets_private_key(path, own_policy()).error(),
              "Error decoding private keys: Key's mode must be 0600")
        << std::oct << mode;
  }
}

TEST_F(CryptKeyFile, RefusesOtherOwners) {
  const auto path = dir_.file("key");
  write_file(path, kPrivateKeyFile, 0600);
  if (::geteuid() == 0) {
    // Really owned by someone else: the default policy (root) refuses it.
    ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);
    EXPECT_EQ(lc::load_secrets_private_key(path).error(),
              "Error decoding private keys: Key must be owned by root");
    ASSERT_EQ(::chown(path.c_str(), 0, 0), 0);
    EXPECT_TRUE(lc::load_secrets_private_key(path).ok());
  } else {
    EXPECT_EQ(lc::load_secrets_private_key(path).error(),
              "Error decoding private keys: Key must be owned by root");
  }
  lc::KeyFilePolicy someone_else;
  someone_else.required_owner = ::geteuid() + 1;
  EXPECT_EQ(lc::load_secrets_private_key(path, someone_else).error(),
            "Error decoding private keys: Key must be owned by root");
}

TEST_F(CryptKeyFile, OtherErrors) {
  const auto missing = dir_.file("missing");
  EXPECT_EQ(lc::load_secrets_private_key(missing, own_policy()).error(),
            "Error decoding private keys: " + missing);
  EXPECT_EQ(lc::load_secrets_private_key(dir_.path().string(), own_policy()).error(),
            "Error decoding private keys: Key must be a regular file");
  const auto garbage = dir_.file("garbage");
  write_file(garbage, "not a key\n", 0600);
  EXPECT_EQ(lc::load_secrets_private_key(garbage, own_policy()).error(),
            "Error decoding private keys: unsupported key type \"unknown\"");
  const auto truncated = dir_.file("truncated");
  write_file(truncated, kPrivateKeyFile.substr(0, 120), 0600);
  EXPECT_EQ(lc::load_secrets_private_key(truncated, own_policy()).error(),
            "Error decoding private keys: invalid key format");
  const auto big = dir_.file("big");
  write_file(big, kPrivateKeyFile + std::string(2 << 20, '\n'), 0600);
  EXPECT_EQ(lc::load_secrets_private_key(big, own_policy()).error(),
            "Error decoding private keys: Key file is too large");
}

// ---- SecureBuffer --------------------------------------------------------------

TEST(CryptSecureBuffer, Semantics) {
  lc::SecureBuffer a(std::string_view("secret"));
  EXPECT_EQ(a.view(), "secret");
  lc::SecureBuffer b = a.clone();
  lc::SecureBuffer c = std::move(a);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(c.view(), "secret");
  c.truncate(3);
  EXPECT_EQ(c.view(), "sec");
  c.truncate(10);
  EXPECT_EQ(c.view(), "sec");
  c.clear();
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(b.view(), "secret");
  lc::SecureBuffer zeros(4);
  EXPECT_EQ(zeros.view(), std::string(4, '\0'));
}

TEST(CryptDebugQuote, EscapesLikeTheOriginal) {
  EXPECT_EQ(lc::debug_quote(""), "\"\"");
  EXPECT_EQ(lc::debug_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(lc::debug_quote("\n\t\r"), "\"\\n\\t\\r\"");
  EXPECT_EQ(lc::debug_quote(std::string("\0\x1b", 2)), "\"\\0\\u{1b}\"");
  EXPECT_EQ(lc::debug_quote("é"), "\"é\"");
  EXPECT_EQ(lc::debug_quote("\xff"), "\"\\xff\"");
}
