#include "daemon/control/release_json.h"

#include "daemon/base/clock.h"
#include "daemon/base/release_id.h"
#include "daemon/store/slots.h"

namespace relsupd {

using nlohmann::json;

namespace {

json ReleaseNames(const std::vector<int64_t>& numbers) {
  json out = json::array();
  for (int64_t n : numbers) out.push_back(ReleaseId(n).ToString());
  return out;
}

}  // namespace

json BuildToJson(const BuildRow& b) {
  return {{"id", b.id()},
          {"sha256", b.sha256},
          {"format", b.format},
          {"size", b.size},
          {"entries", b.entries},
          {"unpacked_bytes", b.unpacked_bytes},
          {"imported_at", FormatTimeUtc(b.imported_at)},
          {"imported_by", b.imported_by}};
}

json ImportedBuildToJson(const ImportedBuild& b) {
  json out = BuildToJson(b.build);
  out["new"] = b.is_new;
  return out;
}

json ReleaseToJson(const ReleaseRow& r) {
  // A malformed config shows no keys, as before the config was typed.
  json keys = json::array();
  if (auto config = ReleaseConfigOf(r); config.ok())
    for (const auto& [k, v] : *config) keys.push_back(k);
  return {{"app", r.app},
          {"release", ReleaseId(r.number).ToString()},
          {"number", r.number},
          {"build", r.build.substr(0, 12)},
          {"build_sha256", r.build},
          {"digest", r.digest},
          {"config_keys", keys},
          {"created_at", FormatTimeUtc(r.created_at)},
          {"created_by", r.created_by},
          {"pruned", r.pruned}};
}

json CreatedReleaseToJson(const CreatedRelease& c) {
  json out = ReleaseToJson(c.release);
  out["from"] = c.from != 0 ? json(ReleaseId(c.from).ToString()) : json(nullptr);
  out["from_live"] = c.from_live;
  out["config_changed"] = c.config_changed;
  out["unchanged"] = c.unchanged;
  out["reused"] = c.reused;
  out["new"] = !c.unchanged && !c.reused;
  return out;
}

json PruneReportToJson(const PruneReport& p) {
  return {{"pruned", ReleaseNames(p.pruned)},
          {"in_use", ReleaseNames(p.in_use)},
          {"builds_removed", p.builds_removed},
          {"objects_removed", p.objects_removed}};
}

json VerificationToJson(const ReleaseVerification& v) {
  const VerifyResult& r = v.result;
  return {{"release", ReleaseId(v.number).ToString()},
          {"ok", r.ok()},
          {"digest_ok", r.digest_ok},
          {"problems", r.problems},
          {"added", r.diff.added},
          {"removed", r.diff.removed},
          {"changed", r.diff.changed}};
}

}  // namespace relsupd
