#include "daemon/reexec/probe.h"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "daemon/base/version.h"
#include "daemon/ledger/ledger.h"
#include "daemon/reexec/handover_version.h"

namespace relsupd {
namespace {

using Json = nlohmann::json;

bool IsPositiveInt(const Json& v) {
  return v.is_number_integer() && v.get<int64_t>() > 0 && v.get<int64_t>() < (1 << 30);
}

}  // namespace

ProbeAnswer OwnProbeAnswer() {
  return ProbeAnswer{.version = kVersion,
                     .handover_oldest = kOldestReadableHandover,
                     .handover_newest = kHandoverVersion,
                     .schema = Ledger::kSchemaVersion,
                     .standin = true};
}

std::string FormatProbeAnswer(const ProbeAnswer& a) {
  Json j = {{"version", a.version},
            {"handover", {a.handover_oldest, a.handover_newest}},
            {"schema", a.schema},
            {"standin", a.standin}};
  return j.dump();
}

Result<ProbeAnswer> ParseProbeAnswer(std::string_view out) {
  Json j = Json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return InvalidArgument("the reexec probe's answer is not a JSON object");
  const Json& version = j.contains("version") ? j["version"] : Json();
  const Json& handover = j.contains("handover") ? j["handover"] : Json();
  const Json& schema = j.contains("schema") ? j["schema"] : Json();
  if (!version.is_string() || version.get<std::string>().empty())
    return InvalidArgument("the reexec probe's answer has no version");
  if (!handover.is_array() || handover.size() != 2 || !IsPositiveInt(handover[0]) ||
      !IsPositiveInt(handover[1]) || handover[0].get<int>() > handover[1].get<int>())
    return InvalidArgument("the reexec probe's answer has no handover range [oldest, newest]");
  if (!IsPositiveInt(schema))
    return InvalidArgument("the reexec probe's answer has no ledger schema");
  const auto standin = j.find("standin");  // absent before the stand-in
  return ProbeAnswer{.version = version.get<std::string>(),
                     .handover_oldest = handover[0].get<int>(),
                     .handover_newest = handover[1].get<int>(),
                     .schema = schema.get<int>(),
                     .standin = standin != j.end() && standin->is_boolean() &&
                                standin->get<bool>()};
}

Status CheckProbeAnswer(const std::string& path, const ProbeAnswer& a, int writes,
                        int ledger_schema) {
  const std::string who = "relsupd " + a.version + " ('" + path + "')";
  if (writes < a.handover_oldest || writes > a.handover_newest)
    return FailedPrecondition(
        who + " reads handover versions " + std::to_string(a.handover_oldest) + "-" +
        std::to_string(a.handover_newest) + "; this daemon writes " + std::to_string(writes) +
        ": use systemctl restart relsupd");
  if (a.schema < ledger_schema)
    return FailedPrecondition(who + " knows ledger schemas up to " + std::to_string(a.schema) +
                              "; the ledger is at schema " + std::to_string(ledger_schema) +
                              ", so it could not open it");
  return Status::Ok();
}

int RunReexecProbe() {
  std::string line = FormatProbeAnswer(OwnProbeAnswer()) + "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace relsupd
