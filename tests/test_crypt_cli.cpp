// lithos_crypt end to end (docs/crypt.md): output split, exit codes, bad input,
// and interoperability with PyNaCl (tests/crypt_interop.py) in both directions.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "crypt_test_support.hpp"

using namespace crypt_test;

namespace {

const std::string kBinary = LITHOS_BIN_DIR "/lithos_crypt";
const std::string kInteropScript = LITHOS_SOURCE_DIR "/tests/crypt_interop.py";
const std::string kWrongKey = "decryption error. This usually means the key is wrong.\n";

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

class CryptCli : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::access(kBinary.c_str(), X_OK), 0)
        << kBinary << " is missing: build the tool_lithos_crypt target first";
    pub_ = dir_.file("key.pub");
    priv_ = dir_.file("key");
    write_file(pub_, kPublicKeyFile, 0644);
    write_file(priv_, kPrivateKeyFile, 0600);
  }

  RunResult crypt(std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), kBinary);
    return run(args, input);
  }

  // A failure: exit 1, nothing at all on stdout, `message` as stderr's first line.
  void expect_failure(const RunResult& r, const std::string& message) {
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(first_line(r.err), message);
  }

  // A bad command line (docs/cli.md): exit 2, nothing on stdout, one line
  // `lithos_crypt: usage error: WHY (try lithos_crypt --help)` on stderr.
  void expect_usage_error(const RunResult& r) {
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err.rfind("lithos_crypt: usage error: ", 0), 0u) << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
    EXPECT_NE(r.err.find("(try lithos_crypt --help)"), std::string::npos) << r.err;
  }

  TempDir dir_;
  std::string pub_;
  std::string priv_;
};

}  // namespace

TEST_F(CryptCli, DecryptSpecVectorSplitsOutput) {
  const auto r = crypt({"decrypt", "-i", priv_, "-d", kVector});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "the_secret");
  EXPECT_EQ(r.err, "myapp:\n");
  // Other spellings of the options.
  const auto r2 = crypt({"decrypt", "--data=" + kVector, "--key-file", priv_});
  EXPECT_EQ(r2.out, "the_secret");
  const auto r3 = crypt({"decrypt", "-d" + kVector, "-i" + priv_});
  EXPECT_EQ(r3.out, "the_secret");
}

TEST_F(CryptCli, EncryptPrintsOneLineAndRoundTrips) {
  const auto a = crypt({"encrypt", "-k", pub_, "-d", "the_secret", "-n", "myapp"});
  const auto b = crypt({"encrypt", "--namespace=myapp", "--data", "the_secret", "-k", pub_});
  ASSERT_EQ(a.status, 0) << a.err;
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_EQ(a.err, "");
  ASSERT_EQ(a.out.back(), '\n');
  EXPECT_EQ(a.out.find('\n'), a.out.size() - 1);
  EXPECT_EQ(a.out.substr(0, 30), "v2:i4+dWTpg:KqWSX0BY:8MtOoWUX:");
  EXPECT_NE(a.out, b.out);  // random ephemeral key
  const auto d = crypt({"decrypt", "-i", priv_, "-d", first_line(a.out)});
  EXPECT_EQ(d.status, 0) << d.err;
  EXPECT_EQ(d.out, "the_secret");
  EXPECT_EQ(d.err, "myapp:\n");
  // Default namespace is empty.
  const auto e = crypt({"encrypt", "-k", pub_, "-d", "x"});
  EXPECT_EQ(e.out.substr(0, 21), "v2:i4+dWTpg:3dnEB2f5:");
}

TEST_F(CryptCli, EncryptReadsStandardInput) {
  // Without -d and with -d -: one trailing newline is removed, no more.
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"encrypt", "-k", pub_, "-n", "ns"}, {"encrypt", "-k", pub_, "-n", "ns", "-d", "-"}}) {
    const auto r = crypt(args, "multi\nline\n\n");
    ASSERT_EQ(r.status, 0) << r.err;
    const auto d = crypt({"decrypt", "-i", priv_, "-d", first_line(r.out)});
    EXPECT_EQ(d.out, "multi\nline\n");
    EXPECT_EQ(d.err, "ns:\n");
  }
  const auto plain = crypt({"encrypt", "-k", pub_}, "no newline");
  EXPECT_EQ(crypt({"decrypt", "-i", priv_, "-d", first_line(plain.out)}).out, "no newline");
  // Input the knot would refuse is refused here.
  expect_failure(crypt({"encrypt", "-k", pub_}, std::string("a\0b", 3)),
                 "no null bytes allowed in secret");
  expect_failure(crypt({"encrypt", "-k", pub_}, "\xff\xfe"), "The secret is not valid UTF-8");
}

TEST_F(CryptCli, CheckKey) {
  auto ok = crypt({"check-key", "-k", pub_, "-d", kVector});
  EXPECT_EQ(ok.status, 0) << ok.err;
  EXPECT_EQ(ok.out + ok.err, "");
  expect_failure(crypt({"check-key", "-k", pub_, "-d", "v1:abc"}), "Only v2 secrets are supported");
  const auto other = ssh_keygen(dir_, "other");
  expect_failure(crypt({"check-key", "-k", other + ".pub", "-d", kVector}), "key doesn't match");
}

TEST_F(CryptCli, VersionHelpAndUsage) {
  const auto v = crypt({"-V"});
  EXPECT_EQ(v.status, 0);
  EXPECT_EQ(v.out, std::string("lithos_crypt ") + LITHOS_VERSION + "\n");
  EXPECT_EQ(crypt({"--version"}).out, v.out);
  for (const auto& args : std::vector<std::vector<std::string>>{{"help"}, {"--help"}, {"-h"}}) {
    const auto h = crypt(args);
    EXPECT_EQ(h.status, 0) << args.front();
    EXPECT_EQ(h.err, "");
    for (const char* word : {"encrypt", "decrypt", "check-key", "--version"}) {
      EXPECT_NE(h.out.find(word), std::string::npos) << word << " in " << h.out;
    }
  }
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"help", "encrypt"}, {"decrypt", "--help"}, {"check-key", "-h"}, {"help", "decrypt"}}) {
    const auto h = crypt(args);
    EXPECT_EQ(h.status, 0) << args.front();
    EXPECT_NE(h.out.find("--key-file"), std::string::npos) << h.out;
    EXPECT_NE(h.out.find("--data"), std::string::npos) << h.out;
  }
  EXPECT_NE(crypt({"help", "encrypt"}).out.find("--namespace"), std::string::npos);
  // No subcommand: a usage error that names the subcommands.
  const auto none = crypt({});
  expect_usage_error(none);
  EXPECT_NE(none.err.find("encrypt, decrypt, check-key or help"), std::string::npos);
  const auto nope = crypt({"help", "nope"});
  expect_usage_error(nope);
  EXPECT_NE(nope.err.find("unrecognized subcommand \"nope\""), std::string::npos) << nope.err;
}

TEST_F(CryptCli, ArgumentErrors) {
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"frobnicate"},
                                             {"encrypt", "-d", "x"},
                                             {"decrypt", "-i", "x"},
                                             {"decrypt", "-d", "x"},
                                             {"check-key", "-k", "x"},
                                             {"encrypt", "-k", "x", "--bogus"},
                                             {"decrypt", "-i", "x", "-d", "y", "extra"}}) {
    SCOPED_TRACE(args.front());
    expect_usage_error(crypt(args));
  }
  const auto ns = crypt({"encrypt", "-k", pub_, "-d", "x", "-n", "my app"});
  expect_usage_error(ns);
  EXPECT_NE(ns.err.find("^[a-zA-Z0-9_.-]*$"), std::string::npos) << ns.err;
}

TEST_F(CryptCli, KeyFileErrors) {
  const auto missing = dir_.file("missing");
  expect_failure(
      crypt({"decrypt", "-i", missing, "-d", kVector}),
      "error: Invalid value for '--key-file <key>': " + missing + ": No such file or directory");
  expect_failure(
      crypt({"encrypt", "-k", dir_.path().string(), "-d", "x"}),
      "error: Invalid value for '--key-file <key>': " + dir_.path().string() + ": Is a directory");
  expect_failure(crypt({"decrypt", "-i", pub_, "-d", kVector}),
                 "error: Invalid value for '--key-file <key>': unsupported key type \"unknown\"");
  expect_failure(crypt({"encrypt", "-k", priv_, "-d", "x"}),
                 "error: Invalid value for '--key-file <key>': unsupported key type "
                 "\"-----BEGIN\"");
  const auto encrypted = ssh_keygen(dir_, "enc", "ed25519", "passphrase");
  expect_failure(crypt({"decrypt", "-i", encrypted, "-d", kVector}),
                 "error: Invalid value for '--key-file <key>': key was encrypted");
  const auto rsa = ssh_keygen(dir_, "rsa", "rsa");
  expect_failure(crypt({"decrypt", "-i", rsa, "-d", kVector}), "Only ed25519 keys are supported");
  expect_failure(crypt({"encrypt", "-k", rsa + ".pub", "-d", "x"}),
                 "Only ed25519 keys are supported");
  const auto ecdsa = ssh_keygen(dir_, "ecdsa", "ecdsa");
  expect_failure(crypt({"decrypt", "-i", ecdsa, "-d", kVector}),
                 "error: Invalid value for '--key-file <key>': unsupported key type "
                 "\"ecdsa-sha2-nistp256\"");
  if (::geteuid() != 0) {  // root reads everything
    write_file(dir_.file("unreadable"), kPrivateKeyFile, 0000);
    expect_failure(crypt({"decrypt", "-i", dir_.file("unreadable"), "-d", kVector}),
                   "error: Invalid value for '--key-file <key>': " + dir_.file("unreadable") +
                       ": Permission denied");
  }
}

TEST_F(CryptCli, LooseKeyModeOnlyWarns) {
  ::chmod(priv_.c_str(), 0644);
  const auto r = crypt({"decrypt", "-i", priv_, "-d", kVector});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "the_secret");
  EXPECT_EQ(first_line(r.err).substr(0, 9), "warning: ");
  EXPECT_NE(r.err.find("0644"), std::string::npos);
}

TEST_F(CryptCli, BadSecretsNeverPrintAnythingOnStdout) {
  const std::string cipher = kVector.substr(kVector.rfind(':') + 1);
  const std::string head = kVector.substr(0, kVector.rfind(':') + 1);
  std::string tampered = cipher;
  tampered[60] = tampered[60] == 'A' ? 'B' : 'A';
  const auto other = ssh_keygen(dir_, "other");
  expect_failure(crypt({"decrypt", "-i", other, "-d", kVector}), first_line(kWrongKey));
  expect_failure(crypt({"decrypt", "-i", priv_, "-d", head + tampered}), first_line(kWrongKey));
  expect_failure(crypt({"decrypt", "-i", priv_, "-d", head + cipher.substr(0, 60)}),
                 first_line(kWrongKey));
  expect_failure(crypt({"decrypt", "-i", priv_, "-d", head + "QUJD"}), first_line(kWrongKey));
  expect_failure(crypt({"decrypt", "-i", priv_, "-d", head}), first_line(kWrongKey));
  expect_failure(crypt({"decrypt", "-i", priv_, "-d", head + "Q"}),
                 "Encoded text cannot have a 6-bit remainder.");
  expect_failure(crypt({"decrypt", "-i", priv_, "-d", head + "QU=D"}),
                 "Invalid byte 61, offset 2.");
  expect_failure(crypt({"decrypt", "-i", priv_, "-d", "v2:a:b:" + cipher}), "invalid key format");
  expect_failure(crypt({"decrypt", "-i", priv_, "-d", kVector + ":x"}), "invalid key format");
  expect_failure(crypt({"decrypt", "-i", priv_, "-d", "v1:" + kVector.substr(3)}),
                 "Only v2 secrets are supported");
  expect_failure(crypt({"decrypt", "-i", priv_, "-d", "v2:AAAAAAAA" + kVector.substr(11)}),
                 "invalid key hash");
  expect_failure(crypt({"decrypt", "-i", priv_, "-d",
                        kVector.substr(0, 21) + "AAAAAAAA" + kVector.substr(29)}),
                 "invalid secret hash");
  // Exactly one line on stderr for these.
  const auto r = crypt({"decrypt", "-i", priv_, "-d", head + tampered});
  EXPECT_EQ(r.err, kWrongKey);
}

TEST_F(CryptCli, MultiKeyFiles) {
  const auto a = ssh_keygen(dir_, "a");
  const auto b = ssh_keygen(dir_, "b");
  const auto both = dir_.file("both");
  write_file(both, read_file(a) + read_file(b), 0600);
  for (const auto& key : {a, b}) {
    const auto e = crypt({"encrypt", "-k", key + ".pub", "-d", "s-" + key});
    ASSERT_EQ(e.status, 0) << e.err;
    const auto d = crypt({"decrypt", "-i", both, "-d", first_line(e.out)});
    EXPECT_EQ(d.status, 0) << d.err;
    EXPECT_EQ(d.out, "s-" + key);
  }
  // N > 1 OpenSSH container.
  const std::vector<RawKey> raws = {raw_key_from_seed(seed_of(5)), raw_key_from_seed(seed_of(6))};
  const auto container = dir_.file("container");
  write_file(container, openssh_container(raws), 0600);
  const auto pub6 = dir_.file("six.pub");
  write_file(pub6, "ssh-ed25519 " + raw_b64(ed25519_public_blob(raws[1])) + " six\n");
  const auto e = crypt({"encrypt", "-k", pub6, "-d", "six", "-n", "n"});
  const auto d = crypt({"decrypt", "-i", container, "-d", first_line(e.out)});
  EXPECT_EQ(d.status, 0) << d.err;
  EXPECT_EQ(d.out, "six");
}

// ---- interoperability with libsodium through PyNaCl ------------------------------

namespace {

std::string python_with_nacl() {
  for (const char* candidate : {"/usr/bin/python3", "python3"}) {
    if (run({candidate, "-c", "import nacl.public, nacl.bindings"}).status == 0) return candidate;
  }
  return "";
}

}  // namespace

TEST_F(CryptCli, InteropWithPyNaCl) {
  const std::string python = python_with_nacl();
  ASSERT_NE(python, "") << "python3 with PyNaCl (Debian python3-nacl) is required";
  const auto gen = ssh_keygen(dir_, "interop");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"myapp", "the_secret"},
      {"", ""},
      {"a.b-c_D9", "with:colons and spaces ✓"},
      {"x", std::string(3000, 'z')}};
  for (const auto& [ns, secret] : cases) {
    // Python seals, lithos_crypt opens.
    const auto sealed = run({python, kInteropScript, "seal", gen + ".pub", ns, hex(secret)});
    ASSERT_EQ(sealed.status, 0) << sealed.err;
    const auto ours = crypt({"decrypt", "-i", gen, "-d", first_line(sealed.out)});
    EXPECT_EQ(ours.status, 0) << ours.err;
    EXPECT_EQ(ours.out, secret);
    EXPECT_EQ(ours.err, ns + ":\n");
    // lithos_crypt seals, Python opens and checks the three hashes.
    const auto enc = crypt({"encrypt", "-k", gen + ".pub", "-n", ns, "-d", secret});
    ASSERT_EQ(enc.status, 0) << enc.err;
    const auto opened = run({python, kInteropScript, "open", gen, first_line(enc.out)});
    EXPECT_EQ(opened.status, 0) << opened.err;
    EXPECT_EQ(opened.out, hex(ns) + " " + hex(secret) + "\n");
  }
  // The test vector's key files and string, through Python.
  const auto opened = run({python, kInteropScript, "open", priv_, kVector});
  EXPECT_EQ(opened.out, hex("myapp") + " " + hex("the_secret") + "\n");
}
