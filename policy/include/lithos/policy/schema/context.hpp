// Layer 2 of schema.hpp: the decode Context (diagnostics, the path being
// decoded, marks), the YAML node builders and checks every codec shares, and
// Document, a decoded file with its marks.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "lithos/policy/diagnostics.hpp"
#include "lithos/policy/schema/marks.hpp"
#include "lithos/policy/yaml.hpp"

namespace lithos::policy {
namespace schema {

using yaml::Node;

inline std::string field_path(const std::string& parent, std::string_view name) {
  return parent + "." + std::string(name);
}
inline std::string key_path(const std::string& parent, std::string_view key) {
  return parent + "[" + std::string(key) + "]";
}

class Context {
 public:
  Context(std::string file, Diagnostics& diags, MarkTable* marks)
      : file_(std::move(file)), diags_(diags), marks_(marks) {}

  void error(Mark mark, Code code, std::string message) {
    diags_.error(file_, mark, code, std::move(message));
  }
  void warning(Mark mark, Code code, std::string message) {
    diags_.warning(file_, mark, code, std::move(message));
  }
  void record(const Node& node) {
    if (marks_) marks_->set(path_, node.mark);
  }
  void record_as(std::string_view suffix, const Node& node) {
    if (!marks_) return;
    const std::size_t size = path_.size();
    path_.append(suffix);
    marks_->set(path_, node.mark);
    path_.resize(size);
  }
  const std::string& path() const { return path_; }
  const std::string& file() const { return file_; }

  // RAII path segment: appended to the one path buffer, cut off again when
  // the segment ends (no string per level).
  class Segment {
   public:
    // Paths only serve the mark table: without one, nothing is built.
    Segment(Context& ctx, char open, std::string_view text, std::string_view close)
        : ctx_(ctx), size_(ctx.path_.size()) {
      if (!ctx.marks_) return;
      ctx.path_ += open;
      ctx.path_.append(text);
      ctx.path_.append(close);
    }
    ~Segment() {
      if (ctx_.marks_) ctx_.path_.resize(size_);
    }
    Segment(const Segment&) = delete;
    Segment& operator=(const Segment&) = delete;

   private:
    Context& ctx_;
    std::size_t size_;
  };
  Segment field(std::string_view name) { return Segment(*this, '.', name, {}); }
  Segment key(std::string_view key) { return Segment(*this, '[', key, "]"); }

 private:
  std::string file_;
  Diagnostics& diags_;
  MarkTable* marks_;
  std::string path_;
};

// Nodes for encoding; their text and children are kept in `arena`.
inline Node scalar_node(yaml::Arena& arena, std::string_view value) {
  Node n;
  n.kind = Node::Kind::Scalar;
  n.value = arena.text(value);
  return n;
}
inline Node null_node() {
  Node n;
  n.value = "~";
  n.plain = true;
  return n;
}
inline Node mapping_node(yaml::Arena& arena, std::span<const Node::Entry> pairs) {
  Node n;
  n.kind = Node::Kind::Mapping;
  n.pairs = arena.copy(pairs);
  return n;
}
inline Node empty_mapping() {
  Node n;
  n.kind = Node::Kind::Mapping;
  return n;
}
inline Node sequence_node(yaml::Arena& arena, std::span<const Node> items) {
  Node n;
  n.kind = Node::Kind::Sequence;
  n.items = arena.copy(items);
  return n;
}

inline std::string_view kind_name(const Node& n) {
  if (n.is_mapping()) return "a mapping";
  if (n.is_sequence()) return "a sequence";
  return "a scalar";
}

// Scalars with a value (not null, not tagged): the common precondition.
inline bool expect_scalar(const Node& n, Context& ctx) {
  if (!n.is_scalar()) {
    ctx.error(n.mark, Code::WrongType, "expected a scalar, found " + std::string(kind_name(n)));
    return false;
  }
  if (!n.tag.empty()) {
    ctx.error(n.mark, Code::BadTag, "the tag " + std::string(n.tag) + " is not expected here");
    return false;
  }
  if (n.is_null()) {
    ctx.error(n.mark, Code::NullValue, "a value is required here, found null");
    return false;
  }
  return true;
}

// ---------------------------------------------------------------- documents

template <class T>
struct Document {
  std::string file;
  T value{};
  MarkTable marks;
};

// Decodes a parsed node as a document of type C::value_type.
template <class C>
bool decode_document(const Node& root, Context& ctx, typename C::value_type& out) {
  ctx.record(root);
  return C::decode(root, ctx, out);
}

}  // namespace schema
}  // namespace lithos::policy
