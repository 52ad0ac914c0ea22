// The scenario expression language: compile once at scenario load, evaluate per event.
//
//   Schema schema;
//   schema.Add("input", Type::MapOf(Type::Any()));
//   auto program = Compile("#input.e == 'pv' && url_path(#input.url).starts_with('/p/')",
//                          schema, {.expect = Type::Bool()});
//   Env env(schema);
//   env.Set(0, event_value);
//   Result<Value> r = program->Eval(env);
//
// The language is described in docs/EXPRESSIONS.md.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "expr/value.h"

namespace streamrec::expr {

//! The variables a scenario binds, written `#name` in expressions, and their types.
class Schema {
 public:
  //! Declares `#name` (give the name without '#'); returns its slot in Env.
  size_t Add(std::string name, Type type);
  std::optional<size_t> Slot(std::string_view name) const;
  size_t size() const { return vars_.size(); }
  const std::string& name(size_t slot) const { return vars_[slot].first; }
  const Type& type(size_t slot) const { return vars_[slot].second; }

 private:
  std::vector<std::pair<std::string, Type>> vars_;
};

//! A record variable whose fields are made on demand from a native object (the event behind
//! `#input`): an evaluation pays only for the fields it reads. The variable's type must be a
//! record (Type::Record); field i is the type's i-th declared field.
class NativeRecord {
 public:
  virtual ~NativeRecord() = default;
  //! Field `index`: a value that outlives the evaluation, or `scratch` filled in.
  virtual const Value& Field(size_t index, Value& scratch) const = 0;
  //! The whole record as a map, when an expression uses the variable whole.
  virtual Value ToValue() const = 0;
  //! Member `key` of map field `index` (`#input.raw.e`) without making the whole map, for a
  //! record that can find one member more cheaply (in JSON text it has parsed): the member, null
  //! when absent (a value that outlives the evaluation, or `scratch` filled in), or nullptr when
  //! it cannot tell that way, also when the field is null; the member is then read from
  //! Field(index).
  virtual const Value* Member(size_t /*index*/, std::string_view /*key*/, Value& /*scratch*/) const {
    return nullptr;
  }
  //! Member `key` of map field `index` as it lies, without making its value, for a record that
  //! can tell (a test for null, a comparison with a string): kNull when absent or null, the text
  //! (valid while the record lives), or kUnknown when it cannot tell that way (then Member /
  //! Field answer).
  virtual StringPeek PeekMember(size_t /*index*/, std::string_view /*key*/) const { return {}; }
  //! Whether field `index` is null (`#input.raw != null`), without making it where cheaper.
  virtual bool FieldIsNull(size_t index) const {
    Value scratch;
    return Field(index, scratch).is_null();
  }
};

//! Values of the variables for one evaluation, by Schema slot. Cheap to reuse per event:
//! Set() replaces a slot's value.
class Env {
 public:
  explicit Env(const Schema& schema)
      : schema_(&schema), values_(schema.size()), natives_(schema.size()) {}
  void Set(size_t slot, Value value) { values_[slot] = std::move(value); }
  //! Binds a record variable to a native object (see NativeRecord), which then takes precedence
  //! over the slot's value. REQUIRES: `record` outlives the evaluations.
  void SetNative(size_t slot, const NativeRecord* record) { natives_[slot] = record; }
  //! Binds to `schema` with every variable null and no clock, keeping the storage: an Env kept
  //! per thread and reset per event allocates nothing.
  void Reset(const Schema& schema);
  //! Sets every variable to null (and unbinds natives), keeping the storage.
  void Clear();
  //! Invalid argument when the schema has no such variable.
  common::Status Set(std::string_view name, Value value);
  const Value& Get(size_t slot) const { return values_[slot]; }
  //! Moves variable `slot` out, leaving it null.
  Value Take(size_t slot) { return std::exchange(values_[slot], Value()); }
  //! Exchanges the variables with `values` (a run that stops keeps them there to resume later).
  //! REQUIRES: values.size() == size().
  void SwapValues(std::vector<Value>& values) { values_.swap(values); }
  //! Whether Reset(schema) was the last binding (compares addresses: the previous schema may be
  //! gone).
  bool BoundTo(const Schema& schema) const {
    return schema_ == &schema && values_.size() == schema.size();
  }
  size_t size() const { return values_.size(); }
  const Value* values() const { return values_.data(); }
  const NativeRecord* const* natives() const { return natives_.data(); }
  //! What now_ms() returns; the system clock when unset. Replays set the event time here so
  //! that a replay computes what the live run computed.
  void set_now_ms(std::optional<int64_t> now_ms) { now_ms_ = now_ms; }
  std::optional<int64_t> now_ms() const { return now_ms_; }

 private:
  const Schema* schema_;
  std::vector<Value> values_;
  std::vector<const NativeRecord*> natives_;
  std::optional<int64_t> now_ms_;
};

struct CompileOptions {
  //! When set, the result type must be this (or any/null); e.g. bool for a filter.
  std::optional<Type> expect;
  //! Evaluate subexpressions made of literals at compile time.
  bool fold_constants = true;
  //! Sources longer than this are rejected (scenario files are user input).
  size_t max_source_length = 16 * 1024;
};

class Node;  // compiled evaluation tree, private to src/expr

//! A compiled expression. Immutable: Eval may run on many threads at once.
class Program {
 public:
  //! Errors (invalid argument, reason "expression_error") name the column.
  common::Result<Value> Eval(const Env& env) const;
  //! For filters: null counts as false; any other non-bool is an error.
  common::Result<bool> EvalBool(const Env& env) const;
  //! Eval and EvalBool for a per-event path: the result into `out` without a Result in between;
  //! false on failure, with the error in `*error`.
  bool EvalTo(const Env& env, Value& out, common::Status* error) const;
  bool EvalBoolTo(const Env& env, bool& out, common::Status* error) const;
  //! The result without a copy, for a caller that only reads it: `scratch` when it was made,
  //! else a value it references (a variable, a constant, part of one), valid while `env`, its
  //! records and `scratch` are unchanged; nullptr on failure, with the error in `*error`.
  const Value* EvalRef(const Env& env, Value& scratch, common::Status* error) const;
  const Type& result_type() const { return result_type_; }
  const std::string& source() const { return source_; }
  //! True when the whole expression folded to one value.
  bool is_constant() const;
  //! Whether an evaluation may read field `field` (declared position) of the record variable in
  //! `slot`: the expression names `#var.field`, or uses `#var` whole.
  bool ReadsField(size_t slot, size_t field) const;
  //! The members of that field an evaluation may read (`#var.field.member`), sorted, once each;
  //! nullopt when it may use the field's value whole (passed on, indexed, `#var` used whole).
  //! Testing the field for null (`#var.field != null`) reads none of them.
  std::optional<std::vector<std::string>> MembersRead(size_t slot, size_t field) const;

  struct MemberRead {
    size_t slot, field;
    std::string member;
  };

 private:
  friend common::Result<Program> Compile(std::string_view, const Schema&, const CompileOptions&);
  //! Evaluates into `scratch` and calls use(result, scratch) (the result is `scratch` when it was
  //! made); false with `*error` set when the evaluation fails. Defined in compile.cc, used there.
  template <typename F>
  bool EvalWith(const Env& env, Value& scratch, common::Status* error, F&& use) const;
  std::vector<size_t> whole_reads_;                     // slots used whole
  std::vector<std::pair<size_t, size_t>> field_reads_;  // (slot, field) read as `#var.field`
  std::vector<std::pair<size_t, size_t>> whole_field_reads_;  // of those, not by member / null test
  std::vector<MemberRead> member_reads_;                      // `#var.field.member`
  std::shared_ptr<const Node> root_;
  Type result_type_;
  std::string source_;
  size_t num_vars_ = 0;
  size_t num_locals_ = 0;
  // When the expression is `#var` alone or `#var.field` (a record field by position): the slot
  // and the field.
  size_t root_var_ = SIZE_MAX;
  size_t root_field_ = SIZE_MAX;
};

//! Parses, type-checks and compiles `source` against the variables of `schema`.
//! Errors (invalid argument, reason "expression_error") read "column 14: unknown function
//! 'lowr' (did you mean 'lower'?)".
common::Result<Program> Compile(std::string_view source, const Schema& schema,
                                const CompileOptions& options = {});

//! The built-in function names, for docs and editor completion.
std::vector<std::string> FunctionNames();

}  // namespace streamrec::expr
