// machine_costs: what this machine charges for the things every supervisor
// figure is made of, independent of any supervisor. bench/README.md,
// "Session 20", explains why they matter: on a PVM guest a page fault is a
// trip to the host, and memory the guest freed may have gone back to it.
//
//   machine_costs [--dir DIR] [--mb N] [--runs N]
//
// Prints, each the median of --runs (default 5) rounds:
//   - anonymous memory: us per page faulted in one by one (256 pages of a
//     fresh mmap, a byte written to each), against the same range mapped
//     with MAP_POPULATE and then written;
//   - the page cache: MB/s of writing N MiB (default 256) in 1 MiB writes to
//     a new file in DIR (default $TMPDIR or /tmp), then of writing it again
//     to a second new file after the first was removed (its pages freed and
//     reused);
//   - exec: wall ms of fork + exec + wait of this binary (static) run as a
//     no-op, and the no-op's own CPU ms (children's rusage).
//
// Linked statically (no dynamic loader in the exec figure). Needs no root.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kPages = 256;

double NowUs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// us per page to write a byte to each of kPages pages of a fresh mapping,
// with or without MAP_POPULATE (whose cost is counted too).
double AnonUsPerPage(bool populate) {
  const size_t bytes = kPages * kPage;
  const double t0 = NowUs();
  void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0), -1, 0);
  if (m == MAP_FAILED) {
    std::perror("machine_costs: mmap");
    std::exit(1);
  }
  auto* p = static_cast<volatile char*>(m);
  for (size_t i = 0; i < kPages; ++i) p[i * kPage] = 1;
  const double t1 = NowUs();
  munmap(m, bytes);
  return (t1 - t0) / kPages;
}

// MB/s of writing `mb` MiB to `path` (created, fsync'd not: the page cache
// is what is measured), 1 MiB a write.
double WriteMbps(const std::string& path, size_t mb) {
  std::vector<char> buf(1 << 20, 'x');
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(("machine_costs: " + path).c_str());
    std::exit(1);
  }
  const double t0 = NowUs();
  for (size_t i = 0; i < mb; ++i) {
    size_t off = 0;
    while (off < buf.size()) {
      const ssize_t n = write(fd, buf.data() + off, buf.size() - off);
      if (n <= 0) {
        std::perror("machine_costs: write");
        std::exit(1);
      }
      off += static_cast<size_t>(n);
    }
  }
  const double t1 = NowUs();
  close(fd);
  return static_cast<double>(mb) * 1.048576 / ((t1 - t0) / 1e6);
}

// Wall ms of fork + exec + wait of `self` --noop; the child's CPU ms in
// *cpu_ms.
double ExecMs(const char* self, double* cpu_ms) {
  rusage before{}, after{};
  getrusage(RUSAGE_CHILDREN, &before);
  const double t0 = NowUs();
  const pid_t pid = fork();
  if (pid == 0) {
    execl(self, self, "--noop", static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  const double t1 = NowUs();
  getrusage(RUSAGE_CHILDREN, &after);
  auto us = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) * 1e6 + static_cast<double>(tv.tv_usec);
  };
  *cpu_ms = (us(after.ru_utime) + us(after.ru_stime) - us(before.ru_utime) -
             us(before.ru_stime)) /
            1e3;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "machine_costs: the no-op child failed\n");
    std::exit(1);
  }
  return (t1 - t0) / 1e3;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--noop") == 0) return 0;
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  size_t mb = 256;
  int runs = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--mb" && i + 1 < argc) {
      mb = std::strtoul(argv[++i], nullptr, 10);
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: machine_costs [--dir DIR] [--mb N] [--runs N]\n");
      return 2;
    }
  }
  if (mb == 0 || runs <= 0) {
    std::fprintf(stderr, "machine_costs: --mb and --runs must be positive\n");
    return 2;
  }
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) < 1) load[0] = -1;
  std::printf("machine_costs (load average %.2f), medians of %d rounds\n", load[0], runs);

  std::vector<double> faulted, populated, first, again, exec_wall, exec_cpu;
  const std::string a = dir + "/machine_costs." + std::to_string(getpid()) + ".a";
  const std::string b = dir + "/machine_costs." + std::to_string(getpid()) + ".b";
  for (int r = 0; r < runs; ++r) {
    faulted.push_back(AnonUsPerPage(false));
    populated.push_back(AnonUsPerPage(true));
    first.push_back(WriteMbps(a, mb));
    unlink(a.c_str());
    again.push_back(WriteMbps(b, mb));
    unlink(b.c_str());
    for (int k = 0; k < 40; ++k) {
      double cpu = 0;
      exec_wall.push_back(ExecMs(argv[0], &cpu));
      exec_cpu.push_back(cpu);
    }
  }
  std::printf("%-58s %10.2f\n", "anonymous page faulted in, one by one (us a page)",
              Median(faulted));
  std::printf("%-58s %10.2f\n", "the same mapped with MAP_POPULATE (us a page)",
              Median(populated));
  std::printf("%-58s %10.1f\n",
              ("page cache: " + std::to_string(mb) + " MiB to a new file (MB/s)").c_str(),
              Median(first));
  std::printf("%-58s %10.1f\n", "  again, after the first file was removed (MB/s)",
              Median(again));
  std::printf("%-58s %10.3f\n", "fork + exec + exit of a static no-op, wall (ms)",
              Median(exec_wall));
  std::printf("%-58s %10.3f\n", "  the no-op's own CPU (ms)", Median(exec_cpu));
  return 0;
}
