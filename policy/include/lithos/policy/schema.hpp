// The field-table machinery. Each config struct is declared once as a plain
// struct plus one `Schema<T>` specialisation listing its fields; decoding
// (with precise diagnostics), defaults, unknown-key errors and the canonical
// printer all derive from that table (and so do the RapidCheck generators in
// proptests/generators.hpp).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "lithos/policy/diagnostics.hpp"
#include "lithos/policy/scalars.hpp"
#include "lithos/policy/yaml.hpp"

namespace lithos::policy {

// Specialised once per config struct, enum and tagged alternative.
template <class T>
struct Schema;

namespace schema {

using yaml::Node;

// Hash of a short text (paths, keys): eight bytes at a time, multiply and
// fold (inlined; std::hash of a string_view is an out-of-line call).
inline std::size_t short_text_hash(std::string_view s) {
  std::uint64_t h = 0x9E3779B97F4A7C15ULL ^ s.size();
  const char* p = s.data();
  std::size_t n = s.size();
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
    h ^= h >> 32;
  }
  std::uint64_t w = 0;
  if (n != 0) std::memcpy(&w, p, n);  // an empty view may have no data pointer
  h = (h ^ w) * 0xC4CEB9FE1A85EC53ULL;
  return static_cast<std::size_t>(h ^ (h >> 29));
}

// Where each decoded value came from, keyed by a readable path such as
// `.children[web].image` or `.volumes[/data].path`, so that cross-file checks
// can point at the exact line and column.
//
// Decoding records one path per node, so recording must be cheap: the paths
// are appended to one buffer and indexed by an open-addressing hash table of
// entry numbers (no allocation per path). The first mark recorded for a path
// is kept.
//
// Most documents decode cleanly and are never asked for a mark (marks serve
// diagnostics), so a document may instead carry a way to fill its table —
// decoding its kept YAML tree again, recording — run on the first lookup.
// Not for concurrent lookups from several threads on one table.
class MarkTable {
 public:
  void fill_on_demand(std::function<void(MarkTable&)> fill) { fill_ = std::move(fill); }
  // Tables filled on demand so far in this process (benchmark and tests
  // check that a clean run fills none).
  static std::size_t demand_fills() { return demand_fills_.load(std::memory_order_relaxed); }

  void set(std::string_view path, Mark mark) {
    if (slots_.empty()) {
      // Sized for a typical config file, so that small files never regrow.
      entries_.reserve(64);
      text_.reserve(1024);
    }
    if (slots_.empty() || (entries_.size() + 1) * 2 > slots_.size()) grow();
    const std::size_t h = hash(path);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const std::uint32_t slot = slots_[i];
      if (slot == kEmpty) {
        slots_[i] = static_cast<std::uint32_t>(entries_.size());
        entries_.push_back({static_cast<std::uint32_t>(text_.size()),
                            static_cast<std::uint32_t>(path.size()), h, mark});
        text_.append(path);
        return;
      }
      if (entries_[slot].hash == h && text_of(entries_[slot]) == path) return;
    }
  }
  // The mark of `path`, or of its nearest recorded ancestor.
  Mark find(std::string_view path) const {
    fill_now();
    while (true) {
      if (const Entry* e = lookup(path)) return e->mark;
      if (path.empty()) return {1, 1};
      auto cut = path.find_last_of(".[");
      path = cut == std::string_view::npos ? std::string_view{} : path.substr(0, cut);
    }
  }
  bool has(std::string_view path) const {
    fill_now();
    return lookup(path) != nullptr;
  }

 private:
  void fill_now() const {
    if (!fill_) return;
    auto fill = std::move(fill_);
    fill_ = nullptr;
    // Lookups on a const table may fill it; the members are mutable, so
    // this is defined even for a table declared const.
    fill(const_cast<MarkTable&>(*this));
    demand_fills_.fetch_add(1, std::memory_order_relaxed);
  }

  struct Entry {
    std::uint32_t offset;
    std::uint32_t size;
    std::size_t hash;
    Mark mark;
  };
  static constexpr std::uint32_t kEmpty = 0xFFFFFFFFu;

  static std::size_t hash(std::string_view s) { return short_text_hash(s); }
  std::string_view text_of(const Entry& e) const {
    return std::string_view(text_).substr(e.offset, e.size);
  }
  const Entry* lookup(std::string_view path) const {
    if (slots_.empty()) return nullptr;
    const std::size_t h = hash(path);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const std::uint32_t slot = slots_[i];
      if (slot == kEmpty) return nullptr;
      if (entries_[slot].hash == h && text_of(entries_[slot]) == path) return &entries_[slot];
    }
  }
  void grow() {
    std::vector<std::uint32_t> slots(slots_.empty() ? 128 : slots_.size() * 2, kEmpty);
    const std::size_t mask = slots.size() - 1;
    for (std::uint32_t n = 0; n < entries_.size(); ++n) {
      std::size_t i = entries_[n].hash & mask;
      while (slots[i] != kEmpty) i = (i + 1) & mask;
      slots[i] = n;
    }
    slots_ = std::move(slots);
  }

  mutable std::string text_;                  // every recorded path, back to back
  mutable std::vector<Entry> entries_;        // in recording order
  mutable std::vector<std::uint32_t> slots_;  // entry numbers; size a power of two
  mutable std::function<void(MarkTable&)> fill_;
  inline static std::atomic<std::size_t> demand_fills_{0};
};

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

inline std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

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

// ---------------------------------------------------------------- codecs
// A codec has `value_type`, `static bool decode(const Node&, Context&,
// value_type&)` (reports its own diagnostics) and `static Node encode(const
// value_type&, yaml::Arena&)`: the arena keeps the nodes' text. Its
// `static std::string type_name()` is the short name the generated key
// reference (reference.hpp) shows for it.

struct Str {
  using value_type = std::string;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (!n.is_scalar()) {
      ctx.error(n.mark, Code::WrongType, "expected a string, found " + std::string(kind_name(n)));
      return false;
    }
    if (!n.tag.empty()) {
      ctx.error(n.mark, Code::BadTag, "the tag " + std::string(n.tag) + " is not expected here");
      return false;
    }
    if (n.is_explicit_null()) {
      ctx.error(n.mark, Code::NullValue, "a string is required here, found null");
      return false;
    }
    // An empty plain value (`KEY:` in a mapping, `- ` in a list) is a null,
    // not an empty string (docs/configs.md, "Null and defaults"); fields with a default or that
    // are optional never get here (see Struct::decode_field).
    if (n.is_implicit_null()) {
      ctx.error(n.mark, Code::NullValue,
                "a string is required here, found an empty value (write \"\" for an empty string)");
      return false;
    }
    out = n.value;
    return true;
  }
  static Node encode(const value_type& v, yaml::Arena& arena) { return scalar_node(arena, v); }
  static std::string type_name() { return "string"; }
};
// A string that names a file or directory: decoded as a string, shown as a
// path in the key reference.
struct Path : Str {
  static std::string type_name() { return "path"; }
};

struct Bool {
  using value_type = bool;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (!expect_scalar(n, ctx)) return false;
    auto r = scalars::parse_bool(n.value);
    if (!r) {
      ctx.error(n.mark, Code::BadBool, r.error());
      return false;
    }
    out = *r;
    return true;
  }
  static Node encode(value_type v, yaml::Arena& arena) {
    return scalar_node(arena, v ? "true" : "false");
  }
  static std::string type_name() { return "bool"; }
};

// Numbers (docs/configs.md, "Scalars"), range-checked on the 64-bit value, then narrowed.
// The default bounds are those of T, so that narrowing never wraps (step 7:
// a value that does not fit the storage type is an error).
template <class T,
          std::int64_t Min =
              std::is_signed_v<T> ? static_cast<std::int64_t>(std::numeric_limits<T>::min()) : 0,
          std::int64_t Max = (std::numeric_limits<T>::max() >
                              static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                                 ? std::numeric_limits<std::int64_t>::max()
                                 : static_cast<std::int64_t>(std::numeric_limits<T>::max())>
struct Numeric {
  using value_type = T;
  static constexpr std::int64_t min = Min;
  static constexpr std::int64_t max = Max;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (!expect_scalar(n, ctx)) return false;
    auto r = scalars::parse_numeric(n.value);
    if (!r) {
      ctx.error(n.mark, Code::BadNumber, r.error());
      return false;
    }
    if (*r < Min) {
      ctx.error(n.mark, Code::BadNumber, "Value must be at least " + std::to_string(Min));
      return false;
    }
    if (*r > Max) {
      ctx.error(n.mark, Code::BadNumber, "Value must be at most " + std::to_string(Max));
      return false;
    }
    out = static_cast<T>(*r);
    return true;
  }
  static Node encode(value_type v, yaml::Arena& arena) {
    return scalar_node(arena, std::to_string(v));
  }
  // Bounds are named only when narrower than the storage type's.
  static std::string type_name() {
    if (Numeric<T>::min == Min && Numeric<T>::max == Max) return "integer";
    return "integer " + std::to_string(Min) + " to " + std::to_string(Max);
  }
};

// Plain ints (docs/configs.md, "Scalars"): decimal digits only.
struct PlainU32 {
  using value_type = std::uint32_t;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (!expect_scalar(n, ctx)) return false;
    auto r = scalars::parse_plain_u32(n.value);
    if (!r) {
      ctx.error(n.mark, Code::BadNumber, r.error());
      return false;
    }
    out = *r;
    return true;
  }
  static Node encode(value_type v, yaml::Arena& arena) {
    return scalar_node(arena, std::to_string(v));
  }
  static std::string type_name() { return "plain integer"; }
};

// Timeouts: decimal seconds (a fix over the original's whole seconds), kept as
// whole milliseconds so that values compare and print exactly.
struct Milliseconds {
  std::int64_t count = 0;
  friend bool operator==(const Milliseconds&, const Milliseconds&) = default;
  friend auto operator<=>(const Milliseconds&, const Milliseconds&) = default;
};

inline std::string format_seconds(Milliseconds ms) {
  std::string out = std::to_string(ms.count / 1000);
  if (auto frac = ms.count % 1000; frac != 0) {
    std::string digits = std::to_string(frac + 1000).substr(1);
    while (!digits.empty() && digits.back() == '0') digits.pop_back();
    out += "." + digits;
  }
  return out;
}

template <std::int64_t MaxSeconds>
struct Seconds {
  using value_type = Milliseconds;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (!expect_scalar(n, ctx)) return false;
    auto r = scalars::parse_seconds(n.value);
    if (!r) {
      ctx.error(n.mark, Code::BadDuration, r.error());
      return false;
    }
    if (*r < 0 || *r > static_cast<double>(MaxSeconds)) {
      ctx.error(n.mark, Code::BadDuration,
                "Value must be between 0 and " + std::to_string(MaxSeconds) + " seconds");
      return false;
    }
    out.count = static_cast<std::int64_t>(*r * 1000.0 + 0.5);
    return true;
  }
  static Node encode(value_type v, yaml::Arena& arena) {
    return scalar_node(arena, format_seconds(v));
  }
  static std::string type_name() { return "seconds 0 to " + std::to_string(MaxSeconds); }
};

struct RangeCodec {
  using value_type = scalars::Range;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (!expect_scalar(n, ctx)) return false;
    auto r = scalars::parse_range(n.value);
    if (!r) {
      ctx.error(n.mark, Code::BadRange, r.error());
      return false;
    }
    out = *r;
    return true;
  }
  static Node encode(const value_type& v, yaml::Arena& arena) {
    return scalar_node(arena, scalars::format_range(v));
  }
  static std::string type_name() { return "range"; }
};

struct IpCodec {
  using value_type = scalars::IpAddress;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (!expect_scalar(n, ctx)) return false;
    auto r = scalars::parse_ip(n.value);
    if (!r) {
      ctx.error(n.mark, Code::BadAddress, r.error());
      return false;
    }
    out = *r;
    return true;
  }
  static Node encode(const value_type& v, yaml::Arena& arena) {
    return scalar_node(arena, scalars::format_ip(v));
  }
  static std::string type_name() { return "IP address"; }
};

struct NetworkCodec {
  using value_type = scalars::Network;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (!expect_scalar(n, ctx)) return false;
    auto r = scalars::parse_network(n.value);
    if (!r) {
      ctx.error(n.mark, Code::BadAddress, r.error());
      return false;
    }
    out = *r;
    return true;
  }
  static Node encode(const value_type& v, yaml::Arena& arena) {
    return scalar_node(arena, scalars::format_network(v));
  }
  static std::string type_name() { return "network (address/prefix)"; }
};

// A scalar restricted to a set of names given by `Schema<E>::names`, an
// array of {value, "Name"} pairs. A tag with an empty value (`!systemd`)
// selects the same name.
template <class E>
struct Enum {
  using value_type = E;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (!n.is_scalar()) {
      ctx.error(n.mark, Code::WrongType,
                "expected one of " + choices() + ", found " + std::string(kind_name(n)));
      return false;
    }
    std::string text(n.value);
    if (!n.tag.empty()) {
      if (!n.value.empty()) {
        ctx.error(n.mark, Code::BadTag, "the tag " + std::string(n.tag) + " is not expected here");
        return false;
      }
      text = n.tag.substr(1);
    } else if (n.is_null()) {
      ctx.error(n.mark, Code::NullValue, "expected one of " + choices() + ", found null");
      return false;
    }
    std::replace(text.begin(), text.end(), '-', '_');
    for (const auto& [value, name] : Schema<E>::names) {
      if (text == name) {
        out = value;
        return true;
      }
    }
    ctx.error(n.mark, Code::BadEnum,
              "unknown value " + quote(n.tag.empty() ? n.value : n.tag) + ", expected one of " +
                  choices());
    return false;
  }
  static Node encode(value_type v, yaml::Arena& arena) {
    for (const auto& [value, name] : Schema<E>::names)
      if (value == v) return scalar_node(arena, name);
    return null_node();
  }
  static std::string name_of(value_type v) {
    for (const auto& [value, name] : Schema<E>::names)
      if (value == v) return std::string(name);
    return "~";
  }
  static std::string choices() {
    std::string out;
    for (const auto& [value, name] : Schema<E>::names) {
      if (!out.empty()) out += ", ";
      out += name;
    }
    return out;
  }
  static std::string type_name() {
    std::string out;
    for (const auto& [value, name] : Schema<E>::names)
      out += (out.empty() ? "" : "|") + std::string(name);
    return "one of " + out;
  }
};

template <class C>
struct Seq {
  using value_type = std::vector<typename C::value_type>;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    out.clear();
    if (n.is_implicit_null() || n.is_explicit_null()) return true;
    if (!n.is_sequence()) {
      ctx.error(n.mark, Code::WrongType, "expected a sequence, found " + std::string(kind_name(n)));
      return false;
    }
    bool ok = true;
    out.reserve(n.items.size());
    for (std::size_t i = 0; i < n.items.size(); ++i) {
      char digits[24];
      const auto end = std::to_chars(digits, digits + sizeof digits, i).ptr;
      auto seg = ctx.key(std::string_view(digits, static_cast<std::size_t>(end - digits)));
      ctx.record(n.items[i]);
      typename C::value_type item{};
      if (C::decode(n.items[i], ctx, item)) {
        out.push_back(std::move(item));
      } else {
        ok = false;
      }
    }
    return ok;
  }
  static Node encode(const value_type& v, yaml::Arena& arena) {
    std::vector<Node> items;
    items.reserve(v.size());
    for (const auto& item : v) items.push_back(C::encode(item, arena));
    return sequence_node(arena, items);
  }
  static std::string type_name() { return "list of " + C::type_name(); }
};

// Free-form mappings: keys are taken literally (no dash/underscore folding).
template <class C>
struct Map {
  using value_type = std::map<std::string, typename C::value_type>;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    out.clear();
    if (n.is_implicit_null() || n.is_explicit_null()) return true;
    if (!n.is_mapping()) {
      ctx.error(n.mark, Code::WrongType, "expected a mapping, found " + std::string(kind_name(n)));
      return false;
    }
    bool ok = true;
    for (const auto& [key, value] : n.pairs) {
      auto seg = ctx.key(key.value);
      ctx.record(key);
      ctx.record_as(":value", value);
      typename C::value_type item{};
      if (C::decode(value, ctx, item)) {
        out.emplace(key.value, std::move(item));
      } else {
        ok = false;
      }
    }
    return ok;
  }
  static Node encode(const value_type& v, yaml::Arena& arena) {
    std::vector<Node::Entry> pairs;
    pairs.reserve(v.size());
    for (const auto& [key, item] : v)
      pairs.push_back({scalar_node(arena, key), C::encode(item, arena)});
    return mapping_node(arena, pairs);
  }
  static std::string type_name() { return "map of string to " + C::type_name(); }
};

// A scalar or a list of scalars, kept as a list (secret-environ values).
struct OneOrMany {
  using value_type = std::vector<std::string>;
  static bool decode(const Node& n, Context& ctx, value_type& out) {
    out.clear();
    if (n.is_sequence()) return Seq<Str>::decode(n, ctx, out);
    std::string one;
    if (!Str::decode(n, ctx, one)) return false;
    out.push_back(std::move(one));
    return true;
  }
  static Node encode(const value_type& v, yaml::Arena& arena) {
    if (v.size() == 1) return scalar_node(arena, v.front());
    return Seq<Str>::encode(v, arena);
  }
  static std::string type_name() { return "string or list of string"; }
};

// Accepts any YAML and keeps nothing (`metadata`).
struct Ignored {
  friend bool operator==(const Ignored&, const Ignored&) { return true; }
};
struct AnyNode {
  using value_type = Ignored;
  static bool decode(const Node&, Context&, value_type&) { return true; }
  static Node encode(const value_type&, yaml::Arena&) { return null_node(); }
  static std::string type_name() { return "any YAML"; }
};

// ---------------------------------------------------------------- fields

enum class Presence {
  Required,   // absent or null: an error
  Defaulted,  // absent or null: the struct's default member value
  Optional,   // absent: the struct's default; null: unset (std::nullopt)
};

template <class C, class S, class M>
struct Field {
  using codec = C;
  using owner = S;
  std::string_view name;  // underscore spelling, e.g. "user_id"
  M S::*member;
  Presence presence;
  std::string_view doc = {};
};

template <class C, class S>
constexpr auto required(std::string_view name, typename C::value_type S::*member,
                        std::string_view doc = {}) {
  return Field<C, S, typename C::value_type>{name, member, Presence::Required, doc};
}
template <class C, class S>
constexpr auto defaulted(std::string_view name, typename C::value_type S::*member,
                         std::string_view doc = {}) {
  return Field<C, S, typename C::value_type>{name, member, Presence::Defaulted, doc};
}
template <class C, class S>
constexpr auto optional(std::string_view name, std::optional<typename C::value_type> S::*member,
                        std::string_view doc = {}) {
  return Field<C, S, std::optional<typename C::value_type>>{name, member, Presence::Optional, doc};
}

// `user_id` is also accepted as `user-id` (docs/configs.md); printing uses
// the dashed form.
inline std::string dashed(std::string_view name) {
  std::string out(name);
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The candidate a misspelt `word` most likely meant, or "" when none is close
// (at most a third of the longer name, plus one, edits away). Candidates equal
// to `word` once every `ignore` character is dropped win outright
// ("user_id" / "userid" / "user-id"). The one "did you mean" rule for keys,
// capability, system call and variable names.
template <class Names>
std::string nearest_name(std::string_view word, const Names& candidates, char ignore = '\0') {
  auto compact = [ignore](std::string_view text) {
    std::string out(text);
    if (ignore != '\0') std::erase(out, ignore);
    return out;
  };
  const std::string compact_word = compact(word);
  std::string best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (const auto& candidate_value : candidates) {
    std::string_view candidate(candidate_value);
    std::size_t d = compact(candidate) == compact_word ? 0 : edit_distance(word, candidate);
    bool close = d * 3 <= std::max(word.size(), candidate.size()) + 3;
    if (close && d < best_distance) {
      best_distance = d;
      best = std::string(candidate);
    }
  }
  return best;
}

template <class S>
constexpr std::string_view struct_name() {
  return Schema<S>::name;
}

template <class S>
struct Struct;

template <class S>
std::string suggestion_for(std::string_view key) {
  std::vector<std::string> candidates;
  std::apply([&](const auto&... f) { (candidates.push_back(dashed(f.name)), ...); },
             Schema<S>::fields);
  return nearest_name(dashed(key), candidates, /*ignore=*/'-');
}

template <class S>
struct Struct {
  using value_type = S;

  static bool decode(const Node& n, Context& ctx, S& out) {
    out = S{};
    if (n.is_implicit_null()) {
      static const Node empty = empty_mapping();
      return decode_mapping(empty, n.mark, ctx, out);
    }
    if (!n.is_mapping()) {
      ctx.error(n.mark, Code::WrongType,
                "expected a mapping (" + std::string(struct_name<S>()) + "), found " +
                    std::string(kind_name(n)));
      return false;
    }
    return decode_mapping(n, n.mark, ctx, out);
  }

  static Node encode(const S& value, yaml::Arena& arena) {
    std::vector<Node::Entry> pairs;
    pairs.reserve(field_count);
    std::apply([&](const auto&... f) { (encode_field(f, value, pairs, arena), ...); },
               Schema<S>::fields);
    return mapping_node(arena, pairs);
  }

  static std::string type_name() { return "mapping (" + std::string(struct_name<S>()) + ")"; }

 private:
  static constexpr std::size_t field_count =
      std::tuple_size_v<std::decay_t<decltype(Schema<S>::fields)>>;

  // The dashed spelling of every field, computed once per struct type.
  static const std::array<std::string, field_count>& dashed_names() {
    static const auto names = std::apply(
        [](const auto&... f) { return std::array<std::string, field_count>{dashed(f.name)...}; },
        Schema<S>::fields);
    return names;
  }

  // Every accepted spelling of every field, sorted by spelling, so that one
  // pass over a mapping's keys finds each key's field by binary search.
  struct Spelling {
    std::string_view text;
    std::size_t field;
    bool dashed;  // the dashed spelling of a name that has underscores
  };
  static const std::vector<Spelling>& spellings() {
    static const std::vector<Spelling> table = [] {
      std::vector<Spelling> out;
      const auto& names = dashed_names();
      std::size_t i = 0;
      std::apply(
          [&](const auto&... f) {
            (
                [&] {
                  out.push_back({f.name, i, false});
                  if (names[i] != f.name) out.push_back({names[i], i, true});
                  ++i;
                }(),
                ...);
          },
          Schema<S>::fields);
      std::stable_sort(out.begin(), out.end(),
                       [](const Spelling& x, const Spelling& y) { return x.text < y.text; });
      return out;
    }();
    return table;
  }

  // The first table entry spelled `key`, or table.size(): one hash probe
  // instead of a binary search of string comparisons (every key of every
  // mapping is looked up).
  static std::size_t find_spelling(std::string_view key) {
    static constexpr std::uint32_t kNone = 0xFFFFFFFFu;
    static const std::vector<std::uint32_t> slots = [] {
      const auto& table = spellings();
      std::size_t size = 16;
      while (size < table.size() * 2) size *= 2;
      std::vector<std::uint32_t> out(size, kNone);
      for (std::uint32_t i = 0; i < table.size(); ++i) {
        if (i > 0 && table[i].text == table[i - 1].text) continue;  // only the first
        std::size_t h = short_text_hash(table[i].text) & (size - 1);
        while (out[h] != kNone) h = (h + 1) & (size - 1);
        out[h] = i;
      }
      return out;
    }();
    const auto& table = spellings();
    const std::size_t mask = slots.size() - 1;
    for (std::size_t h = short_text_hash(key) & mask;; h = (h + 1) & mask) {
      const std::uint32_t i = slots[h];
      if (i == kNone) return table.size();
      if (table[i].text == key) return i;
    }
  }

  // Where each field's key is in the mapping, by spelling; npos when absent.
  struct Found {
    std::size_t under = std::string::npos;
    std::size_t dash = std::string::npos;
  };

  template <std::size_t... I>
  static bool decode_fields(std::index_sequence<I...>, const Node& n, Mark mark,
                            const std::array<Found, field_count>& found, Context& ctx, S& out) {
    const auto& names = dashed_names();
    bool ok = true;
    ((ok = decode_field(std::get<I>(Schema<S>::fields), names[I], found[I], n, mark, ctx, out) &&
           ok),
     ...);
    return ok;
  }

  static bool decode_mapping(const Node& n, Mark mark, Context& ctx, S& out) {
    const auto& table = spellings();
    std::array<Found, field_count> found{};
    // Keys that name no field; few, so a small list beats a bitmap.
    std::vector<std::size_t> unknown;
    for (std::size_t i = 0; i < n.pairs.size(); ++i) {
      std::string_view key = n.pairs[i].first.value;
      auto it = table.begin() + static_cast<std::ptrdiff_t>(find_spelling(key));
      if (it == table.end()) {
        unknown.push_back(i);
        continue;
      }
      for (; it != table.end() && it->text == key; ++it)
        (it->dashed ? found[it->field].dash : found[it->field].under) = i;
    }
    bool ok = decode_fields(std::make_index_sequence<field_count>{}, n, mark, found, ctx, out);
    for (std::size_t i : unknown) {
      const Node& key = n.pairs[i].first;
      if (!key.value.empty() && key.value.front() == '_') continue;  // anchor holders
      std::string message =
          "unknown key " + quote(key.value) + " in " + std::string(struct_name<S>());
      if (auto hint = suggestion_for<S>(key.value); !hint.empty())
        message += " (did you mean " + quote(hint) + "?)";
      ctx.error(key.mark, Code::UnknownKey, std::move(message));
      ok = false;
    }
    return ok;
  }

  template <class F>
  static bool decode_field(const F& f, const std::string& dash, const Found& where, const Node& n,
                           Mark mark, Context& ctx, S& out) {
    using C = typename F::codec;
    const bool under_at = where.under != std::string::npos;
    const bool dash_at = where.dash != std::string::npos;
    if (under_at && dash_at) {
      ctx.warning(n.pairs[where.dash].first.mark, Code::YamlDuplicateKey,
                  "both " + quote(f.name) + " and " + quote(dash) + " are given; " + quote(dash) +
                      " is ignored");
    }
    if (!under_at && !dash_at) {
      if (f.presence == Presence::Required) {
        ctx.error(mark, Code::MissingKey,
                  "missing required key " + quote(dash) + " in " + std::string(struct_name<S>()));
        return false;
      }
      return true;
    }
    auto seg = ctx.field(dash);
    const Node& value = n.pairs[under_at ? where.under : where.dash].second;
    ctx.record(value);
    if (value.is_null()) {
      switch (f.presence) {
        case Presence::Required:
          ctx.error(value.mark, Code::NullValue, "a value is required for " + quote(dash));
          return false;
        case Presence::Defaulted:
          return true;
        case Presence::Optional:
          if constexpr (requires { (out.*f.member).reset(); }) (out.*f.member).reset();
          return true;
      }
    }
    if constexpr (std::is_same_v<std::decay_t<decltype(out.*f.member)>, typename C::value_type>) {
      // Decoded in place: every codec overwrites (or clears) its output, and
      // a struct with a failed field is discarded by its caller.
      return C::decode(value, ctx, out.*f.member);
    } else {
      typename C::value_type decoded{};
      if (!C::decode(value, ctx, decoded)) return false;
      out.*f.member = std::move(decoded);
      return true;
    }
  }

  template <class F>
  static void encode_field(const F& f, const S& value, std::vector<Node::Entry>& pairs,
                           yaml::Arena& arena) {
    using C = typename F::codec;
    Node key = scalar_node(arena, dashed(f.name));
    if constexpr (requires { (value.*f.member).has_value(); }) {
      const auto& opt = value.*f.member;
      pairs.push_back({key, opt ? C::encode(*opt, arena) : null_node()});
    } else {
      pairs.push_back({key, C::encode(value.*f.member, arena)});
    }
  }
};

// ---------------------------------------------------------------- tagged unions
// `Schema<Alt>::tag` names the YAML tag of each alternative; the body is a
// mapping when the schema has `fields`, nothing when it has `empty = true`, or
// a single value (`using body = Codec; static constexpr auto member`).

template <class Alt>
constexpr bool has_fields = requires {
  Schema<Alt>::fields;
};
template <class Alt>
constexpr bool has_body = requires {
  typename Schema<Alt>::body;
};

template <class Variant>
struct Tagged;

template <class... Alts>
struct Tagged<std::variant<Alts...>> {
  using value_type = std::variant<Alts...>;

  static std::string tags() {
    std::string out;
    ((out += (out.empty() ? "" : ", ") + std::string(Schema<Alts>::tag)), ...);
    return out;
  }
  static std::string type_name() {
    std::string out;
    ((out += (out.empty() ? "" : "|") + std::string(Schema<Alts>::tag)), ...);
    return out;
  }

  static bool decode(const Node& n, Context& ctx, value_type& out) {
    if (n.tag.empty()) {
      ctx.error(n.mark, Code::BadTag, "One of the tags [" + tags() + "] expected");
      return false;
    }
    bool matched = false, ok = false;
    ((!matched && n.tag == Schema<Alts>::tag ? (matched = true, ok = decode_alt<Alts>(n, ctx, out))
                                             : false),
     ...);
    if (!matched) {
      ctx.error(n.mark, Code::BadTag,
                "The tag " + std::string(n.tag) + " is not expected (one of [" + tags() + "])");
      return false;
    }
    return ok;
  }

  static Node encode(const value_type& v, yaml::Arena& arena) {
    return std::visit(
        [&arena](const auto& alt) {
          using Alt = std::decay_t<decltype(alt)>;
          Node n;
          if constexpr (has_fields<Alt>) {
            n = Struct<Alt>::encode(alt, arena);
          } else if constexpr (has_body<Alt>) {
            n = Schema<Alt>::body::encode(alt.*Schema<Alt>::member, arena);
          } else {
            n = null_node();
          }
          n.tag = Schema<Alt>::tag;  // static storage
          return n;
        },
        v);
  }

 private:
  // The node without its tag is null (what `is_null` would say of it).
  static bool untagged_null(const Node& n) {
    const std::string_view v = n.value;
    return n.is_scalar() && n.plain && (v.empty() || v == "~" || v == "null");
  }

  template <class Alt>
  static bool decode_alt(const Node& n, Context& ctx, value_type& out) {
    Alt alt{};
    if constexpr (has_fields<Alt>) {
      // Struct decoding never looks at the tag of its node, so the tagged
      // node is decoded in place (an untagged copy would copy the subtree).
      static const Node empty = empty_mapping();
      if (!Struct<Alt>::decode(n.is_empty_scalar() ? empty : n, ctx, alt)) return false;
    } else if constexpr (has_body<Alt>) {
      if (untagged_null(n)) {
        ctx.error(n.mark, Code::NullValue, std::string(n.tag) + " needs a value");
        return false;
      }
      Node body = n;
      body.tag = {};
      if (!Schema<Alt>::body::decode(body, ctx, alt.*Schema<Alt>::member)) return false;
    } else {
      if (!untagged_null(n)) {
        ctx.error(n.mark, Code::BadTag, std::string(n.tag) + " takes no value (Null expected)");
        return false;
      }
    }
    out = std::move(alt);
    return true;
  }
};

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
