#pragma once
// The JSON forms of the release stage's results (daemon/store/
// release_service.h), as the control socket's methods return them. Pure
// functions; any thread.

#include <nlohmann/json.hpp>

#include "daemon/ledger/ledger.h"
#include "daemon/store/release_service.h"

namespace relsupd {

// {id, sha256, format, size, entries, unpacked_bytes, imported_at,
//  imported_by}
nlohmann::json BuildToJson(const BuildRow& b);
// BuildToJson's keys and `new`.
nlohmann::json ImportedBuildToJson(const ImportedBuild& b);
// {app, release, number, build, build_sha256, digest, config_keys,
//  created_at, created_by, pruned}
nlohmann::json ReleaseToJson(const ReleaseRow& r);
// ReleaseToJson's keys and from (vN or null), from_live, config_changed.
nlohmann::json CreatedReleaseToJson(const CreatedRelease& c);
// {pruned: [vN...], in_use: [vN...], builds_removed: [id...],
//  objects_removed: N}
nlohmann::json PruneReportToJson(const PruneReport& p);
// {release, ok, digest_ok, problems, added, removed, changed}
nlohmann::json VerificationToJson(const ReleaseVerification& v);

}  // namespace relsupd
