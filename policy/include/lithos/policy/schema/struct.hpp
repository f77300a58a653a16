// Layer 4 of schema.hpp: fields and Struct, the engine that decodes and prints
// a config struct from its `Schema<S>::fields` table, with "did you mean"
// hints. Uses schema.hpp's `quote`: include schema.hpp, not this part.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "lithos/policy/diagnostics.hpp"
#include "lithos/policy/schema/codecs.hpp"
#include "lithos/policy/schema/context.hpp"
#include "lithos/policy/schema/marks.hpp"

namespace lithos::policy {
namespace schema {

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

// How an unknown-name message ends: ` (did you mean "HINT"?)`, or nothing
// when nearest_name found no hint.
inline std::string did_you_mean(std::string_view hint) {
  return hint.empty() ? std::string() : " (did you mean " + quote(hint) + "?)";
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
      message += did_you_mean(suggestion_for<S>(key.value));
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

}  // namespace schema
}  // namespace lithos::policy
