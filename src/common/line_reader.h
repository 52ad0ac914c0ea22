// Reading text data files line by line, gzip or plain (zlib passes plain files through): one
// reader for the datasets, the evaluation files and the sequence files.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

struct gzFile_s;

namespace streamrec::common {

class LineReader {
 public:
  //! NotFound ("file_not_found", field "path") when the file cannot be opened.
  static Result<LineReader> Open(const std::string& path);

  //! False at end of file; the line excludes "\n" and "\r\n". Lines of any length.
  bool Next(std::string& line);
  //! Non-empty when reading stopped on a decompression error rather than end of file.
  std::string Error();

 private:
  struct Closer {
    void operator()(gzFile_s* file) const;
  };
  explicit LineReader(gzFile_s* file) : file_(file) {}
  std::unique_ptr<gzFile_s, Closer> file_;
};

//! Calls `fn` for each line until it returns false. The Open status, or Internal ("reading
//! PATH: …") on a decompression error.
Status ForEachLine(const std::string& path, const std::function<bool(std::string_view)>& fn);

//! The fields of `line` between `sep`s, empty ones included ("a,,b" -> "a", "", "b").
std::vector<std::string_view> SplitFields(std::string_view line, char sep);

}  // namespace streamrec::common
