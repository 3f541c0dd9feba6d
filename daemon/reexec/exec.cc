#include "daemon/reexec/exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "daemon/base/fd.h"

extern char** environ;

namespace relsupd {
namespace {

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR2}) sigaddset(&set, s);
  return set;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// The first line of what the probe wrote to stderr, for an error message.
std::string FirstLine(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  return line.size() > 200 ? line.substr(0, 200) + "..." : line;
}

// Reads both pipes until EOF on both or `timeout_ms`; true on timeout.
// Each text keeps at most 64 KiB (the answer is one short line).
bool ReadUntilEof(int out_fd, int err_fd, int timeout_ms, std::string* out, std::string* err) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  std::string* texts[2] = {out, err};
  int open = 2;
  while (open > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return true;
    int n = ::poll(fds, 2, static_cast<int>(left));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got > 0 && texts[i]->size() < 64 * 1024) {
        texts[i]->append(buf, static_cast<size_t>(got));
      } else if (got <= 0 && !(got < 0 && errno == EINTR)) {
        fds[i].fd = -1;
        --open;
      }
    }
  }
  return false;
}

}  // namespace

Result<std::vector<std::string>> OwnArgv() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  if (!in) return Status::FromErrno("cannot read /proc/self/cmdline", errno);
  std::vector<std::string> argv;
  for (std::string arg; std::getline(in, arg, '\0');) argv.push_back(arg);
  if (argv.empty()) return Internal("/proc/self/cmdline is empty");
  return argv;
}

Result<std::string> OwnExePath() {
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return Status::FromErrno("cannot read /proc/self/exe", ec.value());
  return exe.string();
}

Result<ProbeAnswer> RunProbeOf(const std::string& path, int timeout_ms) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Status::FromErrno("cannot make a pipe", errno);
  Fd out_r(out[0]), out_w(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) return Status::FromErrno("cannot make a pipe", errno);
  Fd err_r(err[0]), err_w(err[1]);
  // The child's signal mask is emptied: a thread-pool thread blocks them.
  sigset_t none;
  sigemptyset(&none);
  struct Spawn {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    Spawn() {
      posix_spawn_file_actions_init(&actions);
      posix_spawnattr_init(&attr);
    }
    ~Spawn() {
      posix_spawn_file_actions_destroy(&actions);
      posix_spawnattr_destroy(&attr);
    }
  } spawn;
  posix_spawn_file_actions_addopen(&spawn.actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&spawn.actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&spawn.actions, err_w.get(), 2);
  posix_spawnattr_setsigmask(&spawn.attr, &none);
  posix_spawnattr_setflags(&spawn.attr, POSIX_SPAWN_SETSIGMASK);
  std::vector<std::string> args = {path, "daemon", "--reexec-probe"};
  std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"};
  auto argv = Pointers(args);
  auto envp = Pointers(env);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, path.c_str(), &spawn.actions, &spawn.attr, argv.data(),
                         envp.data());
  if (rc != 0) return Status::FromErrno("cannot run the reexec probe '" + path + "'", rc);
  out_w.Reset();
  err_w.Reset();
  std::string stdout_text, stderr_text;
  const bool timed_out = ReadUntilEof(out_r.get(), err_r.get(), timeout_ms, &stdout_text,
                                      &stderr_text);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const std::string who = "'" + path + "' did not answer the reexec probe";
  if (timed_out)
    return Status(StatusCode::kFailedPrecondition,
                  who + " within " + std::to_string(timeout_ms) + " ms; it was killed");
  if (WIFSIGNALED(status))
    return Status(StatusCode::kFailedPrecondition,
                  who + " (killed by signal " + std::to_string(WTERMSIG(status)) + ": " +
                      strsignal(WTERMSIG(status)) + ")");
  if (WEXITSTATUS(status) != 0)
    return Status(StatusCode::kFailedPrecondition,
                  who + " (exit " + std::to_string(WEXITSTATUS(status)) +
                      (stderr_text.empty() ? "" : ": " + FirstLine(stderr_text)) +
                      "): it is broken or predates daemon-reexec; use systemctl restart relsupd");
  auto answer = ParseProbeAnswer(stdout_text);
  if (!answer.ok())
    return Status(StatusCode::kFailedPrecondition, who + ": " + answer.status().message());
  return answer;
}

void BlockStopSignals() {
  sigset_t set = StopSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void UnblockStopSignals() {
  sigset_t set = StopSignals();
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

void StartWorkerThreads() {
  uv_loop_t scratch;
  uv_loop_init(&scratch);
  uv_work_t job{};
  uv_queue_work(&scratch, &job, [](uv_work_t*) {}, [](uv_work_t*, int) {});
  uv_run(&scratch, UV_RUN_DEFAULT);
  uv_loop_close(&scratch);
}

bool DiscardPendingUsr2() {
  sigset_t pending;
  sigemptyset(&pending);
  if (sigpending(&pending) != 0 || sigismember(&pending, SIGUSR2) != 1) return false;
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  timespec zero{0, 0};
  return sigtimedwait(&usr2, nullptr, &zero) == SIGUSR2;
}

Status ExecFd(int fd, const std::string& name, const std::vector<std::string>& argv,
              const std::vector<std::pair<std::string, std::string>>& set) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    bool replaced = false;
    for (const auto& [key, value] : set)
      replaced = replaced || (entry.size() > key.size() && entry.substr(0, key.size()) == key &&
                              entry[key.size()] == '=');
    if (!replaced) env.emplace_back(entry);
  }
  for (const auto& [key, value] : set) env.push_back(key + "=" + value);
  std::vector<std::string> args = argv;
  auto argp = Pointers(args);
  auto envp = Pointers(env);
  ::syscall(SYS_execveat, fd, "", argp.data(), envp.data(), AT_EMPTY_PATH);
  return Status::FromErrno("cannot exec '" + name + "'", errno);
}

}  // namespace relsupd
