// The volume rules (docs/configs.md, "Volumes"): each volume's path, the
// sandbox entry it resolves to and its owner; the mounts a plan will get.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>

#include "check_internal.hpp"

namespace lithos::policy::check_internal {

namespace {

// "size=%llu,mode=0%04o" without printf.
std::string tmpfs_data(std::uint64_t size, std::uint32_t mode) {
  char digits[32];
  std::string out = "size=";
  out.append(digits, std::to_chars(digits, digits + sizeof digits, size).ptr);
  out += ",mode=0";
  char* end = std::to_chars(digits, digits + sizeof digits, mode, 8).ptr;
  const auto width = static_cast<std::size_t>(end - digits);
  if (width < 4) out.append(4 - width, '0');
  out.append(digits, end);
  return out;
}

}  // namespace

// The checks always run; the drafts (for plans) are made only when kept.
std::vector<TreeChecker::VolumeDraft> TreeChecker::check_volumes(const EntryContext& e,
                                                                 const Loaded<ContainerCodec>& doc,
                                                                 bool keep) {
  const auto& sb = e.sandbox.config->value;
  const auto& c = doc.value;
  const bool mapped = maps_apply(sb, c);
  std::vector<VolumeDraft> out;
  // Mark paths are built only for a message.
  auto owner = [&](std::uint32_t id, bool user, const std::string& mp,
                   std::string_view suffix) -> std::optional<std::uint32_t> {
    if (!mapped) return id;
    auto outside = map_to_outside(applied_map(sb, c, user), id);
    if (!outside)
      report_.error(doc.file, doc.marks.find(key_path(".volumes", mp) + std::string(suffix)),
                    Code::Volume,
                    std::string("Non-mapped ") + (user ? "user " : "group ") + std::to_string(id) +
                        " for volume " + mp + " (not covered by the applied " +
                        (user ? "uid-map" : "gid-map") + ")");
    return outside;
  };
  for (const auto& entry : c.volumes) {
    const std::string& mp = entry.first;
    const Volume& volume = entry.second;
    auto vpath = [&] { return key_path(".volumes", mp); };
    if (!absolute_clean(mp)) continue;  // reported by the container rules
    VolumeDraft draft;
    if (keep) {
      draft.mount.volume = mp;
      draft.mount.target = join_components(*absolute_components(mp));
    }
    bool ok = std::visit(
        [&](const auto& v) -> bool {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, ReadonlyVolume>) {
            if (!absolute_clean(v.path)) {
              report_.error(
                  doc.file, doc.marks.find(vpath()), Code::BadPath,
                  "!Readonly path " + quote(v.path) + " must be absolute without . or ..");
              return false;
            }
            auto host = resolve_virtual(sb.readonly_paths, v.path);
            if (!host) host = resolve_virtual(sb.writable_paths, v.path);
            if (!host) {
              report_.error(doc.file, doc.marks.find(vpath()), Code::Volume,
                            "Can't find volume for " + v.path +
                                ", probably missing entry in "
                                "readonly-paths of sandbox " +
                                quote(e.sandbox.name));
              return false;
            }
            draft.mount.kind = MountPlan::Kind::BindReadOnly;
            draft.mount.source = *host;
            return true;
          } else if constexpr (std::is_same_v<V, PersistentVolume>) {
            if (!absolute_clean(v.path)) {
              report_.error(
                  doc.file, doc.marks.find(vpath() + ".path"), Code::BadPath,
                  "!Persistent path " + quote(v.path) + " must be absolute without . or ..");
              return false;
            }
            auto host = resolve_virtual(sb.writable_paths, v.path);
            if (!host) {
              report_.error(doc.file, doc.marks.find(vpath()), Code::Volume,
                            "Can't find volume for " + v.path +
                                ", probably missing entry in "
                                "writable-paths of sandbox " +
                                quote(e.sandbox.name));
              return false;
            }
            auto u = owner(v.user, true, mp, ".user");
            auto g = owner(v.group, false, mp, ".group");
            if (!u || !g) return false;
            // Without maps the ids are host ids, and with mkdir the host
            // directory is created owned by them: an image must not hand
            // a host directory to an account the sandbox does not allow.
            if (!mapped && v.mkdir && !owner_allowed(e, doc, mp, v.user, v.group)) return false;
            draft.mount.kind = MountPlan::Kind::BindReadWrite;
            draft.mount.source = *host;
            draft.mount.create = v.mkdir;
            draft.mount.mode = v.mode;
            draft.mount.owner_uid = *u;
            draft.mount.owner_gid = *g;
            return true;
          } else if constexpr (std::is_same_v<V, StatedirVolume>) {
            std::string rel = v.path;
            if (rel.empty() || rel.front() != '/') rel = "/" + rel;
            auto parts = absolute_components(rel);
            if (!parts) {
              report_.error(doc.file, doc.marks.find(vpath() + ".path"), Code::BadPath,
                            "!Statedir path " + quote(v.path) + " must not contain . or ..");
              return false;
            }
            auto u = owner(v.user, true, mp, ".user");
            auto g = owner(v.group, false, mp, ".group");
            if (!u || !g) return false;
            draft.mount.kind = MountPlan::Kind::BindReadWrite;
            draft.statedir_rel = join_components(*parts);
            // The state dir root keeps its 01777 mode and owner (the original re-owned it).
            draft.mount.create = !parts->empty();
            draft.mount.mode = v.mode;
            draft.mount.owner_uid = *u;
            draft.mount.owner_gid = *g;
            return true;
          } else {
            // The kernel reads size=0 as "no limit": RAM bounded by nothing.
            if (v.size == 0) {
              report_.error(doc.file, doc.marks.find(vpath() + ".size"), Code::Volume,
                            "!Tmpfs volume " + mp +
                                ": size 0 would mean unlimited; give a size in bytes (e.g. "
                                "100Mi)");
              return false;
            }
            draft.mount.kind = MountPlan::Kind::Tmpfs;
            draft.mount.source = "tmpfs";
            draft.mount.data = tmpfs_data(v.size, v.mode);
            return true;
          }
        },
        volume);
    if (ok && keep) out.push_back(std::move(draft));
  }
  // Shortest mount point first; equal lengths keep sorted key order.
  std::stable_sort(out.begin(), out.end(), [](const VolumeDraft& a, const VolumeDraft& b) {
    return a.mount.volume.size() < b.mount.volume.size();
  });
  return out;
}

}  // namespace lithos::policy::check_internal
