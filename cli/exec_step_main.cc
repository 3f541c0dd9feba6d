// relsupd-exec: the exec step between the daemon's uv_spawn() and an app's
// program (see daemon/supervise/exec_step.h for the contract). Kept apart
// from relsupd-core so that it loads nothing but libc and starts fast.
#include "daemon/supervise/exec_step.h"

int main(int argc, char** argv) {
  relsupd::ParsedExecStepArgs parsed = relsupd::ParseExecStepArgs(argc, argv);
  if (!parsed.ok()) {
    relsupd::ExecStepError e;
    e.step = "options";
    // One line on stderr: a message longer than the buffer is cut, not lost.
    const size_t n = parsed.error.copy(e.what, sizeof e.what - 1);
    e.what[n] = '\0';
    relsupd::ExecStepFail(e);
  }
  relsupd::RunExecStep(parsed.options);
}
