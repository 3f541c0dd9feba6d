// daemon/reexec: the checks on the binary to re-exec (crafted ELF headers
// in temp files) and the --reexec-probe answer, from the real binary.
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "daemon/base/version.h"
#include "daemon/ledger/ledger.h"
#include "daemon/reexec/binary_check.h"
#include "daemon/reexec/handover_version.h"
#include "daemon/reexec/probe.h"
#include "daemon/reexec/standin.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace relsupd {
namespace {

using support::TempDir;

constexpr ElfIdent kX86_64{.elf_class = ELFCLASS64, .data = ELFDATA2LSB, .machine = EM_X86_64};

// A 64-byte ELF header: `id`'s class, byte order and machine, of `type`.
std::string Header(const ElfIdent& id, uint16_t type = ET_DYN) {
  std::string h(kElfHeaderBytes, '\0');
  h.replace(0, SELFMAG, ELFMAG, SELFMAG);
  h[EI_CLASS] = static_cast<char>(id.elf_class);
  h[EI_DATA] = static_cast<char>(id.data);
  h[EI_VERSION] = EV_CURRENT;
  auto put = [&](size_t at, uint16_t v) {
    bool lsb = id.data == ELFDATA2LSB;
    h[at] = static_cast<char>(lsb ? v & 0xff : v >> 8);
    h[at + 1] = static_cast<char>(lsb ? v >> 8 : v & 0xff);
  };
  put(EI_NIDENT, type);
  put(EI_NIDENT + 2, id.machine);
  return h;
}

// The first bytes of the running binary.
std::string OwnHeader() {
  std::ifstream in("/proc/self/exe", std::ios::binary);
  std::string h(kElfHeaderBytes, '\0');
  in.read(h.data(), static_cast<std::streamsize>(h.size()));
  return h;
}

std::string WriteFile(const TempDir& dir, const std::string& name, const std::string& bytes,
                      mode_t mode) {
  std::string path = dir / name;
  std::ofstream(path, std::ios::binary) << bytes;
  REQUIRE(::chmod(path.c_str(), mode) == 0);
  return path;
}

std::string ParseError(std::string_view header) {
  Result<ElfIdent> r = ParseElfHeader(header);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kInvalidArgument);
  return r.status().message();
}

TEST_CASE("an ELF header gives its class, byte order and machine, in either byte order") {
  CHECK(*ParseElfHeader(Header(kX86_64)) == kX86_64);
  CHECK(*ParseElfHeader(Header(kX86_64, ET_EXEC)) == kX86_64);
  ElfIdent big{.elf_class = ELFCLASS64, .data = ELFDATA2MSB, .machine = EM_S390};
  CHECK(*ParseElfHeader(Header(big)) == big);
  CHECK(*ParseElfHeader(OwnHeader()) == *OwnElfIdent());
}

TEST_CASE("what is not an ELF executable is named for what it is") {
  CHECK(ParseError("#!/bin/sh\nexec true\n") == "is a script (#!), not an ELF executable");
  CHECK(ParseError("") == "is not an ELF executable");
  CHECK(ParseError("hello, world") == "is not an ELF executable");
  CHECK(ParseError(Header(kX86_64).substr(0, 19)) == "is not an ELF executable");
  std::string bad_class = Header(kX86_64);
  bad_class[EI_CLASS] = 7;
  CHECK(ParseError(bad_class) == "is not an ELF executable (bad ELF identification)");
  std::string bad_version = Header(kX86_64);
  bad_version[EI_VERSION] = 0;
  CHECK(ParseError(bad_version) == "is not an ELF executable (bad ELF identification)");
  CHECK(ParseError(Header(kX86_64, ET_REL)) == "is an ELF file but not an executable (type 1)");
  CHECK(ParseError(Header(kX86_64, ET_CORE)) == "is an ELF file but not an executable (type 4)");
}

TEST_CASE("an ELF for another machine is refused with both machines named") {
  const std::string p = "/usr/libexec/relsupd/relsupd-core";
  CHECK(CheckElfHeader(p, Header(kX86_64), kX86_64).ok());
  ElfIdent arm64{.elf_class = ELFCLASS64, .data = ELFDATA2LSB, .machine = EM_AARCH64};
  Status s = CheckElfHeader(p, Header(arm64), kX86_64);
  CHECK(s.code() == StatusCode::kInvalidArgument);
  CHECK(s.message() == "'" + p + "' is an ELF for aarch64; this daemon runs x86_64");
  ElfIdent i386{.elf_class = ELFCLASS32, .data = ELFDATA2LSB, .machine = EM_386};
  CHECK(CheckElfHeader(p, Header(i386), kX86_64).message() ==
        "'" + p + "' is an ELF for 32-bit i386; this daemon runs 64-bit x86_64");
  ElfIdent big{.elf_class = ELFCLASS64, .data = ELFDATA2MSB, .machine = EM_X86_64};
  CHECK(CheckElfHeader(p, Header(big), kX86_64).message() ==
        "'" + p + "' is an ELF for x86_64, big-endian; this daemon runs x86_64, little-endian");
  ElfIdent odd{.elf_class = ELFCLASS64, .data = ELFDATA2LSB, .machine = 4242};
  CHECK(CheckElfHeader(p, Header(odd), kX86_64).message() ==
        "'" + p + "' is an ELF for machine 4242; this daemon runs x86_64");
  CHECK(CheckElfHeader(p, "#!/bin/sh", kX86_64).message() ==
        "'" + p + "' is a script (#!), not an ELF executable");
}

TEST_CASE("OpenCheckedBinary opens a file with our ELF header and an x bit, close-on-exec") {
  TempDir dir;
  std::string good = WriteFile(dir, "core", OwnHeader() + "rest", 0755);
  Result<Fd> fd = OpenCheckedBinary(good);
  REQUIRE(fd.ok());
  CHECK((::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC) != 0);
  // Any one x bit will do, as for the kernel when root execs.
  REQUIRE(::chmod(good.c_str(), 0604 | S_IXOTH) == 0);
  CHECK(OpenCheckedBinary(good).ok());
}

TEST_CASE("OpenCheckedBinary names the cause of each refusal") {
  TempDir dir;
  auto message = [](const std::string& path, StatusCode code) {
    Result<Fd> r = OpenCheckedBinary(path);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == code);
    return r.status().message();
  };
  std::string missing = dir / "missing";
  CHECK(message(missing, StatusCode::kNotFound) ==
        "cannot run '" + missing + "': No such file or directory");
  CHECK(message(dir.path(), StatusCode::kPermissionDenied) ==
        "cannot run '" + dir.path() + "': not a regular file");
  std::string plain = WriteFile(dir, "plain", OwnHeader(), 0644);
  CHECK(message(plain, StatusCode::kPermissionDenied) ==
        "cannot run '" + plain + "': no execute bit set (mode 0644)");
  std::string script = WriteFile(dir, "script", "#!/bin/sh\ntrue\n", 0755);
  CHECK(message(script, StatusCode::kInvalidArgument) ==
        "'" + script + "' is a script (#!), not an ELF executable");
  std::string empty = WriteFile(dir, "empty", "", 0755);
  CHECK(message(empty, StatusCode::kInvalidArgument) ==
        "'" + empty + "' is not an ELF executable");
  ElfIdent ours = *OwnElfIdent();
  ElfIdent other = ours;
  other.machine = ours.machine == EM_AARCH64 ? EM_X86_64 : EM_AARCH64;
  std::string foreign = WriteFile(dir, "foreign", Header(other), 0755);
  CHECK(message(foreign, StatusCode::kInvalidArgument) ==
        "'" + foreign + "' is an ELF for " + ElfMachineName(other.machine) +
            "; this daemon runs " + ElfMachineName(ours.machine));
}

TEST_CASE("the probe answer round-trips, and a bad one is refused with what is wrong") {
  ProbeAnswer a{.version = "0.10.0", .handover_oldest = 1, .handover_newest = 2, .schema = 7};
  CHECK(FormatProbeAnswer(a) ==
        R"({"handover":[1,2],"schema":7,"standin":false,"version":"0.10.0"})");
  CHECK(*ParseProbeAnswer(FormatProbeAnswer(a) + "\n") == a);
  a.standin = true;
  CHECK(*ParseProbeAnswer(FormatProbeAnswer(a)) == a);
  // A binary from before the stand-in says nothing of it: it gets none.
  CHECK_FALSE(ParseProbeAnswer(R"({"handover":[1,2],"schema":7,"version":"0.9.0"})")->standin);
  CHECK_FALSE(ParseProbeAnswer(R"({"handover":[1,2],"schema":7,"version":"0.9.0","standin":1})")
                  ->standin);
  CHECK(OwnProbeAnswer().standin);
  auto error = [](std::string_view out) {
    Result<ProbeAnswer> r = ParseProbeAnswer(out);
    REQUIRE_FALSE(r.ok());
    return r.status().message();
  };
  // What an older relsupd-core prints: a usage error.
  CHECK(error("The following argument was not expected: --reexec-probe") ==
        "the reexec probe's answer is not a JSON object");
  CHECK(error("[1]") == "the reexec probe's answer is not a JSON object");
  CHECK(error(R"({"handover":[1,2],"schema":7})") == "the reexec probe's answer has no version");
  CHECK(error(R"({"version":"1","handover":[2,1],"schema":7})") ==
        "the reexec probe's answer has no handover range [oldest, newest]");
  CHECK(error(R"({"version":"1","handover":[1,"2"],"schema":7})") ==
        "the reexec probe's answer has no handover range [oldest, newest]");
  CHECK(error(R"({"version":"1","handover":[1,2],"schema":-1})") ==
        "the reexec probe's answer has no ledger schema");
}

TEST_CASE("a probe answer outside what this daemon writes or its ledger holds is refused") {
  const std::string p = "/usr/libexec/relsupd/relsupd-core";
  ProbeAnswer a{.version = "0.8.0", .handover_oldest = 1, .handover_newest = 1, .schema = 5};
  CHECK(CheckProbeAnswer(p, a, 1, 5).ok());
  CHECK(CheckProbeAnswer(p, a, 1, 4).ok());  // an upgrade migrates the ledger
  Status newer = CheckProbeAnswer(p, a, 2, 5);
  CHECK(newer.code() == StatusCode::kFailedPrecondition);
  CHECK(newer.message() == "relsupd 0.8.0 ('" + p +
                               "') reads handover versions 1-1; this daemon writes 2: use "
                               "systemctl restart relsupd");
  ProbeAnswer later{.version = "0.11.0", .handover_oldest = 2, .handover_newest = 3, .schema = 5};
  CHECK_FALSE(CheckProbeAnswer(p, later, 1, 5).ok());
  CHECK(CheckProbeAnswer(p, a, 1, 6).message() ==
        "relsupd 0.8.0 ('" + p +
            "') knows ledger schemas up to 5; the ledger is at schema 6, so it could not open it");
}

TEST_CASE("relsupd-core daemon --reexec-probe prints its versions and touches no state") {
  TempDir dir;
  std::string core = (std::filesystem::path(RELSUPD_BIN).parent_path() / "relsupd-core").string();
  std::string state = dir / "state";
  support::ProcResult r = support::RunProcess(
      {core, "daemon", "--reexec-probe", "--state-dir", state, "--socket", dir / "s.sock"});
  INFO(r.Describe());
  REQUIRE(r.status.Exited(0));
  CHECK(r.err == "");
  Result<ProbeAnswer> a = ParseProbeAnswer(r.out);
  REQUIRE(a.ok());
  CHECK(a->version == kVersion);
  CHECK(a->handover_oldest == kOldestReadableHandover);
  CHECK(a->handover_newest == kHandoverVersion);
  CHECK(a->schema == Ledger::kSchemaVersion);
  CHECK(*a == OwnProbeAnswer());
  CHECK_FALSE(std::filesystem::exists(state));
  CHECK_FALSE(std::filesystem::exists(dir / "s.sock"));
  // The option is for the daemon only: it is not in --help.
  support::ProcResult help = support::RunProcess({core, "daemon", "--help"});
  CHECK(help.status.Exited(0));
  CHECK(help.out.find("reexec") == std::string::npos);
}

}  // namespace
}  // namespace relsupd

namespace relsupd {
namespace {

TEST_CASE("stand-in: RELSUPD_REEXEC_STANDIN parses four positive numbers and nothing else") {
  auto s = ParseStandinEnv("12,5,6,7");
  REQUIRE(s.has_value());
  CHECK(s->pid == 12);
  CHECK(s->pidfd.get() == 5);
  CHECK(s->stop.get() == 6);
  CHECK(s->handback.get() == 7);
  // Not ours to close: the numbers name no fd of this test.
  (void)s->pidfd.Release();
  (void)s->stop.Release();
  (void)s->handback.Release();
  for (const char* bad : {"", "12,5,6", "12,5,6,7,8", "12,5,6,x", "-1,5,6,7", "12,0,6,7",
                          "12,5,6,7 ", "99999999999,5,6,7", "12;5;6;7"})
    CHECK_FALSE(ParseStandinEnv(bad).has_value());
  CHECK_FALSE(ParseStandinEnv(nullptr).has_value());
}

TEST_CASE("stand-in: fds that are not a pidfd, a pipe and a socket are refused by name") {
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  Standin s;
  s.pid = ::getpid();
  s.pidfd = Fd(p[0]);  // a pipe, not a pidfd
  s.stop = Fd(p[1]);
  Status st = CheckStandin(s, {});
  CHECK_FALSE(st.ok());
  CHECK_THAT(st.message(), Catch::Contains(std::to_string(p[0])));
}

}  // namespace
}  // namespace relsupd
