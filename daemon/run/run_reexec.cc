// RunService's part of daemon-reexec (docs/reexec.md §1.4, §1.5, §4.8):
// what refuses a re-exec, and the run stage's export and adoption.
#include <string>

#include "daemon/run/one_offs.h"
#include "daemon/run/run_service.h"

namespace relsupd {

Status RunService::RefuseReexec(bool kill_one_offs) const {
  RETURN_IF_ERROR(switcher_->RefuseReexec());
  if (supervisor_->RetiringBusy())
    return Status(StatusCode::kBusy,
                  "a rolling restart is in progress, or a retired release's processes are "
                  "still stopping; retry in a moment");
  if (!start_waits_.empty())
    return Status(StatusCode::kBusy, "`ctl start " + start_waits_.front()->app +
                                         "` is waiting for its instances to be ready; retry "
                                         "when it has answered");
  if (!kill_one_offs && one_offs_->running() > 0) {
    std::string names;
    for (const PsRow& r : one_offs_->PsRows(std::nullopt))
      names += (names.empty() ? "" : ", ") + r.app + " " + r.process;
    return Status(StatusCode::kBusy,
                  std::to_string(one_offs_->running()) + " one-off process" +
                      (one_offs_->running() == 1 ? " is" : "es are") + " running (" + names +
                      "); end them, or pass --kill-one-offs");
  }
  return Status::Ok();
}

RunSnapshot RunService::Export() const {
  return RunSnapshot{.supervisor = supervisor_->Export(),
                     .app_sockets = sockets_.Export(),
                     .switch_outcomes = switcher_->outcomes(),
                     .next_switch_id = switcher_->next_switch_id(),
                     .one_offs_next_id = one_offs_->next_id()};
}

void RunService::Adopt(const RunSnapshot& snapshot) {
  sockets_.Adopt(snapshot.app_sockets);
  switcher_->Adopt(snapshot.switch_outcomes, snapshot.next_switch_id);
  one_offs_->AdoptNextId(snapshot.one_offs_next_id);
  supervisor_->Adopt(snapshot.supervisor);
}

void RunService::Abandon() {
  supervisor_->Abandon();
  sockets_.Abandon();
}

}  // namespace relsupd
