#pragma once
// CommandArgv: a process file's `command` as the argv the exec step runs.
// A pure function; any thread. (exec_step.h, which used to declare it,
// includes this header.)

#include <string>
#include <vector>

namespace relsupd {

// The argv to exec for a process file's `command`. {"/bin/sh", "-c",
// command} when it needs a shell (quoting, expansion, redirection, pipes,
// lists, globbing, comments, a variable assignment or a shell keyword/
// builtin such as `exec` or `cd` as the first word), with "exec " put
// before a simple command (one program: `gunicorn -b :$PORT app:app`), so
// that the program replaces the shell and is the instance's main process:
// stop_mode main and `ctl signal` reach it, not a shell (dash, unlike
// bash, does not exec the last command by itself); otherwise the words
// split on spaces and tabs, exec'd directly so that the instance's pid is
// the program itself and no shell start-up is paid. Empty for a blank
// command (the spec parser rejects those).
std::vector<std::string> CommandArgv(const std::string& command);

}  // namespace relsupd
