// Locating the shared real datasets (../shared/datasets from the source tree, or
// $STREAMREC_DATASETS). Tests skip when they are absent.
#pragma once

#include <optional>
#include <string>

namespace streamrec::testing {

//! Path of a dataset file, or nullopt when the datasets folder is not there.
std::optional<std::string> DatasetPath(const std::string& relative);
//! Path of a committed fixture under tests/fixtures.
std::string FixturePath(const std::string& relative);

}  // namespace streamrec::testing
