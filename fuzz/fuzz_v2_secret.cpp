// libFuzzer target: v2 secret parsing and decryption, base64, and both
// OpenSSH key-file parsers. Nothing may crash, leak or read out of bounds.
//
//   fuzz_v2_secret corpus/fuzz/v2_secret
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "lithos/crypt/crypt.hpp"
#include "lithos/crypt/keys.hpp"

namespace {

namespace lc = lithos::crypt;

// The test vector's key pair (tests/crypt_test_support.hpp), so that
// decryption paths past the box are reachable.
const char kPublicKey[] =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4 t\n";
const char kPrivateKey[] =
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACADoQe/884Qvh1w3RjnS8CZZ+TWMJulDV8d3IZkElUxuAAAAJABAgMEAQID\n"
    "BAAAAAtzc2gtZWQyNTUxOQAAACADoQe/884Qvh1w3RjnS8CZZ+TWMJulDV8d3IZkElUxuA\n"
    "AAAEAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHwOhB7/zzhC+HXDdGOdLwJln\n"
    "5NYwm6UNXx3chmQSVTG4AAAAC3Rlc3RAbGl0aG9zAQI=\n"
    "-----END OPENSSH PRIVATE KEY-----\n";

void check(bool condition) {
  if (!condition) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto public_key = lc::parse_public_key(kPublicKey);
  static const auto private_keys = lc::parse_private_keys(kPrivateKey);
  check(public_key.ok() && private_keys.ok());
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // v2 strings.
  if (auto fields = lc::parse_v2(input); fields.ok()) {
    check(fields->key_hash.find(':') == std::string::npos);
  }
  if (auto opened = lc::decrypt(private_keys->front(), input); opened.ok()) {
    check(opened->ns.find(':') == std::string::npos);
    check(lc::short_hash(opened->secret.view()) == lc::parse_v2(input)->secret_hash);
  }
  (void)lc::check_key(*public_key, input);

  // base64: whatever decodes re-encodes to something that decodes the same.
  if (auto decoded = lc::base64_decode(input); decoded.ok()) {
    auto again = lc::base64_decode(lc::base64_encode(*decoded));
    check(again.ok() && *again == *decoded);
  }

  // Key files as text, and the input as the binary body of a PEM block.
  (void)lc::parse_public_key(input);
  if (auto keys = lc::parse_private_keys(input); keys.ok()) check(!keys->empty());
  std::string pem = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
  pem += lc::base64_encode(input);
  pem += "\n-----END OPENSSH PRIVATE KEY-----\n";
  if (auto keys = lc::parse_private_keys(pem); keys.ok()) {
    for (const auto& key : *keys) {
      check(key.type != lc::KeyType::ed25519 || key.private_value.size() == 64);
    }
  }
  return 0;
}
