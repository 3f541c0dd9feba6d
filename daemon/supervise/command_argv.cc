#include "daemon/supervise/command_argv.h"

#include <cstring>

namespace relsupd {

namespace {

bool IsShellWord(const std::string& word);

// One program with its arguments (expansions, quotes and redirections
// allowed), which `exec` may prefix: no list, pipeline, background job,
// subshell or group (a `(`, `)`, `{` or `}` outside `${...}`), and no
// assignment or shell word first. Conservative: a ';' inside quotes counts.
bool IsSimpleCommand(const std::string& command, const std::vector<std::string>& words) {
  // The first word that is not a redirection (`2>/dev/null PORT=1 prog`).
  size_t at = 0;
  while (at < words.size() && words[at].find_first_of("<>") != std::string::npos) ++at;
  if (at == words.size()) return false;
  const std::string& first = words[at];
  if (first.find('=') != std::string::npos || IsShellWord(first)) return false;
  int brace = 0;  // depth inside ${...}
  for (size_t i = 0; i < command.size(); ++i) {
    const char c = command[i];
    if (c == '$' && i + 1 < command.size() && command[i + 1] == '{') {
      ++brace;
      ++i;
      continue;
    }
    if (c == '}' && brace > 0) {
      --brace;
      continue;
    }
    if (std::strchr("|;\n(){}", c) != nullptr) return false;
    // '&' only in a redirection such as 2>&1 or >&2.
    if (c == '&' && (i == 0 || (command[i - 1] != '>' && command[i - 1] != '<'))) return false;
  }
  return true;
}

bool IsShellWord(const std::string& word) {
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
      "bg",      "local",  "source",   "unalias", ":",        "true",   "false",
      "time",    "[[",     "let",      "declare", "typeset",  "function", "select",
      "coproc",  "shopt",  "pushd",    "popd",
  };
  for (const char* w : kShellWords)
    if (word == w) return true;
  return false;
}

}  // namespace

std::vector<std::string> CommandArgv(const std::string& command) {
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
  if (IsShellWord(words[0])) needs_shell = true;
  if (!needs_shell) return words;
  if (IsSimpleCommand(command, words)) return {"/bin/sh", "-c", "exec " + command};
  return {"/bin/sh", "-c", command};
}

}  // namespace relsupd
