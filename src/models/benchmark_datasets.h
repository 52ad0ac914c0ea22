// The shared public datasets that `streamrec evaluate` and `streamrec train` know by name,
// with the protocol their published figures use (see ../shared/datasets/README.md).
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>

namespace streamrec::models {

enum class Protocol {
  kSession,      //!< every test prefix predicts the next item (SR-GNN split files)
  kLeaveOneOut,  //!< last item per user, full ranking, history masked (S3-Rec files)
};

struct BenchmarkDataset {
  const char* name;
  Protocol protocol;
  const char* train;  //!< relative to the datasets dir
  const char* test;   //!< session protocol only
};

inline constexpr BenchmarkDataset kBenchmarkDatasets[] = {
    {"diginetica", Protocol::kSession, "diginetica-srgnn/train_sessions.txt.gz",
     "diginetica-srgnn/test_pairs.tsv.gz"},
    {"yoochoose", Protocol::kSession, "yoochoose1_64-srgnn/train_sessions.txt.gz",
     "yoochoose1_64-srgnn/test_pairs.tsv.gz"},
    {"retailrocket", Protocol::kSession, "retailrocket-mtd/train_sessions.txt.gz",
     "retailrocket-mtd/test_pairs.tsv.gz"},
    {"beauty", Protocol::kLeaveOneOut, "s3rec-amazon-yelp-lastfm/Beauty.txt.gz", ""},
    {"yelp", Protocol::kLeaveOneOut, "s3rec-amazon-yelp-lastfm/Yelp.txt.gz", ""},
    {"lastfm", Protocol::kLeaveOneOut, "s3rec-amazon-yelp-lastfm/LastFM.txt", ""},
};

//! nullptr when the name is unknown.
inline const BenchmarkDataset* FindBenchmarkDataset(std::string_view name) {
  for (const auto& d : kBenchmarkDatasets) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

//! $STREAMREC_DATASETS, else ../shared/datasets (from the repository root).
inline std::string DefaultDatasetsDir() {
  if (const char* env = std::getenv("STREAMREC_DATASETS"); env && *env) return env;
  return "../shared/datasets";
}

}  // namespace streamrec::models
