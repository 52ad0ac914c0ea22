#include "support/datasets.h"

#include <cstdlib>
#include <filesystem>

namespace streamrec::testing {

std::optional<std::string> DatasetPath(const std::string& relative) {
  const char* env = std::getenv("STREAMREC_DATASETS");
  // The shared folder sits beside the checkout; a clone elsewhere sets STREAMREC_DATASETS.
  std::string base = env && *env ? env : std::string(STREAMREC_SOURCE_DIR) + "/../shared/datasets";
  std::string path = base + "/" + relative;
  if (!std::filesystem::exists(path)) return std::nullopt;
  return path;
}

std::string FixturePath(const std::string& relative) {
  return std::string(STREAMREC_SOURCE_DIR) + "/tests/fixtures/" + relative;
}

}  // namespace streamrec::testing
