// Finds the runfiles of a program: written by forge, with the API of Bazel's C++ runfiles
// library, so that `#include "tools/cpp/runfiles/runfiles.h"` works the same.
//
//   std::string error;
//   std::unique_ptr<Runfiles> runfiles(Runfiles::Create(argv[0], &error));
//   std::string path = runfiles->Rlocation("my_workspace/path/to/data.txt");
//
// The runfiles are a directory (`<program>.runfiles/`, or `RUNFILES_DIR`) or a manifest
// (`<program>.runfiles_manifest`, or `RUNFILES_MANIFEST_FILE`) mapping runfiles paths to files.

#ifndef TOOLS_CPP_RUNFILES_RUNFILES_H_
#define TOOLS_CPP_RUNFILES_RUNFILES_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace bazel {
namespace tools {
namespace cpp {
namespace runfiles {

class Runfiles {
 public:
  virtual ~Runfiles() {}

  // The runfiles of the program `argv0`, found next to it or through the environment
  // (RUNFILES_MANIFEST_FILE, RUNFILES_DIR); nullptr, with `error` saying why, if none.
  static Runfiles* Create(const std::string& argv0, std::string* error = nullptr);

  // As Create(argv0), with the manifest and the directory given (empty: not given).
  static Runfiles* Create(const std::string& argv0,
                          const std::string& runfiles_manifest_file,
                          const std::string& runfiles_dir,
                          std::string* error = nullptr);

  // The runfiles of a test, from the environment the test runner gives it
  // (RUNFILES_MANIFEST_FILE, TEST_SRCDIR).
  static Runfiles* CreateForTest(std::string* error = nullptr);

  // The path of the runfile `path` ("workspace/pkg/file"): an absolute path is returned
  // as it is; a path that is not normalized gives "".
  std::string Rlocation(const std::string& path) const;

  // The environment variables a subprocess needs to find the same runfiles.
  const std::vector<std::pair<std::string, std::string> >& EnvVars() const {
    return env_;
  }

 private:
  Runfiles(std::map<std::string, std::string> manifest, std::string directory,
           std::vector<std::pair<std::string, std::string> > env)
      : manifest_(std::move(manifest)),
        directory_(std::move(directory)),
        env_(std::move(env)) {}

  Runfiles(const Runfiles&) = delete;
  Runfiles& operator=(const Runfiles&) = delete;

  const std::map<std::string, std::string> manifest_;
  const std::string directory_;
  const std::vector<std::pair<std::string, std::string> > env_;
};

}  // namespace runfiles
}  // namespace cpp
}  // namespace tools
}  // namespace bazel

#endif  // TOOLS_CPP_RUNFILES_RUNFILES_H_
