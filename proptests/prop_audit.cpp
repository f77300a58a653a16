// Properties of the privilege audit (audit.hpp) over generated plans:
//  * the outside ids are map_to_outside of the plan's maps (the inside ids
//    without a user namespace);
//  * no secret value appears in the text or the JSON, whatever the plans;
//  * the root-inside, shared-uid and no-pids-limit warnings name exactly the
//    instances a direct model of their rule names;
//  * one instance per plan, sorted by name, and the JSON parses with them.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "lithos/policy/audit.hpp"
#include "lithos/policy/check.hpp"
#include "plan_test_access.hpp"

namespace {

using namespace lithos::policy;
namespace gen = rc::gen;

// Ordinary text: lower case, '/', '.', '-'. Secret values use another
// alphabet, so that finding one in the output can only mean it was printed.
std::string word() {
  return *gen::container<std::string>(gen::elementOf(std::string("abcdefgh/.-")));
}

std::string secret_value() {
  return "v2:" + *gen::container<std::string>(*gen::inRange(16, 40),
                                              gen::elementOf(std::string("ABCDEFXYZ0123456789+=")));
}

// Small id spaces so that maps cover ids and sandboxes share uids often.
std::vector<IdMapEntry> id_map() {
  std::vector<IdMapEntry> map;
  for (int i = *gen::inRange(0, 3); i > 0; --i)
    map.push_back({*gen::inRange<std::uint32_t>(0, 50), *gen::inRange<std::uint32_t>(0, 4000),
                   *gen::inRange<std::uint32_t>(0, 40)});
  return map;
}

std::vector<InstancePlan> plans() {
  std::vector<InstancePlan> out;
  const int count = *gen::inRange(0, 7);
  for (int i = 0; i < count; ++i) {
    InstancePlan p = PlanTestAccess::blank();
    p.sandbox = *gen::element<std::string>("a", "b", "c");
    p.child = *gen::element<std::string>("web", "job");
    p.index = static_cast<std::uint64_t>(i);
    p.name = p.sandbox + "/" + p.child + "." + std::to_string(i);
    p.kind = *gen::element(ProcessKind::Daemon, ProcessKind::Command);
    p.executable = "/bin/" + word();
    p.argv = {p.executable, word()};
    p.uid = *gen::inRange<std::uint32_t>(0, 50);
    p.gid = *gen::inRange<std::uint32_t>(0, 50);
    p.uid_map = id_map();
    p.gid_map = id_map();
    p.user_namespace = *gen::arbitrary<bool>();
    p.image_root = "/images/" + word();
    p.state_dir = "/run/state/" + p.name;
    p.devfs_dir = "/dev-" + word();
    for (int m = *gen::inRange(0, 3); m > 0; --m) {
      MountPlan mount;
      mount.kind = *gen::element(MountPlan::Kind::BindReadOnly, MountPlan::Kind::BindReadWrite,
                                 MountPlan::Kind::Tmpfs);
      mount.source = "/srv/" + word();
      mount.target = "/" + word();
      p.mounts.push_back(mount);
    }
    if (*gen::arbitrary<bool>()) {
      CgroupPlan cgroup;
      cgroup.parent = "lithos.slice";
      cgroup.scope = p.name + ".scope";
      for (const char* controller : {"memory", "cpu", "pids"})
        if (*gen::arbitrary<bool>()) cgroup.controllers.emplace_back(controller);
      cgroup.memory_limit = *gen::arbitrary<std::uint64_t>();
      if (*gen::arbitrary<bool>()) cgroup.pids_limit = *gen::inRange<std::uint64_t>(1, 1000);
      p.cgroup = cgroup;
    }
    if (*gen::arbitrary<bool>()) {
      SecretsPlan secrets;
      secrets.allowed_namespaces = {word()};
      for (int s = *gen::inRange(0, 3); s > 0; --s) {
        auto& candidates = secrets.values["SECRET_" + std::to_string(s)];
        for (int c = *gen::inRange(1, 3); c > 0; --c) candidates.push_back(secret_value());
      }
      if (*gen::arbitrary<bool>()) secrets.file = "/" + word();
      p.secrets = secrets;
    }
    p.stdio_log = "/log/" + p.sandbox + ".log";
    out.push_back(std::move(p));
  }
  return out;
}

std::optional<std::uint32_t> outside(std::uint32_t id, const std::vector<IdMapEntry>& map,
                                     bool user_namespace) {
  return user_namespace ? map_to_outside(map, id) : std::optional(id);
}

const AuditInstance& find(const Audit& audit, const std::string& name) {
  auto it = std::find_if(audit.instances.begin(), audit.instances.end(),
                         [&](const AuditInstance& a) { return a.name == name; });
  RC_ASSERT(it != audit.instances.end());
  return *it;
}

// The instances named by warnings of `code`, all together.
std::set<std::string> named_by(const Audit& audit, std::string_view code) {
  std::set<std::string> out;
  for (const auto& w : audit.warnings)
    if (w.code == code) out.insert(w.instances.begin(), w.instances.end());
  return out;
}

}  // namespace

RC_GTEST_PROP(Audit, OutsideIdsAreTheMappedIds, ()) {
  const auto generated = plans();
  const auto audit = build_audit(generated);
  for (const auto& p : generated) {
    const auto& a = find(audit, p.name);
    RC_ASSERT(a.user.inside == p.uid);
    RC_ASSERT(a.group.inside == p.gid);
    RC_ASSERT(a.user.outside == outside(p.uid, p.uid_map, p.user_namespace));
    RC_ASSERT(a.group.outside == outside(p.gid, p.gid_map, p.user_namespace));
  }
}

RC_GTEST_PROP(Audit, NoSecretValueIsEverPrinted, ()) {
  const auto generated = plans();
  const auto audit = build_audit(generated);
  const std::string text = format_audit_text(audit);
  const std::string json = format_audit_json(audit);
  for (const auto& p : generated) {
    if (!p.secrets) continue;
    for (const auto& [name, candidates] : p.secrets->values) {
      RC_ASSERT(text.find(name) != std::string::npos);  // names are shown
      for (const auto& value : candidates) {
        RC_ASSERT(text.find(value) == std::string::npos);
        RC_ASSERT(json.find(value) == std::string::npos);
      }
    }
  }
}

RC_GTEST_PROP(Audit, WarningsNameWhatTheirRuleSays, ()) {
  const auto generated = plans();
  const auto audit = build_audit(generated);

  std::set<std::string> root, no_pids, shared_uid;
  std::map<std::uint32_t, std::set<std::string>> sandboxes_of_uid;
  for (const auto& p : generated) {
    if (p.uid == 0) root.insert(p.name);
    bool pids = p.cgroup && p.cgroup->pids_limit &&
                std::count(p.cgroup->controllers.begin(), p.cgroup->controllers.end(), "pids");
    if (!pids) no_pids.insert(p.name);
    if (auto uid = outside(p.uid, p.uid_map, p.user_namespace))
      sandboxes_of_uid[*uid].insert(p.sandbox);
  }
  for (const auto& p : generated) {
    auto uid = outside(p.uid, p.uid_map, p.user_namespace);
    if (uid && sandboxes_of_uid[*uid].size() > 1) shared_uid.insert(p.name);
  }
  RC_ASSERT(named_by(audit, kAuditRootInside) == root);
  RC_ASSERT(named_by(audit, kAuditNoPidsLimit) == no_pids);
  RC_ASSERT(named_by(audit, kAuditSharedUid) == shared_uid);
  RC_ASSERT(named_by(audit, kAuditHostAccount).empty());  // no host facts given
}

RC_GTEST_PROP(Audit, OneInstancePerPlanSortedAndValidJson, ()) {
  const auto generated = plans();
  const auto audit = build_audit(generated);
  std::vector<std::string> names;
  for (const auto& p : generated) names.push_back(p.name);
  std::sort(names.begin(), names.end());
  std::vector<std::string> got;
  for (const auto& a : audit.instances) got.push_back(a.name);
  RC_ASSERT(got == names);
  auto json = nlohmann::json::parse(format_audit_json(audit));
  RC_ASSERT(json["version"] == kAuditJsonVersion);
  RC_ASSERT(json["instances"].size() == generated.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    RC_ASSERT(json["instances"][i]["name"].get<std::string>() == got[i]);
  RC_ASSERT(json["warnings"].size() == audit.warnings.size());
}
