#include "daemon/ledger/event_kind.h"

#include <iterator>
#include <utility>

namespace relsupd {
namespace {

constexpr std::pair<EventKind, std::string_view> kNames[] = {
    {EventKind::kAppCreated, "app-created"},
    {EventKind::kAppUpdated, "app-updated"},
    {EventKind::kImported, "imported"},
    {EventKind::kReleased, "released"},
    {EventKind::kActivating, "activating"},
    {EventKind::kActivated, "activated"},
    {EventKind::kRolledBack, "rolled-back"},
    {EventKind::kAutoRolledBack, "auto-rolled-back"},
    {EventKind::kActivationFailed, "activation-failed"},
    {EventKind::kRecovered, "recovered"},
    {EventKind::kScaled, "scaled"},
    {EventKind::kStopped, "stopped"},
    {EventKind::kStarted, "started"},
    {EventKind::kRestarted, "restarted"},
    {EventKind::kFailed, "failed"},
    {EventKind::kPruned, "pruned"},
    {EventKind::kReleasePhaseStarted, "release-phase-started"},
    {EventKind::kReleasePhaseSucceeded, "release-phase-succeeded"},
    {EventKind::kReleasePhaseFailed, "release-phase-failed"},
    {EventKind::kRunStarted, "run-started"},
    {EventKind::kRan, "ran"},
    {EventKind::kReexec, "reexec"},
    {EventKind::kSignaled, "signaled"},
    {EventKind::kAppDeleted, "app-deleted"},
};

// The table is in enum order, so a kind is its own index.
constexpr bool InEnumOrder() {
  for (size_t i = 0; i < std::size(kNames); ++i)
    if (static_cast<size_t>(kNames[i].first) != i) return false;
  return true;
}
static_assert(InEnumOrder());
static_assert(std::size(kNames) == static_cast<size_t>(EventKind::kAppDeleted) + 1);

}  // namespace

std::string_view EventKindName(EventKind kind) {
  return kNames[static_cast<size_t>(kind)].second;
}

std::optional<EventKind> ParseEventKind(std::string_view name) {
  for (const auto& [kind, text] : kNames)
    if (text == name) return kind;
  return std::nullopt;
}

}  // namespace relsupd
