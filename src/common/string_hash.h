// A hash for maps keyed by std::string that are looked up with a std::string_view (or a
// literal) without making a std::string: pair it with std::equal_to<>.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

namespace streamrec::common {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

}  // namespace streamrec::common
