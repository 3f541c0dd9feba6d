#pragma once
// The checks daemon-reexec runs on the binary it is about to exec, before
// anything has changed (docs/reexec.md §5.1 steps 1-3): the file exists, is
// a regular file with an execute bit, and is an ELF executable for the
// machine this daemon runs on. Each refusal names the file and the cause,
// because an exec that fails for one of these reasons would otherwise only
// say "Exec format error".
//
// ElfIdent and CheckElfHeader are pure (any thread); OpenCheckedBinary does
// a few blocking syscalls on a local file (loop thread is fine).

#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/base/fd.h"
#include "daemon/base/status.h"

namespace relsupd {

// The bytes of the ELF header (Elf64_Ehdr) that must match this machine's:
// both fit in the first 64 bytes of the file.
inline constexpr size_t kElfHeaderBytes = 64;

// What an ELF header says about where it runs.
struct ElfIdent {
  uint8_t elf_class = 0;  // ELFCLASS32, ELFCLASS64
  uint8_t data = 0;       // ELFDATA2LSB, ELFDATA2MSB
  uint16_t machine = 0;   // EM_X86_64, EM_AARCH64, ...
  bool operator==(const ElfIdent&) const = default;
};

// "x86_64", "aarch64", ... or "machine 183" for one without a name here.
std::string ElfMachineName(uint16_t machine);

// Reads the ident of an ELF executable (ET_EXEC or ET_DYN) from the first
// bytes of a file. Errors (kInvalidArgument) say what the file is instead,
// without its name: "is a script (#!), not an ELF executable", "is not an
// ELF executable", "is an ELF file but not an executable (type 1)".
Result<ElfIdent> ParseElfHeader(std::string_view header);

// Checks `header` (the first bytes of `path`) against `ours`, the ident of
// the running binary: "'PATH' is an ELF for aarch64; this daemon runs
// x86_64", or ParseElfHeader's error after "'PATH' ".
Status CheckElfHeader(const std::string& path, std::string_view header,
                      const ElfIdent& ours);

// The ident of the running binary (/proc/self/exe).
Result<ElfIdent> OwnElfIdent();

// Opens `path` O_RDONLY|O_CLOEXEC and runs every check above against the
// running binary. Returns the open file: the re-exec later execs this fd,
// so the file checked is the file run even if the path is replaced.
// Errors: "cannot run 'PATH': No such file or directory" (kNotFound),
// "... : Permission denied" (kPermissionDenied), "...: not a regular file",
// "...: no execute bit set" (kPermissionDenied), and CheckElfHeader's.
Result<Fd> OpenCheckedBinary(const std::string& path);

}  // namespace relsupd
