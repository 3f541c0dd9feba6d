#include "daemon/config/build_spec.h"

#include <sys/stat.h>

#include <cerrno>

#include "daemon/base/fd.h"
#include "daemon/config/yaml_util.h"

namespace relsupd {

Result<std::string> NormalizeBuildOutput(const std::string& path) {
  if (path.empty()) return InvalidArgument("output path is empty");
  if (path[0] == '/')
    return InvalidArgument("output path '" + path +
                           "' is absolute; it must be relative to DIR");
  if (path.find('\0') != std::string::npos)
    return InvalidArgument("output path contains a NUL byte");
  std::string out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    std::string part = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..")
      return InvalidArgument("output path '" + path +
                             "' contains '..'; it must stay inside DIR");
    if (!out.empty()) out += '/';
    out += part;
  }
  return out.empty() ? std::string(".") : out;
}

BuildSpec ParseBuildSection(const std::string& file, const YAML::Node& build,
                            yaml::Errors* errors) {
  BuildSpec spec;
  if (!build.IsMap()) {
    errors->Add(yaml::ErrorAt(file, build,
                              "'build' must be a mapping with 'command' and "
                              "'output'"));
    return spec;
  }
  yaml::CheckKeys(file, build, kBuildKeys, errors);
  if (const YAML::Node n = build["command"]) {
    if (errors->Take(yaml::ReadString(file, n, "command"), &spec.command) &&
        spec.command.find_first_not_of(" \t\r\n") == std::string::npos)
      errors->Add(yaml::ErrorAt(file, n, "'command' must not be empty"));
  }
  if (const YAML::Node n = build["output"])
    errors->Take(yaml::ReadParsed(file, n, "output", NormalizeBuildOutput), &spec.output);
  return spec;
}

Result<BuildSpec> ParseBuildSpec(const std::string& text,
                                 const std::string& file) {
  ASSIGN_OR_RETURN(YAML::Node root, yaml::LoadMap(text, file));
  BuildSpec spec;
  yaml::Errors errors;
  // yaml-cpp may throw on odd documents (e.g. complex keys); keep that inside.
  try {
    const YAML::Node build = root["build"];
    if (!build || build.IsNull()) return spec;
    spec = ParseBuildSection(file, build, &errors);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                           std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  if (!errors.empty()) return errors.ToStatus();
  return spec;
}

Result<BuildSpec> LoadBuildSpec(const std::string& dir) {
  const std::string path = dir + "/" + kBuildSpecFile;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return BuildSpec{};
    return Status::FromErrno("cannot stat '" + path + "'", errno);
  }
  if (!S_ISREG(st.st_mode))
    return InvalidArgument("'" + path + "' is not a regular file");
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxBuildSpecBytes));
  return ParseBuildSpec(text, path);
}

}  // namespace relsupd
