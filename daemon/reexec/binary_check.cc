#include "daemon/reexec/binary_check.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace relsupd {
namespace {

// e_type and e_machine sit at the same offsets in Elf32_Ehdr and
// Elf64_Ehdr, right after e_ident; they are in the file's byte order.
constexpr size_t kTypeOffset = EI_NIDENT;
constexpr size_t kMachineOffset = EI_NIDENT + 2;

uint16_t Half(std::string_view header, size_t offset, uint8_t data) {
  auto b0 = static_cast<uint8_t>(header[offset]);
  auto b1 = static_cast<uint8_t>(header[offset + 1]);
  return data == ELFDATA2LSB ? static_cast<uint16_t>(b0 | (b1 << 8))
                             : static_cast<uint16_t>((b0 << 8) | b1);
}

// "x86_64", with the word size and byte order when `ours` differs in them:
// "32-bit arm, big-endian".
std::string Describe(const ElfIdent& id, const ElfIdent& ours) {
  std::string out;
  if (id.elf_class != ours.elf_class)
    out += id.elf_class == ELFCLASS64 ? "64-bit " : "32-bit ";
  out += ElfMachineName(id.machine);
  if (id.data != ours.data)
    out += id.data == ELFDATA2LSB ? ", little-endian" : ", big-endian";
  return out;
}

Status CannotRun(const std::string& path, StatusCode code, const std::string& why) {
  return Status(code, "cannot run '" + path + "': " + why);
}

// The first kElfHeaderBytes of `fd` (fewer when the file is shorter).
Result<std::string> ReadHeader(int fd, const std::string& path) {
  std::string header(kElfHeaderBytes, '\0');
  ssize_t n;
  do {
    n = ::pread(fd, header.data(), header.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Status::FromErrno("cannot read '" + path + "'", errno);
  header.resize(static_cast<size_t>(n));
  return header;
}

}  // namespace

std::string ElfMachineName(uint16_t machine) {
  switch (machine) {
    case EM_386: return "i386";
    case EM_X86_64: return "x86_64";
    case EM_ARM: return "arm";
    case EM_AARCH64: return "aarch64";
    case EM_RISCV: return "riscv";
    case EM_PPC: return "ppc";
    case EM_PPC64: return "ppc64";
    case EM_S390: return "s390";
    case EM_MIPS: return "mips";
    default: return "machine " + std::to_string(machine);
  }
}

Result<ElfIdent> ParseElfHeader(std::string_view header) {
  if (header.substr(0, 2) == "#!")
    return InvalidArgument("is a script (#!), not an ELF executable");
  if (header.size() < kMachineOffset + 2 ||
      header.substr(0, SELFMAG) != std::string_view(ELFMAG, SELFMAG))
    return InvalidArgument("is not an ELF executable");
  ElfIdent id{.elf_class = static_cast<uint8_t>(header[EI_CLASS]),
              .data = static_cast<uint8_t>(header[EI_DATA]),
              .machine = 0};
  if ((id.elf_class != ELFCLASS32 && id.elf_class != ELFCLASS64) ||
      (id.data != ELFDATA2LSB && id.data != ELFDATA2MSB) ||
      static_cast<uint8_t>(header[EI_VERSION]) != EV_CURRENT)
    return InvalidArgument("is not an ELF executable (bad ELF identification)");
  uint16_t type = Half(header, kTypeOffset, id.data);
  if (type != ET_EXEC && type != ET_DYN)
    return InvalidArgument("is an ELF file but not an executable (type " +
                           std::to_string(type) + ")");
  id.machine = Half(header, kMachineOffset, id.data);
  return id;
}

Status CheckElfHeader(const std::string& path, std::string_view header,
                      const ElfIdent& ours) {
  Result<ElfIdent> id = ParseElfHeader(header);
  if (!id.ok()) return InvalidArgument("'" + path + "' " + id.status().message());
  if (*id == ours) return Status::Ok();
  return InvalidArgument("'" + path + "' is an ELF for " + Describe(*id, ours) +
                         "; this daemon runs " + Describe(ours, *id));
}

Result<ElfIdent> OwnElfIdent() {
  const std::string self = "/proc/self/exe";
  int fd = ::open(self.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("cannot open '" + self + "'", errno);
  Fd file(fd);
  ASSIGN_OR_RETURN(std::string header, ReadHeader(file.get(), self));
  Result<ElfIdent> id = ParseElfHeader(header);
  if (!id.ok()) return Internal("'" + self + "' " + id.status().message());
  return id;
}

Result<Fd> OpenCheckedBinary(const std::string& path) {
  int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) return Status::FromErrno("cannot run '" + path + "'", errno);
  Fd fd(raw);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return Status::FromErrno("cannot run '" + path + "'", errno);
  if (!S_ISREG(st.st_mode))
    return CannotRun(path, StatusCode::kPermissionDenied, "not a regular file");
  // A root daemon may exec any file with an x bit; the kernel asks the same.
  if ((st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return CannotRun(path, StatusCode::kPermissionDenied,
                     std::string("no execute bit set (mode ") + mode + ")");
  }
  ASSIGN_OR_RETURN(std::string header, ReadHeader(fd.get(), path));
  ASSIGN_OR_RETURN(ElfIdent ours, OwnElfIdent());
  RETURN_IF_ERROR(CheckElfHeader(path, header, ours));
  return fd;
}

}  // namespace relsupd
