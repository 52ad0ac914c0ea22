// The manifest of one registered model version (`<registry>/<name>/<version>/manifest.json`):
// what the artifact is, what it takes and returns, what it was trained on, how it scored and
// where it stands in its lifecycle.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace streamrec::registry {

enum class ModelType { kCovis, kVsknn, kSknn, kSasrec, kTorchscript, kSlirec, kBlend };
enum class Stage { kCandidate, kProduction, kArchived };

std::string_view ModelTypeName(ModelType type);
common::Result<ModelType> ParseModelType(std::string_view name);
std::string_view StageName(Stage stage);
common::Result<Stage> ParseStage(std::string_view name);

//! One named, typed input or output of the model ("user_id": "string", "items": "list<string>").
struct Field {
  std::string name;
  std::string type;
  bool operator==(const Field&) const = default;
};
//! The declared signature of a session model: user id, items and timestamps (oldest first) in,
//! ranked items and scores out.
std::vector<Field> DefaultInputs();
std::vector<Field> DefaultOutputs();
//! Parses `[{"name":..,"type":..},..]`; kInvalidArgument naming the bad entry.
common::Result<std::vector<Field>> ParseFields(std::string_view json);

struct TrainingData {
  std::string path;
  std::string sha256;      //!< hex of the file's bytes
  uint64_t sequences = 0;  //!< sessions or users trained on
  uint64_t events = 0;     //!< clicks trained on
  uint64_t items = 0;      //!< distinct items
  bool operator==(const TrainingData&) const = default;
};

struct StageChange {
  std::string from;  //!< empty for the first stage
  std::string to;
  int64_t at_ms = 0;
  std::string reason;  //!< "register", "promote", "rollback", "superseded by vN"
  bool operator==(const StageChange&) const = default;
};

struct Manifest {
  std::string name;
  int64_t version = 0;  //!< 1, 2, ... per name; set by Registry::Register
  ModelType type = ModelType::kVsknn;
  std::vector<Field> inputs = DefaultInputs();
  std::vector<Field> outputs = DefaultOutputs();
  std::vector<std::string> artifacts;  //!< file names in the version folder
  std::string vocabulary;              //!< item-id vocabulary file (sasrec/slirec/torchscript)
  TrainingData training_data;
  std::string metrics_json = "{}";  //!< the evaluation's JSON object, verbatim
  std::string options_json = "{}";  //!< training options as a JSON object
  int64_t created_ms = 0;
  Stage stage = Stage::kCandidate;
  std::vector<StageChange> history;

  bool operator==(const Manifest&) const = default;
};

//! Pretty JSON of the manifest (metrics/options embedded as objects).
std::string ManifestToJson(const Manifest& manifest);
//! REQUIRES nothing: malformed or incomplete input gives kInvalidArgument naming the field.
common::Result<Manifest> ManifestFromJson(std::string_view json);

//! Normalizes a JSON text (e.g. metrics) to its compact form; kInvalidArgument when not JSON.
common::Result<std::string> CompactJson(std::string_view json);

}  // namespace streamrec::registry
