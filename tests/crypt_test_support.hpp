// Shared helpers for the crypt tests and properties: the fixed test vector,
// temporary directories, running programs, building key files and raw v2
// strings with libsodium directly (independently of the code under test).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace crypt_test {

// ---- the test vector (docs/crypt.md, "7. For developers") ------------------

inline const std::string kSeedHex =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
inline const std::string kEdPublicHex =
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
inline const std::string kPublicKeyFile =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4 "
    "test@lithos\n";
inline const std::string kPrivateKeyFile =
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACADoQe/884Qvh1w3RjnS8CZZ+TWMJulDV8d3IZkElUxuAAAAJABAgMEAQID\n"
    "BAAAAAtzc2gtZWQyNTUxOQAAACADoQe/884Qvh1w3RjnS8CZZ+TWMJulDV8d3IZkElUxuA\n"
    "AAAEAAAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHwOhB7/zzhC+HXDdGOdLwJln\n"
    "5NYwm6UNXx3chmQSVTG4AAAAC3Rlc3RAbGl0aG9zAQI=\n"
    "-----END OPENSSH PRIVATE KEY-----\n";
inline const std::string kVector =
    "v2:i4+dWTpg:KqWSX0BY:8MtOoWUX:EyxEK+AQ+9V+cmAzKKp25x/"
    "MwVA6riGTJ9FNnJmT9HLomKMXBeuQbrqP8GbPcBNMh8Sb7Gfv0G3k5GWaMogvjg==";

inline std::string hex(std::string_view bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

inline std::string unhex(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i + 1 < text.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(text.substr(i, 2)), nullptr, 16));
  }
  return out;
}

// ---- files and processes ---------------------------------------------------

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "lithos-crypt-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::string& path, const std::string& content, mode_t mode = 0600) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
  }
  ::chmod(path.c_str(), mode);
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

struct RunResult {
  int status = -1;  // exit code, or 128 + signal
  std::string out;
  std::string err;
};

// fork/exec with separate stdout/stderr pipes and `input` on stdin.
inline RunResult run(const std::vector<std::string>& argv, const std::string& input = "") {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) || ::pipe2(out_pipe, O_CLOEXEC) || ::pipe2(err_pipe, O_CLOEXEC)) {
    throw std::runtime_error("pipe failed");
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  std::size_t written = 0;
  int in_fd = in_pipe[1];
  if (input.empty()) {
    ::close(in_fd);
    in_fd = -1;
  }
  RunResult result;
  bool out_open = true, err_open = true;
  while (out_open || err_open || in_fd >= 0) {
    pollfd fds[3] = {{out_open ? out_pipe[0] : -1, POLLIN, 0},
                     {err_open ? err_pipe[0] : -1, POLLIN, 0},
                     {in_fd, POLLOUT, 0}};
    if (::poll(fds, 3, 30000) <= 0) break;
    char buffer[4096];
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents == 0) continue;
      const ssize_t got = ::read(fds[i].fd, buffer, sizeof buffer);
      if (got <= 0) {
        (i == 0 ? out_open : err_open) = false;
      } else {
        (i == 0 ? result.out : result.err).append(buffer, static_cast<std::size_t>(got));
      }
    }
    if (in_fd >= 0 && fds[2].revents != 0) {
      const ssize_t put = (fds[2].revents & POLLOUT)
                              ? ::write(in_fd, input.data() + written, input.size() - written)
                              : -1;
      if (put > 0) written += static_cast<std::size_t>(put);
      if (put <= 0 || written == input.size()) {
        ::close(in_fd);
        in_fd = -1;
      }
    }
  }
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  if (in_fd >= 0) ::close(in_fd);
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  result.status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  return result;
}

// `ssh-keygen -t TYPE -N PASSPHRASE -f DIR/NAME`; returns the private key path.
inline std::string ssh_keygen(const TempDir& dir, const std::string& name,
                              const std::string& type = "ed25519",
                              const std::string& passphrase = "") {
  const std::string path = dir.file(name);
  std::vector<std::string> argv = {"ssh-keygen", "-q", "-t", type, "-N",
                                   passphrase,   "-C", name, "-f", path};
  if (type == "rsa") {
    argv.push_back("-b");
    argv.push_back("2048");
  }
  const RunResult r = run(argv);
  if (r.status != 0) throw std::runtime_error("ssh-keygen failed: " + r.err);
  return path;
}

// ---- raw builders (libsodium only, independent of lithos::crypt) -----------

struct RawKey {
  std::array<unsigned char, 32> pk;
  std::array<unsigned char, 64> sk;  // seed || pk
};

inline RawKey raw_key_from_seed(const std::string& seed32) {
  RawKey key;
  crypto_sign_seed_keypair(key.pk.data(), key.sk.data(),
                           reinterpret_cast<const unsigned char*>(seed32.data()));
  return key;
}

inline std::string raw_short(std::string_view bytes) {
  unsigned char digest[6];
  crypto_generichash(digest, 6, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                     nullptr, 0);
  char out[16];
  sodium_bin2base64(out, sizeof out, digest, 6, sodium_base64_VARIANT_ORIGINAL);
  return out;
}

inline std::string raw_b64(std::string_view bytes) {
  std::string out(sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);
  return out;
}

// A v2 string whose box holds exactly `plaintext`, with the given hash fields.
inline std::string raw_v2(const std::array<unsigned char, 32>& ed_pk, std::string_view plaintext,
                          const std::string& ns_hash, const std::string& secret_hash) {
  unsigned char x_pk[32];
  if (crypto_sign_ed25519_pk_to_curve25519(x_pk, ed_pk.data()) != 0) {
    throw std::runtime_error("bad key");
  }
  std::string sealed(plaintext.size() + crypto_box_SEALBYTES, '\0');
  crypto_box_seal(reinterpret_cast<unsigned char*>(sealed.data()),
                  reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(), x_pk);
  return "v2:" + raw_short({reinterpret_cast<const char*>(ed_pk.data()), 32}) + ":" + ns_hash +
         ":" + secret_hash + ":" + raw_b64(sealed);
}

// SSH wire-format writer.
struct SshWriter {
  std::string data;
  void u32(std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) data += static_cast<char>((v >> shift) & 0xff);
  }
  void str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    data += s;
  }
};

inline std::string ed25519_public_blob(const RawKey& key) {
  SshWriter w;
  w.str("ssh-ed25519");
  w.str({reinterpret_cast<const char*>(key.pk.data()), 32});
  return w.data;
}

inline std::string pem(const std::string& binary) {
  const std::string b64 = raw_b64(binary);
  std::string out = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
  for (std::size_t i = 0; i < b64.size(); i += 70) out += b64.substr(i, 70) + "\n";
  out += "-----END OPENSSH PRIVATE KEY-----\n";
  return out;
}

// An unencrypted openssh-key-v1 container with OpenSSH's layout for N keys:
// all public blobs, then one private section holding every key, then padding.
// `private_value_size` other than 64 makes a malformed key.
inline std::string openssh_container(const std::vector<RawKey>& keys,
                                     std::size_t private_value_size = 64) {
  SshWriter w;
  w.data.append("openssh-key-v1", 15);  // includes the terminating NUL
  w.str("none");
  w.str("none");
  w.str("");
  w.u32(static_cast<std::uint32_t>(keys.size()));
  for (const auto& key : keys) w.str(ed25519_public_blob(key));
  SshWriter section;
  section.u32(0x11223344);
  section.u32(0x11223344);
  int index = 0;
  for (const auto& key : keys) {
    section.str("ssh-ed25519");
    section.str({reinterpret_cast<const char*>(key.pk.data()), 32});
    std::string value(reinterpret_cast<const char*>(key.sk.data()), 64);
    value.resize(private_value_size, '\0');
    section.str(value);
    section.str("key" + std::to_string(index++));
  }
  for (char pad = 1; section.data.size() % 8 != 0; ++pad) section.data += pad;
  w.str(section.data);
  return pem(w.data);
}

inline std::string seed_of(int n) {
  return std::string(32, static_cast<char>(n));
}

}  // namespace crypt_test
