#include "daemon/supervise/command_argv.h"

#include <cstring>

namespace relsupd {

std::vector<std::string> CommandArgv(const std::string& command) {
  // POSIX sh keywords and builtins that are not programs: run directly they
  // would fail with "not found" (`exec bundle exec puma` is a common
  // Procfile line).
  static constexpr const char* kShellWords[] = {
      "!",       "{",      "}",        "case",    "do",       "done",   "elif",
      "else",    "esac",   "fi",       "for",     "if",       "in",     "then",
      "until",   "while",  ".",        "break",   "continue", "eval",   "exec",
      "exit",    "export", "readonly", "return",  "set",      "shift",  "times",
      "trap",    "unset",  "cd",       "alias",   "umask",    "ulimit", "wait",
      "command", "read",   "getopts",  "hash",    "type",     "jobs",   "fg",
      "bg",      "local",  "source",   "unalias",
  };
  std::vector<std::string> words;
  std::string word;
  bool needs_shell = false;
  for (const char c : command) {
    if (c == ' ' || c == '\t') {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
      continue;
    }
    // '=' matters only in the first word (an assignment: `FOO=1 prog`);
    // `prog --port=8080` runs the same either way.
    if (c == '=' && words.empty()) needs_shell = true;
    if (std::strchr("|&;<>()$`\\\"'*?[#~%{}\n", c) != nullptr && c != '\0')
      needs_shell = true;
    word.push_back(c);
  }
  if (!word.empty()) words.push_back(std::move(word));
  if (words.empty()) return {};
  for (const char* w : kShellWords)
    if (words[0] == w) needs_shell = true;
  if (needs_shell) return {"/bin/sh", "-c", command};
  return words;
}

}  // namespace relsupd
