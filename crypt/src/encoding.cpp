// Short hash, base64 (docs/crypt.md, "5. The format"), namespace and UTF-8 rules.
#include <sodium.h>

#include <cstdint>
#include <string>

#include "lithos/crypt/crypt.hpp"

namespace lithos::crypt {

bool ensure_sodium() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

std::string short_hash(std::string_view bytes) {
  ensure_sodium();
  unsigned char digest[6];
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(bytes.data()),
                     bytes.size(), nullptr, 0);
  return base64_encode({reinterpret_cast<const char*>(digest), sizeof digest});
}

std::string blake2b_512(std::string_view bytes) {
  ensure_sodium();
  std::string digest(64, '\0');
  crypto_generichash(reinterpret_cast<unsigned char*>(digest.data()), digest.size(),
                     reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), nullptr,
                     0);
  return digest;
}

std::string base64_encode(std::string_view bytes) {
  const std::size_t length =
      sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  std::string out(length, '\0');  // includes the terminating NUL
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(length - 1);
  return out;
}

namespace {

constexpr int kInvalid = -1;

int base64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return kInvalid;
}

std::string invalid_byte(unsigned char byte, std::size_t offset) {
  return "Invalid byte " + std::to_string(byte) + ", offset " + std::to_string(offset) + ".";
}

// Appends the bytes encoded by `count` sextets (count in {2,3,4}); trailing
// bits that do not fill a byte are dropped, whatever their value.
void flush_quantum(std::string& out, const int* sextets, int count) {
  std::uint32_t bits = 0;
  for (int i = 0; i < 4; ++i) bits = (bits << 6) | (i < count ? std::uint32_t(sextets[i]) : 0u);
  const int bytes = count * 6 / 8;
  for (int i = 0; i < bytes; ++i) out.push_back(char((bits >> (16 - 8 * i)) & 0xff));
}

}  // namespace

// The decoder the original used (crates.io `base64` with the standard
// config): the length is checked first, then bytes are scanned in order. `=`
// is only accepted as a suffix of the final block (the last len % 8 bytes, or
// the last 8), at a position of at least 2 within its quantum.
Result<std::string> base64_decode(std::string_view text) {
  const std::size_t n = text.size();
  if (n % 4 == 1) {
    const auto last = static_cast<unsigned char>(text.back());
    if (last != '=' && base64_value(last) == kInvalid) return fail(invalid_byte(last, n - 1));
    return fail(std::string("Encoded text cannot have a 6-bit remainder."));
  }
  const std::size_t tail = n % 8 == 0 ? (n < 8 ? n : 8) : n % 8;
  const std::size_t tail_start = n - tail;

  std::string out;
  out.reserve(n / 4 * 3 + 3);
  int sextets[4];
  int count = 0;
  for (std::size_t i = 0; i < tail_start; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const int v = base64_value(c);
    if (v == kInvalid) return fail(invalid_byte(c, i));
    sextets[count++] = v;
    if (count == 4) {
      flush_quantum(out, sextets, 4);
      count = 0;
    }
  }
  // Final block: tail_start is a multiple of 4, so `count` is 0 here.
  std::size_t padding = 0;
  std::size_t first_padding = 0;
  for (std::size_t i = 0; i < tail; ++i) {
    const auto c = static_cast<unsigned char>(text[tail_start + i]);
    if (c == '=') {
      if (i % 4 < 2) {
        return fail(invalid_byte(c, tail_start + (padding > 0 ? first_padding : i)));
      }
      if (padding == 0) first_padding = i;
      ++padding;
      continue;
    }
    if (padding > 0) return fail(invalid_byte('=', tail_start + first_padding));
    const int v = base64_value(c);
    if (v == kInvalid) return fail(invalid_byte(c, tail_start + i));
    sextets[count++] = v;
    if (count == 4) {
      flush_quantum(out, sextets, 4);
      count = 0;
    }
  }
  // morsels % 4 is never 1 here: a length of 1 mod 4 was rejected above and a
  // `=` at quantum position 1 is an invalid byte.
  if (count >= 2) flush_quantum(out, sextets, count);
  return out;
}

bool valid_namespace(std::string_view ns) {
  for (const char ch : ns) {
    const auto c = static_cast<unsigned char>(ch);
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace lithos::crypt
