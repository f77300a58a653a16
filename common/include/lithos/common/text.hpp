// Text helpers shared by every module: strict UTF-8 validation, the quoting
// used in messages, hex and decimal numbers.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace lithos {

inline constexpr char kHexDigits[] = "0123456789abcdef";

// Appends BYTES as lower-case hex, two digits per byte.
inline void append_hex(std::string& out, std::string_view bytes) {
  for (char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    out += kHexDigits[byte >> 4];
    out += kHexDigits[byte & 15];
  }
}

// The bytes of lower-case hex text as append_hex writes it; nothing for an
// odd length or any other character (one spelling per byte string).
inline std::optional<std::string> decode_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int high = nibble(hex[i]), low = nibble(hex[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out += static_cast<char>(high * 16 + low);
  }
  return out;
}

// A whole decimal number of type Number: digits only (a leading '-' for a
// signed type), no space, in range; or nothing.
template <typename Number>
std::optional<Number> whole_number(std::string_view text) {
  Number value = 0;
  if (text.empty()) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}
inline std::optional<std::uint64_t> to_u64(std::string_view text) {
  return whole_number<std::uint64_t>(text);
}
inline std::optional<std::int64_t> to_i64(std::string_view text) {
  return whole_number<std::int64_t>(text);
}

// Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
inline bool valid_utf8(std::string_view bytes) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t extra;
    unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
      extra = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      extra = 2;
      if (c == 0xe0) lo = 0xa0;  // no overlong forms
      if (c == 0xed) hi = 0x9f;  // no surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      extra = 3;
      if (c == 0xf0) lo = 0x90;  // no overlong forms
      if (c == 0xf4) hi = 0x8f;  // nothing above U+10FFFF
    } else {
      return false;
    }
    if (n - i <= extra) return false;
    if (s[i + 1] < lo || s[i + 1] > hi) return false;
    for (std::size_t k = 2; k <= extra; ++k) {
      if (s[i + k] < 0x80 || s[i + k] > 0xbf) return false;
    }
    i += extra + 1;
  }
  return true;
}

// Quotes a string the way the original's messages do (Rust `{:?}` of a str):
// `"` and `\` escaped, control characters as `\n`, `\t`, `\r`, `\0` or
// `\u{XX}`; invalid UTF-8 bytes are shown as `\xNN`.
inline std::string debug_quote(std::string_view text) {
  std::string out = "\"";
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      // Copy a whole valid UTF-8 sequence, or show one invalid byte as \xNN.
      std::size_t length = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
      if (i + length <= text.size() && valid_utf8(text.substr(i, length))) {
        out.append(text.substr(i, length));
        i += length;
      } else {
        out += "\\x";
        append_hex(out, text.substr(i, 1));
        ++i;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\0':
        out += "\\0";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u{";
          if (c >= 16) out += kHexDigits[c >> 4];
          out += kHexDigits[c & 15];
          out += "}";
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += "\"";
  return out;
}

}  // namespace lithos
