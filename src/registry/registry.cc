#include "registry/registry.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unordered_set>

#include "common/clock.h"
#include "registry/model_host.h"

namespace streamrec::registry {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using common::Code;
using common::Result;
using common::Status;

constexpr char kManifestFile[] = "manifest.json";
constexpr char kPointerFile[] = "production.json";

Status IoError(const std::string& what, const std::string& path) {
  return Status::Internal(what + " " + path + ": " + std::strerror(errno));
}

Status FsyncPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return IoError("open", path);
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::Ok() : IoError("fsync", path);
}

Status WriteFile(const std::string& path, std::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  if (!out.flush()) return IoError("write", path);
  out.close();
  return FsyncPath(path);
}

// Readers never see a half-written file: the new one replaces the old by rename.
Status WriteFileAtomic(const std::string& path, std::string_view contents) {
  static std::atomic<uint64_t> counter{0};
  std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
  if (auto s = WriteFile(tmp, contents); !s.ok()) {
    std::error_code ec;
    fs::remove(tmp, ec);
    return s;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = IoError("rename", tmp);
    std::error_code ec;
    fs::remove(tmp, ec);
    return s;
  }
  return FsyncPath(fs::path(path).parent_path().string());
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Make(Code::kNotFound, "not_found", "cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Exclusive flock on <name>/.lock for the object's lifetime: writers of one name take turns,
// across threads and processes.
class NameLock {
 public:
  explicit NameLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ >= 0 && ::flock(fd_, LOCK_EX) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~NameLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

struct Pointer {
  int64_t version = 0;
  std::vector<int64_t> previous;  //!< earlier production versions, oldest first
};

Result<Pointer> ReadPointer(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return Pointer{};
  boost::system::error_code ec;
  json::value v = json::parse(*text, ec);
  const auto* o = ec ? nullptr : v.if_object();
  const auto* version = o ? o->if_contains("version") : nullptr;
  if (!version || !version->is_int64()) {
    return Status::Internal("corrupt production pointer " + path);
  }
  Pointer p;
  p.version = version->get_int64();
  if (const auto* prev = o->if_contains("previous"); prev && prev->is_array()) {
    for (const auto& e : prev->get_array()) {
      if (e.is_int64()) p.previous.push_back(e.get_int64());
    }
  }
  return p;
}

Status WritePointer(const std::string& path, const Pointer& p) {
  json::array prev;
  for (int64_t v : p.previous) prev.push_back(v);
  json::object o{{"version", p.version}, {"previous", std::move(prev)}};
  return WriteFileAtomic(path, json::serialize(o) + "\n");
}

// Version folders of a name, ascending; names that are not positive integers are skipped.
std::vector<int64_t> Versions(const fs::path& name_dir) {
  std::vector<int64_t> out;
  std::error_code ec;
  for (fs::directory_iterator it(name_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string n = it->path().filename().string();
    if (n.empty() || !std::all_of(n.begin(), n.end(), ::isdigit) || !it->is_directory()) continue;
    out.push_back(std::stoll(n));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status ValidateArtifactName(const std::string& name) {
  if (name.empty() || name == kManifestFile || name.find('/') != std::string::npos ||
      name[0] == '.') {
    return Status::Invalid("invalid_artifact", "bad artifact file name '" + name + "'",
                           "artifacts");
  }
  return Status::Ok();
}

Status CheckJsonObject(const std::string& text, const char* field) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    return Status::Invalid("invalid_json", std::string(field) + " must be a JSON object", field);
  }
  return Status::Ok();
}

}  // namespace

Status ValidateName(std::string_view name) {
  bool ok =
      !name.empty() && name.size() <= 128 && name[0] != '.' &&
      std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
      });
  if (!ok) {
    return Status::Invalid("invalid_name",
                           "model name must match [A-Za-z0-9._-]+ and not start with '.'", "name");
  }
  return Status::Ok();
}

Result<std::string> Sha256File(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Make(Code::kNotFound, "not_found", "cannot read " + path, "path");
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(in.gcount()));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

Result<Registry> Registry::Open(std::string dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::Internal("cannot create registry dir " + dir + ": " + ec.message());
  return Registry(std::move(dir));
}

std::string Registry::VersionDir(std::string_view name, int64_t version) const {
  return (fs::path(dir_) / std::string(name) / std::to_string(version)).string();
}

Result<int64_t> Registry::Register(Manifest manifest, std::span<const Artifact> files) {
  if (auto s = ValidateName(manifest.name); !s.ok()) return s;
  if (auto s = CheckJsonObject(manifest.metrics_json, "metrics"); !s.ok()) return s;
  if (auto s = CheckJsonObject(manifest.options_json, "training_options"); !s.ok()) return s;
  std::set<std::string> names;
  for (const auto& f : files) {
    if (auto s = ValidateArtifactName(f.name); !s.ok()) return s;
    if (!names.insert(f.name).second) {
      return Status::Invalid("invalid_artifact", "duplicate artifact " + f.name, "artifacts");
    }
  }
  if (!manifest.vocabulary.empty() && !names.count(manifest.vocabulary)) {
    return Status::Invalid("invalid_vocabulary",
                           "vocabulary " + manifest.vocabulary + " is not among the artifacts",
                           "vocabulary");
  }

  // Build the complete version in a staging folder on the same filesystem, then rename it in.
  static std::atomic<uint64_t> counter{0};
  const fs::path staging_root = fs::path(dir_) / ".staging";
  const fs::path staging = staging_root / (manifest.name + "-" + std::to_string(::getpid()) + "-" +
                                           std::to_string(++counter));
  std::error_code ec;
  fs::create_directories(staging, ec);
  if (ec) return Status::Internal("cannot create " + staging.string() + ": " + ec.message());
  auto fail = [&](Status s) -> Result<int64_t> {
    std::error_code ignored;
    fs::remove_all(staging, ignored);
    return s;
  };

  manifest.artifacts.clear();
  for (const auto& f : files) {
    const fs::path dest = staging / f.name;
    if (!f.source_path.empty()) {
      if (!fs::is_regular_file(f.source_path, ec)) {
        return fail(Status::Make(Code::kNotFound, "artifact_not_found",
                                 "artifact " + f.source_path + " is not a readable file",
                                 "artifacts"));
      }
      fs::copy_file(f.source_path, dest, fs::copy_options::overwrite_existing, ec);
      if (ec) return fail(Status::Internal("copy " + f.source_path + ": " + ec.message()));
      if (auto s = FsyncPath(dest.string()); !s.ok()) return fail(s);
    } else if (auto s = WriteFile(dest.string(), f.contents); !s.ok()) {
      return fail(s);
    }
    manifest.artifacts.push_back(f.name);
  }

  const fs::path name_dir = fs::path(dir_) / manifest.name;
  fs::create_directories(name_dir, ec);
  if (ec) return fail(Status::Internal("cannot create " + name_dir.string() + ": " + ec.message()));
  NameLock lock((name_dir / ".lock").string());
  if (!lock.ok()) return fail(IoError("lock", (name_dir / ".lock").string()));

  auto versions = Versions(name_dir);
  manifest.version = versions.empty() ? 1 : versions.back() + 1;
  manifest.created_ms = common::NowMs();
  manifest.stage = Stage::kCandidate;
  manifest.history = {{"", "candidate", manifest.created_ms, "register"}};
  if (auto s = WriteFile((staging / kManifestFile).string(), ManifestToJson(manifest)); !s.ok()) {
    return fail(s);
  }
  if (auto s = FsyncPath(staging.string()); !s.ok()) return fail(s);
  const fs::path final_dir = name_dir / std::to_string(manifest.version);
  if (::rename(staging.c_str(), final_dir.c_str()) != 0) {
    return fail(IoError("rename to", final_dir.string()));
  }
  if (auto s = FsyncPath(name_dir.string()); !s.ok()) return s;
  return manifest.version;
}

Result<std::vector<Manifest>> Registry::List(std::string_view name) const {
  std::vector<std::string> names;
  if (!name.empty()) {
    names.emplace_back(name);
  } else {
    std::error_code ec;
    for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
      std::string n = it->path().filename().string();
      if (it->is_directory() && ValidateName(n).ok()) names.push_back(std::move(n));
    }
    std::sort(names.begin(), names.end());
  }
  std::vector<Manifest> out;
  for (const auto& n : names) {
    for (int64_t v : Versions(fs::path(dir_) / n)) {
      auto m = Show(n, v);
      if (!m.ok()) return m.status();
      out.push_back(std::move(*m));
    }
  }
  return out;
}

Result<Manifest> Registry::Show(std::string_view name, int64_t version) const {
  if (auto s = ValidateName(name); !s.ok()) return s;
  if (version == 0) {
    auto versions = Versions(fs::path(dir_) / std::string(name));
    if (versions.empty()) {
      return Status::Make(Code::kNotFound, "model_not_found", "no model named " + std::string(name),
                          "name");
    }
    version = versions.back();
  }
  auto text = ReadFile((fs::path(VersionDir(name, version)) / kManifestFile).string());
  if (!text.ok()) {
    return Status::Make(Code::kNotFound, "version_not_found",
                        std::string(name) + " has no version " + std::to_string(version),
                        "version");
  }
  auto m = ManifestFromJson(*text);
  if (!m.ok())
    return Status::Internal("corrupt manifest of " + std::string(name) + " v" +
                            std::to_string(version) + ": " + m.status().message);
  return m;
}

namespace {

// Moves a manifest to `to` with a history entry (rewritten atomically).
Status SetStage(const Registry& r, std::string_view name, int64_t version, Stage to,
                const std::string& reason) {
  auto m = r.Show(name, version);
  if (!m.ok()) return m.status();
  if (m->stage == to) return Status::Ok();
  m->history.push_back(
      {std::string(StageName(m->stage)), std::string(StageName(to)), common::NowMs(), reason});
  m->stage = to;
  return WriteFileAtomic((fs::path(r.VersionDir(name, version)) / kManifestFile).string(),
                         ManifestToJson(*m));
}

}  // namespace

Status Registry::Promote(std::string_view name, int64_t version) {
  if (auto m = Show(name, version); !m.ok()) return m.status();
  const fs::path name_dir = fs::path(dir_) / std::string(name);
  NameLock lock((name_dir / ".lock").string());
  if (!lock.ok()) return IoError("lock", (name_dir / ".lock").string());
  auto pointer = ReadPointer((name_dir / kPointerFile).string());
  if (!pointer.ok()) return pointer.status();
  Pointer p = *pointer;
  if (p.version == version) return Status::Ok();
  if (p.version != 0) {
    if (auto s = SetStage(*this, name, p.version, Stage::kArchived,
                          "superseded by v" + std::to_string(version));
        !s.ok()) {
      return s;
    }
    p.previous.push_back(p.version);
  }
  if (auto s = SetStage(*this, name, version, Stage::kProduction, "promote"); !s.ok()) return s;
  p.version = version;
  // The pointer goes last: it is what readers (ModelHost) act on.
  return WritePointer((name_dir / kPointerFile).string(), p);
}

Result<int64_t> Registry::Rollback(std::string_view name) {
  if (auto s = ValidateName(name); !s.ok()) return s;
  const fs::path name_dir = fs::path(dir_) / std::string(name);
  if (!fs::is_directory(name_dir)) {
    return Status::Make(Code::kNotFound, "model_not_found", "no model named " + std::string(name),
                        "name");
  }
  NameLock lock((name_dir / ".lock").string());
  if (!lock.ok()) return IoError("lock", (name_dir / ".lock").string());
  auto pointer = ReadPointer((name_dir / kPointerFile).string());
  if (!pointer.ok()) return pointer.status();
  Pointer p = *pointer;
  if (p.version == 0 || p.previous.empty()) {
    return Status::Invalid("no_previous_production",
                           std::string(name) + " has no earlier production version to roll back to",
                           "name");
  }
  const int64_t back = p.previous.back();
  p.previous.pop_back();
  if (auto s = SetStage(*this, name, p.version, Stage::kArchived, "rollback"); !s.ok()) return s;
  if (auto s = SetStage(*this, name, back, Stage::kProduction, "rollback"); !s.ok()) return s;
  p.version = back;
  if (auto s = WritePointer((name_dir / kPointerFile).string(), p); !s.ok()) return s;
  return back;
}

Result<int64_t> Registry::ProductionVersion(std::string_view name) const {
  if (auto s = ValidateName(name); !s.ok()) return s;
  auto p = ReadPointer((fs::path(dir_) / std::string(name) / kPointerFile).string());
  if (!p.ok()) return p.status();
  return p->version;
}

Result<Manifest> Registry::Production(std::string_view name) const {
  auto v = ProductionVersion(name);
  if (!v.ok()) return v.status();
  if (*v == 0) {
    return Status::Make(Code::kNotFound, "no_production",
                        std::string(name) + " has no production version", "name");
  }
  return Show(name, *v);
}

Result<int64_t> ImportTorchscript(Registry& registry, const std::string& name,
                                  const std::string& module_path, const std::string& vocab_path,
                                  std::string_view signature_json) {
  {
    std::ifstream in(module_path, std::ios::binary);
    char magic[4] = {};
    if (!in || !in.read(magic, 4) ||
        std::string_view(magic, 4) != std::string_view("PK\x03\x04", 4)) {
      return Status::Invalid("invalid_torchscript",
                             module_path + " is not a TorchScript archive (torch.jit.save)",
                             "torchscript");
    }
  }
  if (!fs::is_regular_file(vocab_path)) {
    return Status::Make(Code::kNotFound, "vocabulary_not_found", "cannot read " + vocab_path,
                        "vocab");
  }
  Manifest manifest;
  manifest.name = name;
  manifest.type = ModelType::kTorchscript;
  boost::system::error_code ec;
  json::value sig =
      json::parse(json::string_view(signature_json.data(), signature_json.size()), ec);
  if (ec) return Status::Invalid("invalid_signature", "signature: " + ec.message(), "signature");
  if (sig.is_object()) {
    const auto* in = sig.get_object().if_contains("inputs");
    if (!in)
      return Status::Invalid("invalid_signature", "signature.inputs is required", "signature");
    auto inputs = ParseFields(json::serialize(*in));
    if (!inputs.ok()) return inputs.status();
    manifest.inputs = std::move(*inputs);
    if (const auto* out = sig.get_object().if_contains("outputs")) {
      auto outputs = ParseFields(json::serialize(*out));
      if (!outputs.ok()) return outputs.status();
      manifest.outputs = std::move(*outputs);
    }
  } else {
    auto inputs = ParseFields(signature_json);
    if (!inputs.ok()) return inputs.status();
    manifest.inputs = std::move(*inputs);
  }
  if (manifest.inputs.empty()) {
    return Status::Invalid("invalid_signature", "signature declares no inputs", "signature");
  }
  manifest.vocabulary = "vocab.txt";
  // Line k is the module's index k: a blank or repeated line would shift or alias indices.
  uint64_t items = 0;
  {
    std::ifstream in(vocab_path);
    std::unordered_set<std::string> seen;
    for (std::string line; std::getline(in, line);) {
      ++items;
      const std::string where = vocab_path + ":" + std::to_string(items);
      if (line.empty()) return Status::Invalid("invalid_vocabulary", where + " is empty", "vocab");
      if (!seen.insert(line).second) {
        return Status::Invalid("invalid_vocabulary", where + ": duplicate item id " + line,
                               "vocab");
      }
    }
    if (items == 0) {
      return Status::Invalid("invalid_vocabulary", vocab_path + " has no item ids", "vocab");
    }
  }
  // The module is called once here, so a broken one is refused now rather than at serving.
  if (auto s = CheckTorchscript(module_path, manifest.inputs, items); !s.ok()) return s;
  manifest.training_data.path = fs::absolute(module_path).string();
  auto sha = Sha256File(module_path);
  if (!sha.ok()) return sha.status();
  manifest.training_data.sha256 = *sha;  // of the imported module: its provenance
  manifest.training_data.items = items;
  manifest.options_json = "{\"imported\": true}";
  std::vector<Artifact> files{{"model.pt", module_path, ""}, {"vocab.txt", vocab_path, ""}};
  return registry.Register(std::move(manifest), files);
}

}  // namespace streamrec::registry
