// A one-line progress bar on stderr for long offline commands (train, evaluate); silent
// when stderr is not a terminal.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string>

namespace streamrec::common {

class ProgressBar {
 public:
  ProgressBar(std::string label, bool enabled)
      : label_(std::move(label)), enabled_(enabled && isatty(STDERR_FILENO)) {}
  void operator()(size_t done, size_t total) {
    if (!enabled_ || total == 0) return;
    constexpr int kWidth = 30;
    int filled = static_cast<int>(kWidth * done / total);
    std::fprintf(stderr, "\r%-22s [%s%s] %3zu%% %zu/%zu", label_.c_str(),
                 std::string(filled, '#').c_str(), std::string(kWidth - filled, '.').c_str(),
                 100 * done / total, done, total);
    if (done == total) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  std::string label_;
  bool enabled_;
};

}  // namespace streamrec::common
