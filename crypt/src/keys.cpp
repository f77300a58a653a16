// OpenSSH key files (docs/crypt.md), parsed with strict bounds checks.
#include "lithos/crypt/keys.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "internal.hpp"
#include "lithos/crypt/crypt.hpp"

namespace lithos::crypt {

namespace {

const std::string kInvalidKeyFormat = "invalid key format";
const std::string kKeyWasEncrypted = "key was encrypted";
constexpr std::string_view kOpensshBegin = "-----BEGIN OPENSSH PRIVATE KEY-----";
constexpr std::string_view kOpensshEnd = "-----END OPENSSH PRIVATE KEY-----";
constexpr std::string_view kRsaBegin = "-----BEGIN RSA PRIVATE KEY-----";
constexpr std::string_view kRsaEnd = "-----END RSA PRIVATE KEY-----";
constexpr std::string_view kMagic{"openssh-key-v1\0", 15};
// No real file holds more keys than this; bounds the work on hostile input.
constexpr std::uint32_t kMaxKeysPerContainer = 1024;

std::string unsupported(std::string_view type) {
  return "unsupported key type " + debug_quote(type);
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// SSH wire format reader (RFC 4251 section 5): every read is bounds-checked.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  bool u32(std::uint32_t& value) {
    if (data_.size() - pos_ < 4) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(data_.data() + pos_);
    value = (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
            std::uint32_t(p[3]);
    pos_ += 4;
    return true;
  }

  bool string(std::string_view& value) {
    std::uint32_t length;
    if (!u32(length)) return false;
    if (data_.size() - pos_ < length) return false;
    value = data_.substr(pos_, length);
    pos_ += length;
    return true;
  }

  bool skip_strings(int count) {
    std::string_view ignored;
    for (int i = 0; i < count; ++i) {
      if (!string(ignored)) return false;
    }
    return true;
  }

  bool literal(std::string_view expected) {
    if (data_.substr(pos_, expected.size()) != expected) return false;
    pos_ += expected.size();
    return true;
  }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

// Base64 text of a PEM body: ASCII whitespace removed, then the lenient decoder.
Result<SecureBuffer> decode_pem_body(std::string_view body) {
  SecureBuffer compact(body.size());
  std::size_t length = 0;
  for (const char c : body) {
    if (!is_space(c)) compact.data()[length++] = static_cast<unsigned char>(c);
  }
  compact.truncate(length);
  auto decoded = base64_decode(compact.view());
  if (!decoded) return fail(kInvalidKeyFormat);
  SecureBuffer out(*decoded);
  sodium_memzero(decoded->data(), decoded->size());
  return out;
}

// One `openssh-key-v1` container. OpenSSH's layout for N keys: N public key
// blobs, then one private section: check1, check2, then N times (key type,
// key fields, comment), then padding (not checked, as in the original).
Result<void> parse_openssh_container(std::string_view binary, std::vector<PrivateKey>& keys) {
  Reader reader(binary);
  if (!reader.literal(kMagic)) {
    const std::string_view head = binary.substr(0, kMagic.size());
    return fail(unsupported(head.substr(0, head.find('\0'))));
  }
  std::string_view cipher, kdf, kdf_options;
  if (!reader.string(cipher) || !reader.string(kdf) || !reader.string(kdf_options)) {
    return fail(kInvalidKeyFormat);
  }
  if (cipher != "none" || kdf != "none" || !kdf_options.empty()) return fail(kKeyWasEncrypted);
  std::uint32_t count;
  if (!reader.u32(count)) return fail(kInvalidKeyFormat);
  if (count == 0 || count > kMaxKeysPerContainer) return fail(kInvalidKeyFormat);
  for (std::uint32_t i = 0; i < count; ++i) {
    std::string_view public_blob;  // the private section repeats the public key
    if (!reader.string(public_blob)) return fail(kInvalidKeyFormat);
  }
  std::string_view section;
  if (!reader.string(section)) return fail(kInvalidKeyFormat);

  Reader priv(section);
  std::uint32_t check1, check2;
  if (!priv.u32(check1) || !priv.u32(check2)) return fail(kInvalidKeyFormat);
  if (check1 != check2) return fail(kInvalidKeyFormat);
  for (std::uint32_t i = 0; i < count; ++i) {
    std::string_view type;
    if (!priv.string(type)) return fail(kInvalidKeyFormat);
    PrivateKey key;
    std::string_view comment;
    if (type == "ssh-ed25519") {
      std::string_view public_key, private_value;
      if (!priv.string(public_key) || !priv.string(private_value) || !priv.string(comment)) {
        return fail(kInvalidKeyFormat);
      }
      if (private_value.size() != crypto_sign_SECRETKEYBYTES) return fail(kInvalidKeyFormat);
      key.type = KeyType::ed25519;
      key.private_value = SecureBuffer(private_value);
      std::memcpy(key.public_key.data(), private_value.data() + 32, 32);
    } else if (type == "ssh-rsa") {
      // n, e, d, iqmp, p, q, comment
      if (!priv.skip_strings(6) || !priv.string(comment)) return fail(kInvalidKeyFormat);
      key.type = KeyType::rsa;
    } else {
      return fail(unsupported(type));
    }
    key.comment = std::string(comment);
    keys.push_back(std::move(key));
  }
  return {};
}

// A PKCS#1 `RSA PRIVATE KEY` block: recognised (it must at least be base64 of
// a DER SEQUENCE) so that it can be refused as "Only ed25519 keys are supported".
Result<void> parse_rsa_block(std::string_view body, std::vector<PrivateKey>& keys) {
  if (body.find("Proc-Type:") != std::string_view::npos) return fail(kKeyWasEncrypted);
  auto der = decode_pem_body(body);
  if (!der) return fail(der.error());
  if (der->empty() || der->data()[0] != 0x30) return fail(kInvalidKeyFormat);
  PrivateKey key;
  key.type = KeyType::rsa;
  keys.push_back(std::move(key));
  return {};
}

}  // namespace

PrivateKey PrivateKey::clone() const {
  PrivateKey copy;
  copy.type = type;
  copy.public_key = public_key;
  copy.private_value = private_value.clone();
  copy.comment = comment;
  return copy;
}

Result<PublicKey> parse_public_key(std::string_view text) {
  const std::string_view line = text.substr(0, text.find('\n'));
  std::string_view tokens[2];
  std::size_t found = 0;
  std::size_t pos = 0;
  while (found < 2) {
    while (pos < line.size() && is_space(line[pos])) ++pos;
    if (pos == line.size()) break;
    const std::size_t start = pos;
    while (pos < line.size() && !is_space(line[pos])) ++pos;
    tokens[found++] = line.substr(start, pos - start);
  }
  if (found < 2) return fail(kInvalidKeyFormat);
  const std::string_view type = tokens[0];
  if (type != "ssh-ed25519" && type != "ssh-rsa") return fail(unsupported(type));

  auto blob = base64_decode(tokens[1]);
  if (!blob) return fail(kInvalidKeyFormat);
  Reader reader(*blob);
  std::string_view blob_type;
  if (!reader.string(blob_type) || blob_type != type) return fail(kInvalidKeyFormat);

  PublicKey key;
  // The comment is the rest of the line after the blob (informational only).
  std::size_t rest = pos;
  while (rest < line.size() && is_space(line[rest])) ++rest;
  std::string_view comment = line.substr(rest);
  while (!comment.empty() && is_space(comment.back())) comment.remove_suffix(1);
  key.comment = std::string(comment);
  if (type == "ssh-ed25519") {
    std::string_view raw;
    if (!reader.string(raw) || raw.size() != key.ed25519.size()) return fail(kInvalidKeyFormat);
    std::memcpy(key.ed25519.data(), raw.data(), raw.size());
    key.type = KeyType::ed25519;
  } else {
    if (!reader.skip_strings(2)) return fail(kInvalidKeyFormat);  // e, n
    key.type = KeyType::rsa;
  }
  return key;
}

Result<std::vector<PrivateKey>> parse_private_keys(std::string_view text) {
  std::vector<PrivateKey> keys;
  const bool openssh = text.substr(0, kOpensshBegin.size()) == kOpensshBegin;
  const bool rsa = text.substr(0, kRsaBegin.size()) == kRsaBegin;
  if (!openssh && !rsa) return fail(unsupported("unknown"));

  std::size_t pos = 0;
  // Block after block; after the first, further blocks are only looked for
  // when the text after an END marker (past whitespace) begins another BEGIN.
  while (true) {
    const bool is_openssh = text.substr(pos, kOpensshBegin.size()) == kOpensshBegin;
    const std::string_view begin = is_openssh ? kOpensshBegin : kRsaBegin;
    const std::string_view end = is_openssh ? kOpensshEnd : kRsaEnd;
    const std::size_t body_start = pos + begin.size();
    const std::size_t body_end = text.find(end, body_start);
    if (body_end == std::string_view::npos) return fail(kInvalidKeyFormat);
    const std::string_view body = text.substr(body_start, body_end - body_start);
    if (is_openssh) {
      auto binary = decode_pem_body(body);
      if (!binary) return fail(binary.error());
      if (auto parsed = parse_openssh_container(binary->view(), keys); !parsed) {
        return fail(parsed.error());
      }
    } else if (auto parsed = parse_rsa_block(body, keys); !parsed) {
      return fail(parsed.error());
    }
    pos = body_end + end.size();
    while (pos < text.size() && is_space(text[pos])) ++pos;
    const std::string_view rest = text.substr(pos);
    if (rest.substr(0, kOpensshBegin.size()) != kOpensshBegin &&
        rest.substr(0, kRsaBegin.size()) != kRsaBegin) {
      break;  // trailing text after the last block is ignored, as in the original
    }
  }
  return keys;
}

namespace detail {

Result<SecureBuffer, ReadFailure> read_all(int fd, std::size_t limit) {
  SecureBuffer buffer(4096);
  std::size_t used = 0;
  while (true) {
    if (used == buffer.size()) {
      if (buffer.size() > limit) return fail(ReadFailure{ReadError::too_large, 0});
      SecureBuffer bigger(buffer.size() * 2);
      std::memcpy(bigger.data(), buffer.data(), used);
      buffer = std::move(bigger);  // the old bytes are wiped
    }
    const ssize_t got = ::read(fd, buffer.data() + used, buffer.size() - used);
    if (got < 0) {
      if (errno == EINTR) continue;
      return fail(ReadFailure{ReadError::io, errno});
    }
    if (got == 0) break;
    used += static_cast<std::size_t>(got);
    if (used > limit) return fail(ReadFailure{ReadError::too_large, 0});
  }
  buffer.truncate(used);
  return buffer;
}

}  // namespace detail

namespace {

Result<SecureBuffer> read_key_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(path + ": " + std::strerror(errno));
  auto content = detail::read_all(fd, detail::kMaxKeyFileSize);
  ::close(fd);
  if (!content) {
    if (content.error().kind == detail::ReadError::too_large)
      return fail(path + ": file too large");
    return fail(path + ": " + std::strerror(content.error().error_number));
  }
  return std::move(*content);
}

}  // namespace

Result<PublicKey> read_public_key_file(const std::string& path) {
  auto content = read_key_file(path);
  if (!content) return fail(content.error());
  return parse_public_key(content->view());
}

Result<std::vector<PrivateKey>> read_private_key_file(const std::string& path) {
  auto content = read_key_file(path);
  if (!content) return fail(content.error());
  return parse_private_keys(content->view());
}

}  // namespace lithos::crypt
