// Model settings for the sequential-model tests: small and fast, seconds rather than minutes.
#pragma once

#include "models/torch/sasrec.h"

namespace streamrec::models {

inline SasrecOptions FastOptions() {
  SasrecOptions o;
  o.max_len = 20;
  o.hidden = 32;
  o.layers = 1;
  o.dropout = 0.1;
  o.lr = 5e-3;
  o.batch = 128;
  o.epochs = 8;
  o.patience = 3;
  o.threads = 1;
  return o;
}

}  // namespace streamrec::models
