// Diagnostics are values: collected, never fail-fast. Every one carries the
// file, 1-based line and column, a stable code and a message.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace lithos::policy {

// One row per diagnostic code: the stable id used in output, corpus
// expectations and SARIF rules, and a one-line summary.
#define LITHOS_DIAGNOSTIC_CODES(X)                                                               \
  X(FileUnreadable, "file-unreadable", "a configuration file or directory cannot be read")       \
  X(FileTooLarge, "file-too-large", "a configuration file exceeds the size limit")               \
  X(YamlSyntax, "yaml-syntax", "the file is not well-formed YAML")                               \
  X(YamlEncoding, "yaml-encoding", "the file is not valid UTF-8 or has forbidden characters")    \
  X(YamlDuplicateKey, "duplicate-key", "a mapping contains the same key twice")                  \
  X(YamlAlias, "yaml-alias", "an alias is undefined or expands beyond the budget")               \
  X(YamlDepth, "yaml-depth", "nesting is deeper than the limit")                                 \
  X(YamlTag, "yaml-tag", "a tag form that lithos does not support")                              \
  X(YamlMerge, "yaml-merge", "a merge key whose value is not a mapping")                         \
  X(YamlKey, "yaml-key", "a mapping key that is not a scalar")                                   \
  X(UnknownKey, "unknown-key", "a key that the structure does not define")                       \
  X(MissingKey, "missing-key", "a required key is absent")                                       \
  X(WrongType, "wrong-type", "a value of the wrong YAML kind (scalar, sequence, mapping)")       \
  X(NullValue, "null-value", "null where a value is required")                                   \
  X(BadNumber, "bad-number", "a number that does not parse or is out of range")                  \
  X(BadBool, "bad-bool", "a boolean other than true or false")                                   \
  X(BadRange, "bad-range", "an id or port range that does not parse")                            \
  X(BadAddress, "bad-address", "an IP address or network that does not parse")                   \
  X(BadEnum, "bad-enum", "a value outside the allowed set")                                      \
  X(BadTag, "bad-tag", "a missing or unexpected tag on a volume or variable")                    \
  X(BadDuration, "bad-duration", "a timeout that does not parse")                                \
  X(BadPath, "bad-path", "a path that is not absolute or contains . or .. components")           \
  X(BadName, "bad-name", "a name with characters that are not allowed")                          \
  X(BadSecret, "bad-secret", "a secret value that is not a well-formed v2 secret")               \
  X(SecretNamespace, "secret-namespace", "a secret namespace the sandbox does not allow")        \
  X(SecretConfig, "secret-config", "secrets configured inconsistently")                          \
  X(UnknownSyscall, "unknown-syscall", "a seccomp rule names an unknown system call")            \
  X(UnknownCapability, "unknown-capability", "a capability name that does not exist")            \
  X(ImagePath, "image-path", "an image path with the wrong depth or a . / .. component")         \
  X(ConfigPath, "config-path", "a process config path that is not absolute")                     \
  X(UserId, "user-id", "a user id that is not allowed or not mapped")                            \
  X(GroupId, "group-id", "a group id that is not allowed or not mapped")                         \
  X(IdMap, "id-map", "an id map outside the allowed ranges, or maps set twice")                  \
  X(AllowList, "allow-list", "a sandbox without allowed users or groups")                        \
  X(Variable, "variable", "a declared variable without a valid value")                           \
  X(Template, "template", "a @{...} reference to an unknown variable")                           \
  X(Port, "port", "a TCP port not allowed by the sandbox or not a valid port")                   \
  X(Activation, "activation", "socket activation conflicts")                                     \
  X(IpAddress, "ip-address", "a missing instance address or one outside the network")            \
  X(Kind, "kind", "process and container kinds do not match")                                    \
  X(Volume, "volume", "a volume that cannot be resolved or mounted")                             \
  X(Devfs, "devfs", "the devfs directory does not exist")                                        \
  X(Host, "host", "the host name or address cannot be resolved")                                 \
  X(Sandbox, "sandbox", "a sandbox selection problem")                                           \
  X(Binaries, "binaries", "lithos_tree or lithos_knot is missing beside lithos_check")           \
  X(SecretHostUid, "secret-host-uid",                                                            \
    "secrets go to a process whose uid is a host uid (no uid-map applies)")                      \
  X(FilenoLimit, "fileno-limit", "a fileno-limit above what a knot can set on this host")        \
  X(Image, "image", "an image absent, unreadable or without /dev, /sys, /proc or /etc files")    \
  X(Executable, "executable", "the executable or its interpreter is missing or not runnable")    \
  X(Workdir, "workdir", "the workdir is not a directory in the container")                       \
  X(StdoutFile, "stdout-file", "stdout-stderr-file cannot be opened in the container")           \
  X(HostFile, "host-file", "a host file the sandbox names cannot be read")                       \
  X(Bridge, "bridge", "the bridge of a bridged network does not exist on this host")             \
  X(Cgroup, "cgroup", "a cgroup controller or control this host does not offer")                 \
  X(CgroupLimit, "cgroup-limit", "a cgroup control malformed or above the sandbox's ceiling")    \
  X(Lsm, "lsm", "an AppArmor profile or SELinux label malformed, not allowed or not applicable") \
  X(NoProcesses, "no-processes", "a sandbox without a process config file: nothing of it runs")

enum class Code : std::uint8_t {
#define LITHOS_X(name, id, summary) name,
  LITHOS_DIAGNOSTIC_CODES(LITHOS_X)
#undef LITHOS_X
};

struct CodeInfo {
  Code code;
  std::string_view id;
  std::string_view summary;
};

inline constexpr std::array kCodeTable = {
#define LITHOS_X(name, id, summary) CodeInfo{Code::name, id, summary},
    LITHOS_DIAGNOSTIC_CODES(LITHOS_X)
#undef LITHOS_X
};

constexpr std::string_view code_id(Code c) {
  return kCodeTable[static_cast<std::size_t>(c)].id;
}

inline std::optional<Code> code_from_id(std::string_view id) {
  for (const auto& info : kCodeTable)
    if (info.id == id) return info.code;
  return std::nullopt;
}

// A note is what lithos_check could not verify and says so (--offline: a
// host path or an image that is not there); it never fails a check.
enum class Severity : std::uint8_t { Error, Warning, Note };

constexpr std::string_view severity_name(Severity s) {
  return s == Severity::Error ? "error" : s == Severity::Warning ? "warning" : "note";
}

// The severity a code is reported with: its SARIF rule's default level and
// the level in docs/diagnostics.md (tests/test_report.cpp holds the two
// together). A code added as a warning belongs here. (duplicate-key is an
// error, and a warning only when a key is given in both spellings.)
constexpr Severity default_severity(Code c) {
  switch (c) {
    case Code::Binaries:
    case Code::SecretHostUid:
    case Code::FilenoLimit:
    case Code::Bridge:
    case Code::NoProcesses:
      return Severity::Warning;
    default:
      return Severity::Error;
  }
}

struct Mark {
  int line = 0;    // 1-based; 0 = whole file
  int column = 0;  // 1-based
  friend bool operator==(const Mark&, const Mark&) = default;
};

struct Diagnostic {
  std::string file;
  Mark mark;
  Severity severity = Severity::Error;
  Code code = Code::YamlSyntax;
  std::string message;

  // "FILE:LINE: message", or "FILE: message" for a problem with the whole
  // file: the form the launchers log (lithos_check prints the full report).
  std::string one_line() const {
    std::string out = file;
    if (mark.line > 0) out += ":" + std::to_string(mark.line);
    return out + ": " + message;
  }
};

class Diagnostics {
 public:
  void add(Diagnostic d) { items_.push_back(std::move(d)); }
  void error(std::string file, Mark mark, Code code, std::string message) {
    items_.push_back({std::move(file), mark, Severity::Error, code, std::move(message)});
  }
  void warning(std::string file, Mark mark, Code code, std::string message) {
    items_.push_back({std::move(file), mark, Severity::Warning, code, std::move(message)});
  }
  void note(std::string file, Mark mark, Code code, std::string message) {
    items_.push_back({std::move(file), mark, Severity::Note, code, std::move(message)});
  }
  // The errors' one_line() forms joined by "; ", for one log line.
  std::string errors_one_line() const {
    std::string out;
    for (const auto& d : items_) {
      if (d.severity != Severity::Error) continue;
      if (!out.empty()) out += "; ";
      out += d.one_line();
    }
    return out;
  }
  bool has_errors() const {
    return std::any_of(items_.begin(), items_.end(),
                       [](const Diagnostic& d) { return d.severity == Severity::Error; });
  }
  std::size_t error_count() const {
    return static_cast<std::size_t>(
        std::count_if(items_.begin(), items_.end(),
                      [](const Diagnostic& d) { return d.severity == Severity::Error; }));
  }
  std::size_t warning_count() const {
    return static_cast<std::size_t>(
        std::count_if(items_.begin(), items_.end(),
                      [](const Diagnostic& d) { return d.severity == Severity::Warning; }));
  }
  const std::vector<Diagnostic>& items() const { return items_; }
  std::vector<Diagnostic>& items() { return items_; }
  bool empty() const { return items_.empty(); }
  std::size_t size() const { return items_.size(); }
  void append(const Diagnostics& other) {
    items_.insert(items_.end(), other.items_.begin(), other.items_.end());
  }
  // The order of every report: by file, line, column, then code id and
  // message (then severity, errors first); exact duplicates removed.
  // lithos_check applies it once, before any format.
  Diagnostics sorted_unique() const {
    auto key = [](const Diagnostic& d) {
      return std::make_tuple(std::string_view(d.file), d.mark.line, d.mark.column, code_id(d.code),
                             std::string_view(d.message), d.severity);
    };
    Diagnostics out = *this;
    std::stable_sort(out.items_.begin(), out.items_.end(),
                     [&](const Diagnostic& a, const Diagnostic& b) { return key(a) < key(b); });
    out.items_.erase(
        std::unique(out.items_.begin(), out.items_.end(),
                    [&](const Diagnostic& a, const Diagnostic& b) { return key(a) == key(b); }),
        out.items_.end());
    return out;
  }

 private:
  std::vector<Diagnostic> items_;
};

// The text of every file read, kept so that reports can quote the offending
// line under its diagnostic.
class Sources {
 public:
  void add(const std::string& file, std::string text) { texts_[file] = std::move(text); }
  std::optional<std::string_view> line(const std::string& file, int line_no) const {
    auto it = texts_.find(file);
    if (it == texts_.end() || line_no < 1) return std::nullopt;
    std::string_view text = it->second;
    for (int current = 1; current < line_no; ++current) {
      auto nl = text.find('\n');
      if (nl == std::string_view::npos) return std::nullopt;
      text.remove_prefix(nl + 1);
    }
    auto nl = text.find('\n');
    return text.substr(0, nl);
  }

 private:
  std::map<std::string, std::string> texts_;
};

}  // namespace lithos::policy
