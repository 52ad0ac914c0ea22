#include "common/line_reader.h"

#include <zlib.h>

namespace streamrec::common {

void LineReader::Closer::operator()(gzFile_s* file) const { gzclose(file); }

Result<LineReader> LineReader::Open(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    return Status::Make(Code::kNotFound, "file_not_found", "cannot open " + path, "path");
  }
  gzbuffer(file, 1 << 18);
  return LineReader(file);
}

bool LineReader::Next(std::string& line) {
  line.clear();
  char chunk[64 * 1024];
  while (gzgets(file_.get(), chunk, sizeof(chunk)) != nullptr) {
    line.append(chunk);
    if (!line.empty() && line.back() == '\n') {
      line.pop_back();
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return true;
    }
  }
  return !line.empty();  // last line without "\n"
}

std::string LineReader::Error() {
  int code = Z_OK;
  const char* message = gzerror(file_.get(), &code);
  return code == Z_OK || code == Z_BUF_ERROR ? std::string() : std::string(message);
}

Status ForEachLine(const std::string& path, const std::function<bool(std::string_view)>& fn) {
  auto reader = LineReader::Open(path);
  if (!reader.ok()) return reader.status();
  std::string line;
  while (reader->Next(line)) {
    if (!fn(line)) return Status::Ok();
  }
  if (std::string error = reader->Error(); !error.empty()) {
    return Status::Internal("reading " + path + ": " + error);
  }
  return Status::Ok();
}

std::vector<std::string_view> SplitFields(std::string_view line, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t end = line.find(sep, start);
    out.push_back(line.substr(start, end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

}  // namespace streamrec::common
