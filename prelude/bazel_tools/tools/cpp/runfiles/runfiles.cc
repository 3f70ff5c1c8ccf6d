// The C++ runfiles library: written by forge (see runfiles.h).

#include "tools/cpp/runfiles/runfiles.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>

namespace bazel {
namespace tools {
namespace cpp {
namespace runfiles {

namespace {

bool IsFile(const std::string& path) {
  struct stat st;
  return !path.empty() && stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return !path.empty() && stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string Env(const char* name) {
  const char* value = getenv(name);
  return value ? value : "";
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Reads "runfiles-path exec-path" lines.
bool ReadManifest(const std::string& path, std::map<std::string, std::string>* out,
                  std::string* error) {
  std::ifstream in(path);
  if (!in.is_open()) {
    if (error) *error = "cannot open the runfiles manifest \"" + path + "\"";
    return false;
  }
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::string::size_type space = line.find(' ');
    if (space == std::string::npos) {
      (*out)[line] = "";
    } else {
      (*out)[line.substr(0, space)] = line.substr(space + 1);
    }
  }
  return true;
}

bool IsNormalized(const std::string& path) {
  if (path.empty() || path.find("//") != std::string::npos) return false;
  std::string::size_type start = 0;
  while (start <= path.size()) {
    std::string::size_type end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

Runfiles* Fail(std::string* error, const std::string& message) {
  if (error) *error = message;
  return nullptr;
}

}  // namespace

Runfiles* Runfiles::Create(const std::string& argv0, std::string* error) {
  return Create(argv0, Env("RUNFILES_MANIFEST_FILE"), Env("RUNFILES_DIR"), error);
}

Runfiles* Runfiles::Create(const std::string& argv0,
                           const std::string& runfiles_manifest_file,
                           const std::string& runfiles_dir, std::string* error) {
  std::string manifest = IsFile(runfiles_manifest_file) ? runfiles_manifest_file : "";
  std::string directory = IsDirectory(runfiles_dir) ? runfiles_dir : "";
  if (manifest.empty() && directory.empty() && !argv0.empty()) {
    if (IsFile(argv0 + ".runfiles_manifest")) {
      manifest = argv0 + ".runfiles_manifest";
    } else if (IsFile(argv0 + ".runfiles/MANIFEST")) {
      manifest = argv0 + ".runfiles/MANIFEST";
    }
    if (IsDirectory(argv0 + ".runfiles")) directory = argv0 + ".runfiles";
  }
  // The other one next to the one found, when it is there.
  if (directory.empty() && !manifest.empty()) {
    if (EndsWith(manifest, ".runfiles/MANIFEST")) {
      directory = manifest.substr(0, manifest.size() - 9);
    } else if (EndsWith(manifest, ".runfiles_manifest")) {
      std::string candidate = manifest.substr(0, manifest.size() - 9);
      if (IsDirectory(candidate)) directory = candidate;
    }
  }
  if (manifest.empty() && !directory.empty()) {
    if (IsFile(directory + "/MANIFEST")) {
      manifest = directory + "/MANIFEST";
    } else if (EndsWith(directory, ".runfiles") &&
               IsFile(directory.substr(0, directory.size() - 9) + ".runfiles_manifest")) {
      manifest = directory.substr(0, directory.size() - 9) + ".runfiles_manifest";
    }
  }
  if (manifest.empty() && directory.empty()) {
    return Fail(error, "cannot find the runfiles of \"" + argv0 +
                           "\" (no .runfiles directory or manifest next to it, and neither "
                           "RUNFILES_MANIFEST_FILE nor RUNFILES_DIR is set)");
  }
  std::map<std::string, std::string> entries;
  // With a directory, the manifest is only a fallback: a broken one is not an error.
  if (!manifest.empty() && !ReadManifest(manifest, &entries, directory.empty() ? error : nullptr) &&
      directory.empty()) {
    return nullptr;
  }
  std::vector<std::pair<std::string, std::string> > env;
  env.push_back(std::make_pair("RUNFILES_MANIFEST_FILE", manifest));
  env.push_back(std::make_pair("RUNFILES_DIR", directory));
  // Older runfiles libraries read JAVA_RUNFILES.
  env.push_back(std::make_pair("JAVA_RUNFILES", directory));
  if (!directory.empty()) entries.clear();
  return new Runfiles(std::move(entries), directory, std::move(env));
}

Runfiles* Runfiles::CreateForTest(std::string* error) {
  return Create("", Env("RUNFILES_MANIFEST_FILE"), Env("TEST_SRCDIR"), error);
}

std::string Runfiles::Rlocation(const std::string& path) const {
  if (!IsNormalized(path)) return "";
  if (path[0] == '/') return path;
  if (!directory_.empty()) return directory_ + "/" + path;
  std::map<std::string, std::string>::const_iterator it = manifest_.find(path);
  if (it != manifest_.end()) return it->second;
  // A file inside a directory the manifest lists.
  for (std::string::size_type slash = path.rfind('/'); slash != std::string::npos && slash > 0;
       slash = path.rfind('/', slash - 1)) {
    it = manifest_.find(path.substr(0, slash));
    if (it != manifest_.end()) return it->second + path.substr(slash);
  }
  return "";
}

}  // namespace runfiles
}  // namespace cpp
}  // namespace tools
}  // namespace bazel
