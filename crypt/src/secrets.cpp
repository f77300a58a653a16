// The knot's side of secrets (docs/crypt.md, "4. What the knot does").
#include "lithos/crypt/secrets.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.hpp"

namespace lithos::crypt {

namespace {

const std::string kKeysPrefix = "Error decoding private keys: ";

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string expected_namespaces(const std::set<std::string>& allowed, std::string_view got) {
  std::string out = "expected namespaces {";
  bool first = true;
  for (const auto& ns : allowed) {
    if (!first) out += ", ";
    first = false;
    out += debug_quote(ns);
  }
  out += "} got ";
  out += debug_quote(got);
  return out;
}

}  // namespace

Result<std::vector<PrivateKey>> load_secrets_private_key(const std::string& path,
                                                         const KeyFilePolicy& policy) {
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) return fail(kKeysPrefix + path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return fail(kKeysPrefix + path);
  if (!S_ISREG(st.st_mode)) return fail(kKeysPrefix + "Key must be a regular file");
  if (st.st_uid != policy.required_owner) return fail(kKeysPrefix + "Key must be owned by root");
  if ((st.st_mode & 0777 & ~0600) != 0) return fail(kKeysPrefix + "Key's mode must be 0600");
  auto content = detail::read_all(fd.get(), detail::kMaxKeyFileSize);
  if (!content) {
    if (content.error().kind == detail::ReadError::too_large) {
      return fail(kKeysPrefix + "Key file is too large");
    }
    return fail(kKeysPrefix + path);
  }
  auto keys = parse_private_keys(content->view());
  if (!keys) return fail(kKeysPrefix + keys.error());
  return keys;
}

std::set<std::string> allowed_namespaces(const std::vector<std::string>& sandbox_namespaces,
                                         const std::vector<std::string>& extra_namespaces) {
  std::set<std::string> allowed(sandbox_namespaces.begin(), sandbox_namespaces.end());
  if (sandbox_namespaces.empty()) allowed.insert("");
  allowed.insert(extra_namespaces.begin(), extra_namespaces.end());
  return allowed;
}

Result<DecodedSecret> decode_secret(const std::vector<PrivateKey>& keys,
                                    const std::set<std::string>& allowed, const std::string& name,
                                    const std::vector<std::string>& values) {
  std::string errors;
  const auto note = [&errors](const std::string& message) {
    if (!errors.empty()) errors += ", ";
    errors += message;
  };
  DecryptOptions options;
  options.require_utf8_namespace = true;
  for (const auto& key : keys) {
    for (const auto& value : values) {
      auto decrypted = decrypt(key, value, options);
      if (!decrypted) {
        note(decrypted.error());
        continue;
      }
      const std::string_view secret = decrypted->secret.view();
      if (allowed.count(decrypted->ns) == 0) {  // step 10
        note(expected_namespaces(allowed, decrypted->ns));
      } else if (secret.find('\0') != std::string_view::npos) {  // step 11
        note("no null bytes allowed in secret");
      } else if (!valid_utf8(secret)) {  // step 12
        note("Can't decode secret as utf-8");
      } else {
        return DecodedSecret{name, std::move(decrypted->secret)};
      }
    }
  }
  return fail("Can't decrypt secret " + debug_quote(name) + ", errors: " + errors);
}

Result<std::vector<DecodedSecret>> decode_secrets(
    const std::vector<PrivateKey>& keys, const std::vector<std::string>& sandbox_namespaces,
    const std::vector<std::string>& extra_namespaces,
    const std::map<std::string, std::vector<std::string>>& secrets) {
  const auto allowed = allowed_namespaces(sandbox_namespaces, extra_namespaces);
  std::vector<DecodedSecret> out;
  out.reserve(secrets.size());
  for (const auto& [name, values] : secrets) {
    auto decoded = decode_secret(keys, allowed, name, values);
    if (!decoded) return fail("Error decoding secrets: " + decoded.error());
    out.push_back(std::move(*decoded));
  }
  return out;
}

}  // namespace lithos::crypt
