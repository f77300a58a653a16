// Runtime side of secrets (docs/crypt.md, "4. What the knot does"): load the sandbox's
// `secrets-private-key` with the knot's ownership/mode checks, then decode a
// process's `secret-environ` into plain values.
#pragma once

#include <sys/types.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "lithos/common/result.hpp"
#include "lithos/crypt/crypt.hpp"
#include "lithos/crypt/keys.hpp"
#include "lithos/crypt/secure_buffer.hpp"

namespace lithos::crypt {

struct KeyFilePolicy {
  // The uid that must own the key file. Always 0 in the knot; tests that do
  // not run as root use their own uid to reach the later checks.
  uid_t required_owner = 0;
};

// Opens `path` (symlinks followed), fstat()s the open file and requires a
// regular file owned by `policy.required_owner` whose `mode & 0777` is a
// subset of 0600, then parses every key in it. Errors, all prefixed with
// `Error decoding private keys: `: the path itself (open/read failure),
// `Key must be a regular file`, `Key must be owned by root`,
// `Key's mode must be 0600`, `Key file is too large`, or the key parser's
// message.
Result<std::vector<PrivateKey>> load_secrets_private_key(const std::string& path,
                                                         const KeyFilePolicy& policy = {});

// The allowed set A: the sandbox's `secrets-namespaces` ({""} when empty)
// united with the process's `extra-secrets-namespaces`.
std::set<std::string> allowed_namespaces(const std::vector<std::string>& sandbox_namespaces,
                                         const std::vector<std::string>& extra_namespaces);

struct DecodedSecret {
  std::string name;
  SecureBuffer value;  // valid UTF-8 without NUL; wiped on destruction
};

// Decodes one variable: every key (file order) ×
// every value (list order), first success wins. Error:
// `Can't decrypt secret "NAME", errors: E1, E2, …`.
Result<DecodedSecret> decode_secret(const std::vector<PrivateKey>& keys,
                                    const std::set<std::string>& allowed, const std::string& name,
                                    const std::vector<std::string>& values);

// Decodes all variables in byte-sorted name order (std::map<std::string>
// orders by unsigned bytes); the first failure aborts with
// `Error decoding secrets: Can't decrypt secret "NAME", errors: E1, E2, …`.
// A scalar `secret-environ` value is passed as a one-element list.
Result<std::vector<DecodedSecret>> decode_secrets(
    const std::vector<PrivateKey>& keys, const std::vector<std::string>& sandbox_namespaces,
    const std::vector<std::string>& extra_namespaces,
    const std::map<std::string, std::vector<std::string>>& secrets);

}  // namespace lithos::crypt
