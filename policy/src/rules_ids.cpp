// The rules on who a process runs as and what it is given (docs/configs.md,
// "Users, groups and id maps", "Variables"; docs/hardening.md for secrets):
// user and group ids, id maps, variable values and secret namespaces.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <variant>

#include "check_internal.hpp"
#include "lithos/crypt/crypt.hpp"

namespace lithos::policy::check_internal {

// uid/gid rules (docs/configs.md, "Users, groups and id maps"); returns the id (inside the
// container) when one is defined.
std::optional<std::uint32_t> TreeChecker::check_ids(const EntryContext& e,
                                                    const Loaded<ContainerCodec>& doc, bool user) {
  const auto& sb = e.sandbox.config->value;
  const auto& sfile = e.sandbox.config->file;
  const auto& c = doc.value;
  const char* id_word = user ? "uid" : "gid";
  const char* Which = user ? "User" : "Group";
  const Code code = user ? Code::UserId : Code::GroupId;
  const auto& cmap = user ? c.uid_map : c.gid_map;
  const auto& smap = user ? sb.uid_map : sb.gid_map;
  const auto& allow = user ? sb.allow_users : sb.allow_groups;
  std::string allow_key = user ? "allow-users" : "allow-groups";
  std::string map_key = user ? "uid-map" : "gid-map";

  std::optional<std::uint32_t> id = user ? c.user_id : c.group_id;
  // Where the id was written; looked up only for a message (marks are
  // recorded on demand).
  const std::string* id_file = &doc.file;
  const schema::MarkTable* id_marks = &doc.marks;
  std::string_view id_path = user ? ".user-id" : ".group-id";
  if (!id) {
    if (user && sb.default_user) {
      id = sb.default_user;
      id_file = &sfile;
      id_marks = &e.sandbox.config->marks;
      id_path = ".default-user";
    } else if (!user) {
      id = sb.default_group;
      id_file = &sfile;
      id_marks = &e.sandbox.config->marks;
      id_path = ".default-group";
    }
  }
  auto id_mark = [&] { return id_marks->find(id_path); };
  if (!cmap.empty() && !smap.empty())
    report_.error(
        doc.file, doc.marks.find("." + map_key), Code::IdMap,
        std::string("Can't have ") + id_word + "_maps in both the sandbox and a container itself");
  for (std::size_t i = 0; i < cmap.size(); ++i) {
    if (!span_in_one_range(cmap[i], allow)) {
      const auto& m = cmap[i];
      report_.error(
          doc.file, doc.marks.find(key_path("." + map_key, std::to_string(i))), Code::IdMap,
          std::string("Bad ") + id_word + " mapping: host " + id_word + "s [" +
              std::to_string(m.outside) + ", " +
              std::to_string(std::uint64_t{m.outside} + m.count) + ") are not inside a single " +
              allow_key + " range of the sandbox (" + format_ranges(allow) + ")");
    }
  }
  if (!id) {
    report_.error(doc.file, {1, 1}, code,
                  "Neither user id is specified nor default is found (set user-id here or "
                  "default-user in sandbox " +
                      quote(e.sandbox.name) + ")");
    return std::nullopt;
  }
  std::string idtext = std::string(id_word) + " " + std::to_string(*id);
  if (!cmap.empty()) {
    if (!map_contains_inside(cmap, *id))
      report_.error(*id_file, id_mark(), code,
                    std::string(Which) + " is not in mapped range (" + idtext +
                        " inside the container's user namespace; the container " + map_key +
                        " maps " + format_map(cmap) + ")");
  } else {
    const bool sandbox_ns = !smap.empty();
    if (!ranges_contain(allow, *id))
      report_.error(*id_file, id_mark(), code,
                    std::string(Which) + " is not in allowed range (" + idtext +
                        (sandbox_ns ? " inside the sandbox's user namespace" : " on the host") +
                        "; sandbox " + allow_key + ": " + format_ranges(allow) + ")");
    if (sandbox_ns && !map_to_outside(smap, *id))
      report_.error(*id_file, id_mark(), code,
                    std::string(Which) + " is not in mapped range (" + idtext +
                        " inside the sandbox's user namespace; the sandbox " + map_key + " maps " +
                        format_map(smap) + ")");
  }
  return id;
}

void TreeChecker::check_variables(const EntryContext& e, const Loaded<ContainerCodec>& doc) {
  const auto& sb = e.sandbox.config->value;
  const bool bridged = sb.bridged_network.has_value();
  for (const auto& declared : doc.value.variables) {
    const std::string& name = declared.first;
    const Variable& var = declared.second;
    auto it = e.entry.variables.find(name);
    if (it == e.entry.variables.end()) {
      perror(e, ".variables", Code::Variable,
             "Variable " + quote(name) + " is undefined (declared in " + doc.file + ")");
      continue;
    }
    const std::string& value = it->second;
    auto where = [&] { return key_path(".variables", name) + ":value"; };
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, TcpPortVariable>) {
            auto port = parse_port(value);
            if (!port) {
              perror(e, where(), Code::Variable,
                     "invalid TcpPort " + quote(value) + " for variable " + quote(name) +
                         ": expected a port number 0-65535");
            } else if (!bridged && !ranges_contain(sb.allow_tcp_ports, *port)) {
              perror(e, where(), Code::Port,
                     "TcpPort " + std::to_string(*port) + " (variable " + quote(name) +
                         ") is not in allowed range (sandbox allow-tcp-ports: " +
                         format_ranges(sb.allow_tcp_ports) + ")");
            }
          } else if constexpr (std::is_same_v<V, NameVariable>) {
            if (!valid_name_value(value))
              perror(e, where(), Code::Variable,
                     "invalid Name " + quote(value) + " for variable " + quote(name) +
                         ": expected one or more of A-Z a-z 0-9 - _");
          } else if constexpr (std::is_same_v<V, DottedNameVariable>) {
            if (!valid_dotted_name_value(value))
              perror(e, where(), Code::Variable,
                     "invalid DottedName " + quote(value) + " for variable " + quote(name) +
                         ": expected dot-separated names of A-Z a-z 0-9 - _, none empty or "
                         "starting/ending with -");
          } else if constexpr (std::is_same_v<V, ChoiceVariable>) {
            if (std::find(v.choices.begin(), v.choices.end(), value) == v.choices.end()) {
              std::string options;
              for (const auto& ch : v.choices) options += (options.empty() ? "" : ", ") + quote(ch);
              perror(e, where(), Code::Variable,
                     "invalid value " + quote(value) + " for variable " + quote(name) +
                         ", expected one of " + options);
            }
          }
        },
        var);
  }
}

std::vector<std::string> TreeChecker::allowed_namespaces(const EntryContext& e) const {
  std::vector<std::string> out = e.sandbox.config->value.secrets_namespaces;
  if (out.empty()) out.emplace_back("");
  for (const auto& ns : e.entry.extra_secrets_namespaces) out.push_back(ns);
  return out;
}

void TreeChecker::check_secrets(const EntryContext& e, const Loaded<ContainerCodec>& doc) {
  const auto& sb = e.sandbox.config->value;
  const auto& c = doc.value;
  if ((!c.secret_environ.empty() || c.secret_environ_file) && !sb.secrets_private_key)
    report_.error(
        doc.file,
        doc.marks.find(c.secret_environ_file ? ".secret-environ-file" : ".secret-environ"),
        Code::SecretConfig,
        "No secrets key file defined to decode secrets (set secrets-private-key in "
        "sandbox " +
            quote(e.sandbox.name) + ")");
  if ((!c.secret_environ.empty() || c.secret_environ_file) && applied_map(sb, c, true).empty())
    // Not an error: allow-users may well be clear of host accounts. But
    // the decrypted values sit in /proc/PID/environ, readable by any host
    // process running as the same uid (docs/hardening.md).
    report_.warning(
        doc.file,
        doc.marks.find(c.secret_environ_file ? ".secret-environ-file" : ".secret-environ"),
        Code::SecretHostUid,
        "process " + quote(e.child) + " of sandbox " + quote(e.sandbox.name) +
            " gets secrets but no uid-map applies: a host account with the container's uid "
            "can read them from /proc/PID/environ (add a uid-map, or keep allow-users clear "
            "of host accounts)");
  if (c.secret_environ.empty()) return;  // nothing below to check
  auto allowed = allowed_namespaces(e);
  std::set<std::string> allowed_hashes;
  for (const auto& ns : allowed) allowed_hashes.insert(crypt::short_hash(ns));
  for (const auto& [name, values] : c.secret_environ) {
    bool any_parsed = false, any_allowed = false;
    for (const auto& value : values) {
      auto parsed = crypt::parse_v2(value);
      if (!parsed) continue;
      any_parsed = true;
      if (allowed_hashes.count(parsed->namespace_hash)) any_allowed = true;
    }
    if (any_parsed && !any_allowed) {
      std::string list;
      for (const auto& ns : allowed) list += (list.empty() ? "" : ", ") + quote(ns);
      report_.error(doc.file, doc.marks.find(key_path(".secret-environ", name) + ":value"),
                    Code::SecretNamespace,
                    "secret " + quote(name) + " is encrypted for a namespace that sandbox " +
                        quote(e.sandbox.name) + " does not allow for process " + quote(e.child) +
                        " (allowed: " + list + ")");
    }
  }
}

// The owner of a !Persistent directory created on the host, when no id
// maps apply: it must be inside the sandbox's allow-users/allow-groups.
bool TreeChecker::owner_allowed(const EntryContext& e, const Loaded<ContainerCodec>& doc,
                                const std::string& mp, std::uint32_t user, std::uint32_t group) {
  const auto& sb = e.sandbox.config->value;
  bool ok = true;
  auto check = [&](std::uint32_t id, bool is_user) {
    const auto& allow = is_user ? sb.allow_users : sb.allow_groups;
    if (ranges_contain(allow, id)) return;
    ok = false;
    const char* key = is_user ? ".user" : ".group";
    report_.error(doc.file, doc.marks.find(key_path(".volumes", mp) + key), Code::Volume,
                  std::string("!Persistent volume ") + mp + " would create a host directory " +
                      "owned by " + (is_user ? "user " : "group ") + std::to_string(id) +
                      ", which is not in sandbox " + quote(e.sandbox.name) + "'s " +
                      (is_user ? "allow-users" : "allow-groups") + " (" + format_ranges(allow) +
                      "; no uid/gid map applies)");
  };
  check(user, true);
  check(group, false);
  return ok;
}

}  // namespace lithos::policy::check_internal
