// lithos_crypt: encrypt, decrypt and check lithos v2 secrets (docs/crypt.md).
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>

#include "cli_convention.hpp"
#include "lithos/crypt/crypt.hpp"
#include "lithos/crypt/keys.hpp"
#include "lithos/crypt/secure_buffer.hpp"

namespace {

namespace crypt = lithos::crypt;

constexpr int kFailure = 1;
// A secret ends up in an environment variable; no real one is this large.
constexpr std::size_t kMaxStdinSecret = 1 << 20;

constexpr std::string_view kUsageEncrypt =
    "lithos_crypt encrypt -k <key-file> [-d <data>] [-n <namespace>]";
constexpr std::string_view kUsageDecrypt = "lithos_crypt decrypt -i <key-file> -d <secret>";
constexpr std::string_view kUsageCheckKey = "lithos_crypt check-key -k <key-file> -d <secret>";
constexpr std::string_view kUsageHelp = "lithos_crypt help [SUBCOMMAND]";

// Writes all of `bytes` to `fd` with write(2): no stdio buffer keeps a copy.
bool write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
  return true;
}

void wipe(std::string& text) {
  if (!text.empty()) sodium_memzero(text.data(), text.size());
  text.clear();
}

int fail_with(std::string_view message) {
  std::fflush(stdout);
  std::string line(message);
  line += '\n';
  write_all(STDERR_FILENO, line);
  return kFailure;
}

// A bad command line: one line, exit 2 (docs/cli.md).
int usage_error(std::string_view message) {
  std::fflush(stdout);
  return lithos::tools::usage_error("lithos_crypt", message);
}

// A key file that cannot be read or is no usable key: the work failed, exit 1.
// The text is the original's, which scripts may look for.
int key_file_error(const std::string& message) {
  return fail_with("error: Invalid value for '--key-file <key>': " + message);
}

// Reads the secret from standard input; one trailing "\n" is removed (so that
// `echo secret | lithos_crypt encrypt …` encrypts "secret").
lithos::Result<crypt::SecureBuffer> read_secret_from_stdin() {
  if (::isatty(STDIN_FILENO)) {
    write_all(STDERR_FILENO, "Reading the secret from standard input (end with Ctrl-D)...\n");
  }
  crypt::SecureBuffer buffer(4096);
  std::size_t used = 0;
  while (true) {
    if (used == buffer.size()) {
      if (buffer.size() > kMaxStdinSecret) break;
      crypt::SecureBuffer bigger(buffer.size() * 2);
      std::memcpy(bigger.data(), buffer.data(), used);
      buffer = std::move(bigger);
    }
    const ssize_t got = ::read(STDIN_FILENO, buffer.data() + used, buffer.size() - used);
    if (got < 0) {
      if (errno == EINTR) continue;
      return lithos::fail(std::string("Can't read the secret from standard input: ") +
                          std::strerror(errno));
    }
    if (got == 0) break;
    used += static_cast<std::size_t>(got);
  }
  if (used > kMaxStdinSecret) {
    return lithos::fail(std::string("The secret on standard input is larger than 1 MiB"));
  }
  if (used > 0 && buffer.data()[used - 1] == '\n') --used;
  buffer.truncate(used);
  return buffer;
}

int run_encrypt(const std::string& key_file, std::string& data, bool data_given,
                const std::string& ns) {
  auto key = crypt::read_public_key_file(key_file);
  if (!key) return key_file_error(key.error());
  crypt::SecureBuffer secret;
  if (!data_given || data == "-") {
    auto input = read_secret_from_stdin();
    if (!input) return fail_with(input.error());
    secret = std::move(*input);
  } else {
    secret = crypt::SecureBuffer(data);
  }
  wipe(data);
  if (!crypt::valid_utf8(secret.view())) return fail_with("The secret is not valid UTF-8");
  auto encrypted = crypt::encrypt(*key, ns, secret.view());
  if (!encrypted) return fail_with(encrypted.error());
  if (!write_all(STDOUT_FILENO, *encrypted + "\n")) return fail_with("Can't write to stdout");
  return 0;
}

// lithos_crypt decrypt does not refuse a loosely protected key file
// (the original does not either) but says that lithos_knot would.
void warn_about_key_mode(const std::string& key_file) {
  struct stat st;
  if (::stat(key_file.c_str(), &st) != 0) return;
  if ((st.st_mode & 0777 & ~0600) == 0) return;
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 0777));
  std::string text = "warning: key file " + key_file + " has mode " + mode +
                     "; lithos_knot only accepts a root-owned key file with mode 0600\n";
  write_all(STDERR_FILENO, text);
}

int run_decrypt(const std::string& key_file, std::string& data) {
  auto keys = crypt::read_private_key_file(key_file);
  if (!keys) return key_file_error(keys.error());
  warn_about_key_mode(key_file);
  auto decrypted = crypt::decrypt(*keys, data);
  keys->clear();  // wipes the private keys
  if (!decrypted) return fail_with(decrypted.error());
  // NS: on stderr, the secret alone on stdout, the newline on stderr.
  const std::string prefix = decrypted->ns + ":";
  if (!write_all(STDERR_FILENO, prefix)) return kFailure;
  if (!write_all(STDOUT_FILENO, decrypted->secret.view())) {
    return fail_with("\nCan't write to stdout");
  }
  write_all(STDERR_FILENO, "\n");
  return 0;
}

int run_check_key(const std::string& key_file, const std::string& data) {
  auto key = crypt::read_public_key_file(key_file);
  if (!key) return key_file_error(key.error());
  if (auto checked = crypt::check_key(*key, data); !checked) return fail_with(checked.error());
  return 0;
}

int run(int argc, char** argv) {
  CLI::App app{"Encrypts, decrypts and checks lithos v2 secrets.", "lithos_crypt"};
  app.set_version_flag("-V,--version", lithos::tools::version_line("lithos_crypt"),
                       "Print the name and version, then exit");
  app.set_help_flag("-h,--help", "Print help information and exit");
  app.require_subcommand(0, 1);
  std::string footer = "Usage:\n";
  for (const auto line : {kUsageEncrypt, kUsageDecrypt, kUsageCheckKey, kUsageHelp}) {
    footer += "  ";
    footer += line;
    footer += '\n';
  }
  footer +=
      "\nKey files are OpenSSH ed25519 keys (ssh-keygen -t ed25519). A private key file may hold "
      "several keys.";
  app.footer(footer);

  std::string key_file;
  std::string data;
  std::string ns;

  CLI::App* encrypt = app.add_subcommand(
      "encrypt",
      "Encrypt a secret for an OpenSSH ed25519 public key; prints one v2:… line on stdout");
  encrypt->add_option("-k,--key-file", key_file, "OpenSSH ed25519 public key file")->required();
  CLI::Option* data_option = encrypt->add_option(
      "-d,--data", data,
      "The secret (UTF-8, no NUL). Without -d, or with -d -, the secret is read from standard "
      "input and one trailing newline is removed");
  encrypt->add_option("-n,--namespace", ns, "Namespace of the secret, matching ^[a-zA-Z0-9_.-]*$")
      ->check(CLI::Validator(
          [](const std::string& value) -> std::string {
            if (crypt::valid_namespace(value)) return {};
            return "namespace " + crypt::debug_quote(value) +
                   " must match the regex ^[a-zA-Z0-9_.-]*$";
          },
          "NAMESPACE"));

  CLI::App* decrypt = app.add_subcommand(
      "decrypt",
      "Decrypt a v2 secret: NAMESPACE: and a newline go to stderr, the secret to stdout");
  decrypt->add_option("-i,--key-file", key_file, "OpenSSH ed25519 private key file")->required();
  decrypt->add_option("-d,--data", data, "A v2:… secret")->required();

  CLI::App* check_key = app.add_subcommand(
      "check-key", "Check that a v2 secret was encrypted for a public key (no output on success)");
  check_key->add_option("-k,--key-file", key_file, "OpenSSH ed25519 public key file")->required();
  check_key->add_option("-d,--data", data, "A v2:… secret")->required();

  CLI::App* help = app.add_subcommand("help", "Print this help or the help of a subcommand");
  std::string topic;
  help->add_option("subcommand", topic, "encrypt, decrypt or check-key");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what());
  }

  if (encrypt->parsed()) return run_encrypt(key_file, data, data_option->count() > 0, ns);
  if (decrypt->parsed()) return run_decrypt(key_file, data);
  if (check_key->parsed()) return run_check_key(key_file, data);
  if (help->parsed()) {
    if (topic.empty()) {
      // app.help() would describe the selected `help` subcommand itself.
      std::cout << app.get_formatter()->make_help(&app, app.get_name(), CLI::AppFormatMode::Normal)
                << std::flush;
      return 0;
    }
    for (CLI::App* sub : {encrypt, decrypt, check_key, help}) {
      if (sub->get_name() == topic) {
        std::cout << sub->help("lithos_crypt") << std::flush;
        return 0;
      }
    }
    return usage_error("unrecognized subcommand " + crypt::debug_quote(topic));
  }
  return usage_error("a subcommand is required: encrypt, decrypt, check-key or help");
}

}  // namespace

int main(int argc, char** argv) {
  if (!crypt::ensure_sodium()) return fail_with("libsodium initialisation failed");
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    return fail_with(std::string("error: ") + e.what());
  }
}
