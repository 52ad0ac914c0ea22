// Compiled evaluation tree (private to src/expr). Each node evaluates into a caller-provided
// scratch Value or returns a reference to a value that already exists (a variable, a map
// field, a constant), so reading `#input.e` costs no reference-count traffic.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "expr/value.h"

namespace streamrec::expr {

class NativeRecord;

//! Per-evaluation state. Runtime errors are recorded here (first one wins) and evaluation
//! carries on with null, which keeps the hot path free of error checks; Program::Eval
//! reports the error and discards the result.
struct EvalContext {
  const Value* vars = nullptr;
  const NativeRecord* const* natives = nullptr;  //!< by slot; null entries (or all) for none
  //! Lambda parameters by slot: the element being visited (not a copy of it).
  const Value** locals = nullptr;
  std::optional<int64_t> now_ms;
  std::string_view source;
  bool failed = false;
  std::string error;

  void Fail(int pos, const std::string& message);
};

class Node {
 public:
  Node(Type type, int pos) : type_(std::move(type)), pos_(pos) {}
  virtual ~Node() = default;
  //! The result, either `scratch` (filled in) or a value that outlives the evaluation.
  virtual const Value& Eval(EvalContext& ctx, Value& scratch) const = 0;
  //! Non-null for constant nodes.
  virtual const Value* constant() const { return nullptr; }
  //! Whether the result is null (`x == null`): a node that can tell without making the value
  //! (a native record's field) overrides it.
  virtual bool IsNull(EvalContext& ctx) const {
    Value scratch;
    return Eval(ctx, scratch).is_null();
  }
  //! The result read where it lies when that is cheaper than making it (a literal, a string
  //! variable, a native record's member): see StringPeek. kUnknown by default.
  virtual StringPeek PeekString(EvalContext&) const { return {}; }
  const Type& type() const { return type_; }
  int pos() const { return pos_; }

 private:
  Type type_;
  int pos_;
};

using NodePtr = std::unique_ptr<Node>;

}  // namespace streamrec::expr
