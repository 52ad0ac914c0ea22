#include "models/torch/torchscript_model.h"

#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

namespace streamrec::models {
namespace {

using common::Result;
using common::Status;

Status Invalid(const std::string& message) {
  return Status::Invalid("invalid_torchscript", message, "torchscript");
}

}  // namespace

struct TorchscriptModel::Impl {
  // NOTE: forward is not const in the API, but running one module from several threads at
  // once is supported by TorchScript for inference (no state is written).
  mutable torch::jit::Module module;
  std::vector<ScriptInput> inputs;
  int64_t n_items = 0;
  std::string path;

  // Runs forward and checks the result; the message says what was wrong.
  Result<torch::Tensor> Call(std::string_view user, std::span<const int64_t> items,
                             std::span<const int64_t> timestamps_ms) const {
    const int64_t l = static_cast<int64_t>(items.size());
    std::vector<torch::jit::IValue> args;
    for (ScriptInput input : inputs) {
      switch (input) {
        case ScriptInput::kItems:
          args.emplace_back(
              torch::tensor(std::vector<int64_t>(items.begin(), items.end()), torch::kLong));
          break;
        case ScriptInput::kTimestamps: {
          auto t = torch::full({l}, -1, torch::kLong);
          if (timestamps_ms.size() == items.size()) {
            std::copy(timestamps_ms.begin(), timestamps_ms.end(), t.data_ptr<int64_t>());
          }
          args.emplace_back(t);
          break;
        }
        case ScriptInput::kUserId:
          args.emplace_back(std::string(user));
          break;
      }
    }
    torch::jit::IValue result;
    try {
      c10::InferenceMode guard;
      result = module.forward(args);
    } catch (const c10::Error& e) {
      return Invalid(path + ": forward failed: " + e.what_without_backtrace());
    } catch (const std::exception& e) {
      return Invalid(path + ": forward failed: " + e.what());
    }
    if (!result.isTensor()) {
      return Invalid(path + ": forward must return a Tensor of " + std::to_string(n_items) +
                     " scores, got " + result.tagKind());
    }
    auto scores = result.toTensor();
    if (scores.dim() == 2 && scores.size(0) == 1) scores = scores[0];
    if (scores.dim() != 1 || scores.size(0) != n_items) {
      return Invalid(path + ": forward must return " + std::to_string(n_items) +
                     " scores (one per vocabulary line), got shape " + c10::str(scores.sizes()));
    }
    if (!scores.is_floating_point()) {
      return Invalid(path + ": forward must return floating-point scores, got " +
                     std::string(c10::toString(scores.scalar_type())));
    }
    return scores.to(torch::kFloat).contiguous();
  }
};

TorchscriptModel::TorchscriptModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TorchscriptModel::TorchscriptModel(TorchscriptModel&&) noexcept = default;
TorchscriptModel& TorchscriptModel::operator=(TorchscriptModel&&) noexcept = default;
TorchscriptModel::~TorchscriptModel() = default;

int64_t TorchscriptModel::n_items() const { return impl_->n_items; }

Result<TorchscriptModel> TorchscriptModel::Load(const std::string& path,
                                                std::vector<ScriptInput> inputs, int64_t n_items) {
  if (n_items < 1) return Invalid("the vocabulary is empty");
  if (std::count(inputs.begin(), inputs.end(), ScriptInput::kItems) != 1) {
    return Invalid("the signature must declare the input \"items\" exactly once");
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::Make(common::Code::kNotFound, "not_found", "no such module: " + path,
                        "torchscript");
  }
  auto impl = std::make_unique<Impl>();
  impl->inputs = std::move(inputs);
  impl->n_items = n_items;
  impl->path = path;
  try {
    impl->module = torch::jit::load(path, torch::kCPU);
    impl->module.eval();
  } catch (const c10::Error& e) {
    return Invalid(path + " is not a loadable TorchScript module: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    return Invalid(path + " is not a loadable TorchScript module: " + e.what());
  }
  // The contract check: one call on a one-item history must give N scores.
  const int64_t dummy[] = {0};
  const int64_t dummy_ms[] = {0};
  if (auto check = impl->Call("streamrec-check", dummy, dummy_ms); !check.ok()) {
    return check.status();
  }
  return TorchscriptModel(std::move(impl));
}

Result<std::vector<float>> TorchscriptModel::Score(std::string_view user,
                                                   std::span<const int64_t> items,
                                                   std::span<const int64_t> timestamps_ms) const {
  auto scores = impl_->Call(user, items, timestamps_ms);
  if (!scores.ok()) return scores.status();
  const float* data = scores->data_ptr<float>();
  return std::vector<float>(data, data + impl_->n_items);
}

std::vector<std::pair<int64_t, float>> TorchscriptModel::TopK(
    std::string_view user, std::span<const int64_t> items, std::span<const int64_t> timestamps_ms,
    size_t k, bool mask_history) const {
  std::vector<std::pair<int64_t, float>> out;
  if (k == 0 || items.empty()) return out;
  auto scores = Score(user, items, timestamps_ms);
  if (!scores.ok()) return out;
  std::vector<float>& s = *scores;
  if (mask_history) {
    for (int64_t item : items) {
      if (item >= 0 && item < impl_->n_items) s[item] = NAN;
    }
  }
  std::vector<int64_t> order;
  order.reserve(s.size());
  for (int64_t i = 0; i < impl_->n_items; ++i) {
    if (!std::isnan(s[i])) order.push_back(i);
  }
  k = std::min(k, order.size());
  // Ties go to the lower index, so the answer does not depend on the sort's whims.
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int64_t a, int64_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); });
  for (size_t i = 0; i < k; ++i) out.emplace_back(order[i], s[order[i]]);
  return out;
}

}  // namespace streamrec::models
