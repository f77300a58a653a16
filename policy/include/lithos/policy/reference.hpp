// The config key reference (docs/config-reference.md), generated from the
// field tables: one Markdown table per config struct with each key's YAML
// spelling, its type (the codec's `type_name()`), its default (as
// `lithos_check --print-effective` prints it) and its doc sentence. Tagged
// unions (volumes, variables) get a table of their tags. Nothing here is
// written by hand per key: a key added to a table appears in the reference.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeindex>
#include <typeinfo>
#include <utility>
#include <variant>
#include <vector>

#include "lithos/policy/config.hpp"
#include "lithos/policy/schema.hpp"
#include "lithos/policy/yaml.hpp"

namespace lithos::policy::reference {

// The short type name of a codec; a codec without `type_name()` is shown as
// a plain "value".
template <class C>
std::string type_name() {
  if constexpr (requires { C::type_name(); }) {
    return C::type_name();
  } else {
    return "value";
  }
}

// A node on one line, as the printer writes it: scalars exactly as
// yaml::emit quotes them, collections in flow style.
inline std::string inline_yaml(const yaml::Node& node) {
  std::string out = node.tag.empty() ? "" : std::string(node.tag) + " ";
  if (node.is_sequence()) {
    out += "[";
    for (std::size_t i = 0; i < node.items.size(); ++i)
      out += (i ? ", " : "") + inline_yaml(node.items[i]);
    return out + "]";
  }
  if (node.is_mapping()) {
    out += "{";
    for (std::size_t i = 0; i < node.pairs.size(); ++i)
      out += (i ? ", " : "") + inline_yaml(node.pairs[i].first) + ": " +
             inline_yaml(node.pairs[i].second);
    return out + "}";
  }
  // The scalar alone, emitted as the value of a one-key mapping ("k: v\n").
  yaml::Arena arena;
  yaml::Node bare = node;
  bare.tag = {};
  const yaml::Node::Entry pair{schema::scalar_node(arena, "k"), bare};
  std::string text = yaml::emit(schema::mapping_node(arena, std::span(&pair, 1)));
  if (text.rfind("k: ", 0) == 0) text.erase(0, 3);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return out + text;
}

inline std::string code(std::string_view text) {
  return "`" + std::string(text) + "`";
}

// What a field is when its key is absent, as a Markdown cell: *required*,
// *none* (optional without a default) or its default value as printed.
template <class F>
std::string default_cell(const F& f) {
  using S = typename F::owner;
  using C = typename F::codec;
  if (f.presence == schema::Presence::Required) return "*required*";
  const S value{};
  yaml::Arena arena;
  if constexpr (requires { (value.*f.member).has_value(); }) {
    const auto& opt = value.*f.member;
    if (!opt) return "*none*";
    return code(inline_yaml(C::encode(*opt, arena)));
  } else {
    return code(inline_yaml(C::encode(value.*f.member, arena)));
  }
}

// Walks the codecs reachable from C, depth first in field order, and calls
// `visit.template structure<S>(key)` once per config struct and
// `visit.template tagged<Alts...>(key)` once per tagged union. `key` is the
// dashed key that leads there ("" for the root).
template <class Visit>
class Walker {
 public:
  explicit Walker(Visit& visit) : visit_(visit) {}

  template <class C>
  void walk(std::string_view key) {
    step(std::type_identity<C>{}, key);
  }

 private:
  bool first(const std::type_info& type) {
    for (const auto& seen : seen_)
      if (seen == std::type_index(type)) return false;
    seen_.emplace_back(type);
    return true;
  }

  template <class C>
  void step(std::type_identity<C>, std::string_view) {}  // scalars

  template <class C>
  void step(std::type_identity<schema::Seq<C>>, std::string_view key) {
    walk<C>(key);
  }
  template <class C>
  void step(std::type_identity<schema::Map<C>>, std::string_view key) {
    walk<C>(key);
  }

  template <class S>
  void step(std::type_identity<schema::Struct<S>>, std::string_view key) {
    if (!first(typeid(S))) return;
    visit_.template structure<S>(key);
    std::apply(
        [&](const auto&... f) {
          (walk<typename std::decay_t<decltype(f)>::codec>(schema::dashed(f.name)), ...);
        },
        Schema<S>::fields);
  }

  template <class... Alts>
  void step(std::type_identity<schema::Tagged<std::variant<Alts...>>>, std::string_view key) {
    if (!first(typeid(std::variant<Alts...>))) return;
    visit_.template tagged<Alts...>(key);
    (alternative<Alts>(key), ...);
  }
  template <class Alt>
  void alternative(std::string_view key) {
    if constexpr (schema::has_fields<Alt>) {
      walk<schema::Struct<Alt>>(key);
    } else if constexpr (schema::has_body<Alt>) {
      walk<typename Schema<Alt>::body>(key);
    }
  }

  Visit& visit_;
  std::vector<std::type_index> seen_;
};

template <class C, class Visit>
void walk(Visit& visit) {
  Walker<Visit> walker(visit);
  walker.template walk<C>("");
}

// A Markdown table cell: a `|` would end the cell.
inline std::string cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}
// The table of one config struct's keys.
template <class S>
std::string key_table() {
  std::string out = "| Key | Type | Default | Meaning |\n|-----|------|---------|---------|\n";
  std::apply(
      [&](const auto&... f) {
        ((out += "| " + cell(code(schema::dashed(f.name))) + " | " +
                 cell(type_name<typename std::decay_t<decltype(f)>::codec>()) + " | " +
                 cell(default_cell(f)) + " | " + cell(f.doc) + " |\n"),
         ...);
      },
      Schema<S>::fields);
  return out;
}

// What a tag takes after it.
template <class Alt>
std::string tag_value() {
  if constexpr (schema::has_fields<Alt>) {
    return schema::Struct<Alt>::type_name();
  } else if constexpr (schema::has_body<Alt>) {
    return type_name<typename Schema<Alt>::body>();
  } else {
    return "no value";
  }
}

template <class Alt>
std::string_view tag_doc() {
  if constexpr (requires { Schema<Alt>::doc; }) {
    return Schema<Alt>::doc;
  } else {
    return {};
  }
}

struct MarkdownVisit {
  std::string out;

  template <class S>
  void structure(std::string_view key) {
    if (!key.empty()) out += "### " + std::string(Schema<S>::name) + "\n\n";
    out += key_table<S>() + "\n";
  }

  template <class... Alts>
  void tagged(std::string_view key) {
    out += "### Tags of " + code(key) + "\n\n";
    out += "Each value of " + code(key) + " is one of these tags.\n\n";
    out += "| Tag | Value | Meaning |\n|-----|-------|---------|\n";
    ((out += "| " + cell(code(Schema<Alts>::tag)) + " | " + cell(tag_value<Alts>()) + " | " +
             cell(tag_doc<Alts>()) + " |\n"),
     ...);
    out += "\n";
  }
};

// The section of one config file.
template <class C>
std::string file_section(std::string_view title, std::string_view about) {
  MarkdownVisit visit;
  visit.out = "## " + std::string(title) + "\n\n" + std::string(about) + "\n\n";
  walk<C>(visit);
  return visit.out;
}

// The command that writes docs/config-reference.md (named in its first line).
inline constexpr std::string_view kRegenerate = "cmake --build BUILD --target config_reference";

// The whole reference: the four config files.
inline std::string markdown() {
  std::string out;
  out += "<!-- Generated by `" + std::string(kRegenerate) +
         "` (tests/gen_config_reference.cpp) from the field tables; do not edit. -->\n";
  out +=
      "# Config key reference\n"
      "\n"
      "Every key of the four lithos config files, generated from the field tables in\n"
      "`policy/include/lithos/policy/` (the same tables that decode, default, check and\n"
      "print the files) by `" +
      std::string(kRegenerate) +
      "`; the test\n"
      "`ConfigReferenceIsCurrent` fails when this file differs from what the tables\n"
      "say. How the files are read (YAML rules, numbers, null, variables, cross-file\n"
      "checks) is explained in [configs.md](configs.md).\n"
      "\n"
      "* **Key** is the dashed spelling; the underscore spelling (`image_dir`) is\n"
      "  accepted too.\n"
      "* **Default** is what a file that leaves the key out gets, written as\n"
      "  `lithos_check --print-effective` prints it (`~` is null, `[]` and `{}` are\n"
      "  empty). *required* keys must be given; *none* means unset (the meaning\n"
      "  says what unset does).\n"
      "* **Type**: *integer* keys take the number syntax of configs.md (`k`, `Mi`,\n"
      "  `0x`...), *plain integer* keys decimal digits only, *range* is `N` or `A-B`,\n"
      "  *seconds* accept decimals; *mode* values are printed in decimal\n"
      "  (`511` is `0o777`).\n"
      "\n";
  out += file_section<MasterCodec>(
      "Master config",
      "`/etc/lithos/master.yaml`: where the sandbox and process configs are, where runtime\n"
      "state and logs go, and how cgroups are used. Relative paths are resolved as each\n"
      "key says.");
  out += file_section<SandboxCodec>(
      "Sandbox config",
      "`sandboxes/NAME.yaml`, one per sandbox: the limits within which the sandbox's\n"
      "processes run.");
  out += file_section<ProcessConfigCodec>(
      "Process config",
      "`processes/NAME.yaml`, one per sandbox: a mapping from process name to a process\n"
      "entry (the names may contain only letters, digits, `-` and `_`).");
  out += file_section<ContainerCodec>(
      "Container config",
      "A file inside the image, named by a process entry's `config`: the program, its\n"
      "environment, volumes, limits, ports and restart behaviour.");
  while (out.size() >= 2 && out.ends_with("\n\n")) out.pop_back();
  return out;
}

}  // namespace lithos::policy::reference
