// A model registry on disk: versioned, immutable artifacts with a manifest each, and a per-name
// production pointer that Promote and Rollback move.
//
//   <dir>/<name>/<version>/manifest.json   + artifact files (immutable once registered)
//   <dir>/<name>/production.json           {"version": N, "previous": [..]} (the source of truth
//                                           for the production stage; manifests mirror it)
//   <dir>/<name>/.lock                     flock serializing writers across processes
//   <dir>/.staging/                        half-written versions; renamed into place when complete
//
// Every write is atomic: a version appears by rename of a complete folder, pointers and manifests
// are replaced by rename of a complete file. Readers need no lock.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "registry/manifest.h"

namespace streamrec::registry {

//! A file to store with a version: copied from `source_path`, or written from `contents` when
//! source_path is empty. `name` is the file name in the version folder (no '/').
struct Artifact {
  std::string name;
  std::string source_path;
  std::string contents;
};

class Registry {
 public:
  //! Creates `dir` when missing.
  static common::Result<Registry> Open(std::string dir);

  const std::string& dir() const { return dir_; }

  //! Stores a new version of manifest.name as a candidate and returns its version (the name's
  //! largest + 1). version, stage, history, created_ms and artifacts are filled in here.
  //! metrics_json and options_json must be JSON objects. On failure nothing is left behind.
  common::Result<int64_t> Register(Manifest manifest, std::span<const Artifact> files);

  //! Every version of every model (name empty) or of one name; by name, then version.
  common::Result<std::vector<Manifest>> List(std::string_view name = {}) const;
  //! version 0: the latest. NotFound when absent.
  common::Result<Manifest> Show(std::string_view name, int64_t version = 0) const;
  //! Folder of a version's artifacts.
  std::string VersionDir(std::string_view name, int64_t version) const;

  //! Makes `version` production; the previous production version becomes archived and is
  //! remembered for Rollback. Promoting the production version again is a no-op.
  common::Status Promote(std::string_view name, int64_t version);
  //! Archives the production version and restores the one before it; returns it.
  common::Result<int64_t> Rollback(std::string_view name);
  //! The production version's manifest; NotFound when none was promoted.
  common::Result<Manifest> Production(std::string_view name) const;
  //! Cheap poll: the production version (0 when none). Reads one small file.
  common::Result<int64_t> ProductionVersion(std::string_view name) const;

 private:
  explicit Registry(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

//! Registers a user's own TorchScript module as a candidate of type torchscript, with its item-id
//! vocabulary (one external id per line, none blank or repeated; line k is module index k - 1)
//! and declared signature: `signature_json` is the inputs array, or {"inputs": [...],
//! "outputs": [...]}. The module must be a TorchScript archive (a zip file, as torch.jit.save
//! writes) that meets the contract of CheckTorchscript (model_host.h): with LibTorch it is loaded
//! and called once here, and refused (nothing registered) when it does not.
common::Result<int64_t> ImportTorchscript(Registry& registry, const std::string& name,
                                          const std::string& module_path,
                                          const std::string& vocab_path,
                                          std::string_view signature_json);

//! Hex SHA-256 of a file's bytes.
common::Result<std::string> Sha256File(const std::string& path);
//! Model names: [A-Za-z0-9._-]+, not starting with '.'.
common::Status ValidateName(std::string_view name);

}  // namespace streamrec::registry
