// libyaml events -> a Node tree where every node knows its file:line:col.
// Aliases are expanded under a hard budget, nesting depth is bounded,
// duplicate keys and unsupported tags are diagnostics, never crashes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lithos/policy/diagnostics.hpp"

namespace lithos::policy::yaml {

struct Node {
  enum class Kind { Scalar, Sequence, Mapping };
  struct Entry;  // a key and its value; complete after Node

  Kind kind = Kind::Scalar;
  std::string tag;  // "" or a local tag such as "!Readonly"
  Mark mark;
  std::string value;         // scalars only
  bool plain = false;        // scalar written without quotes
  std::vector<Node> items;   // sequences
  std::vector<Entry> pairs;  // mappings, keys are scalars

  bool is_scalar() const { return kind == Kind::Scalar; }
  bool is_sequence() const { return kind == Kind::Sequence; }
  bool is_mapping() const { return kind == Kind::Mapping; }
  // `key:` with nothing after it (or an empty file).
  bool is_implicit_null() const {
    return kind == Kind::Scalar && plain && tag.empty() && value.empty();
  }
  // `key: ~` or `key: null`, unquoted. `Null`, `NULL` are ordinary strings.
  bool is_explicit_null() const {
    // Compared as views: a size check first, no strlen or out-of-line compare.
    const std::string_view v = value;
    return kind == Kind::Scalar && plain && tag.empty() && (v == "~" || v == "null");
  }
  bool is_null() const { return is_implicit_null() || is_explicit_null(); }
  // A tagged node whose value is empty (`!Persistent` alone).
  bool is_empty_scalar() const { return kind == Kind::Scalar && plain && value.empty(); }
};

struct Node::Entry {
  Node first;
  Node second;
  Entry() = default;
  Entry(Node key, Node value) : first(std::move(key)), second(std::move(value)) {}
};

struct Limits {
  std::size_t max_file_bytes = 16u << 20;
  std::size_t max_nodes = 1'000'000;  // after alias expansion
  int max_depth = 64;
};

// Parses one document. On any error the diagnostics say why and nullopt is
// returned; an empty file yields an implicit-null scalar.
std::optional<Node> parse(std::string_view text, const std::string& file, Diagnostics& diags,
                          const Limits& limits = {});

// Reads and parses a file; the text is registered in `sources` for reports.
std::optional<Node> load_file(const std::string& path, Diagnostics& diags, Sources* sources,
                              const Limits& limits = {});

// Reads a file into memory with the size limit; nullopt (and a diagnostic)
// when unreadable.
std::optional<std::string> read_text(const std::string& path, Diagnostics& diags,
                                     const Limits& limits = {});

// Block-style YAML text of a node tree. Strings that would read back as null
// (`~`, `null`, empty) or that need it are quoted; nodes with `plain` set are
// written as-is (used for `~`).
std::string emit(const Node& node);

}  // namespace lithos::policy::yaml
