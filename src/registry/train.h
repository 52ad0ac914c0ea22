// Training into the registry: trains a model on a shared dataset (or a given file), evaluates it
// with the dataset's protocol (models/eval.h) and registers it as a candidate with its metrics,
// options and, for SASRec, its training curve (curve.csv, curve.svg). Seeds are fixed.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "models/session_knn.h"
#include "registry/registry.h"

namespace streamrec::registry {

struct TrainRequest {
  std::string model = "vsknn";  //!< vsknn | sknn | covis | sasrec | slirec | blend
  //! diginetica | yoochoose | retailrocket (session protocol, every model), beauty | yelp |
  //! lastfm (leave-one-out). Ignored when data_path is set.
  std::string dataset = "diginetica";
  //! A file of your own: sessions (one per line) for session models, evaluated on the newest
  //! 10% of them; `user item item ...` lines (or a RecBole .inter file with timestamps) for
  //! sasrec/slirec, evaluated leave-one-out.
  std::string data_path;
  std::string datasets_dir;  //!< default $STREAMREC_DATASETS or ../shared/datasets
  std::string name;          //!< registry name; default "<model>-<dataset>"
  size_t max_sessions = 0;   //!< train on the newest N sessions (users); 0 all
  size_t max_test = 0;       //!< evaluate at most N cases (users); 0 all
  int64_t epochs = 0;        //!< sasrec/slirec; 0: SasrecOptions' default (early stopping)
  double max_seconds = 0;    //!< sasrec/slirec: stop after the epoch that ends past this (0 none)
  int threads = 0;           //!< sasrec/slirec: torch threads while training; 0: the default
  int64_t max_len = 0;       //!< sasrec/slirec: most recent items fed; 0: the default
  models::SessionKnnOptions knn;
  //! Settings chosen on a validation split of the training data instead of taken as given:
  //! vsknn: knn.idf_weighting and knn.position_decay (models::SelectVsknnOptions); blend: the
  //! members' weights (every models::kSessionHoldoutEvery-th session, which sequential members
  //! must have held out).
  bool select = false;
  //! blend: also learn a re-ranker of the blend's head (models/rerank.h) on the same
  //! validation sessions; implies select.
  bool rerank = false;
  //! blend: the registered members, "name" (its production version, else its latest) or
  //! "name@N"; two or more.
  std::vector<std::string> members;
  bool progress = true;  //!< progress bars and epoch lines on stderr
};

struct TrainOutcome {
  int64_t version = 0;
  Manifest manifest;
};

//! REQUIRES: the registry is open. kInvalidArgument for an unknown model or dataset, kNotFound
//! for missing data; sasrec/slirec without LibTorch in the build is kUnavailable.
common::Result<TrainOutcome> TrainAndRegister(Registry& registry, const TrainRequest& request);

//! A hand-written SVG line chart of a training curve: loss (left axis) and validation NDCG@10
//! (right axis) per epoch. Rows are (epoch, loss, val_ndcg10).
std::string CurveSvg(const std::vector<std::array<double, 3>>& rows, const std::string& title);

}  // namespace streamrec::registry
