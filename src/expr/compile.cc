// Type checking and compilation of the syntax tree into evaluation nodes.
#include <algorithm>
#include <atomic>
#include <cmath>

#include "expr/expr.h"
#include "expr/functions.h"
#include "expr/node.h"
#include "expr/parser.h"

namespace streamrec::expr {

using common::Result;
using common::Status;

void EvalContext::Fail(int pos, const std::string& message) {
  if (failed) return;
  failed = true;
  error = Where(source, pos) + ": " + message;
}

namespace {

const Value kNullValue;

// A value that exists already, as a StringPeek.
StringPeek Peek(const Value& v) {
  if (v.is_string()) return {StringPeek::kString, v.as_string()};
  if (v.is_null()) return {StringPeek::kNull};
  return {};
}

std::string TypeName(const Value& v) { return KindName(v.kind()); }

[[gnu::cold, gnu::noinline]] bool NotABool(EvalContext& ctx, const Value& v, int pos,
                                          const char* what) {
  ctx.Fail(pos, std::string(what) + " needs a bool, got " + TypeName(v));
  return false;
}

// null and false are false; anything else but true is an error. Inline: every condition and
// `&&` / `||` operand goes through it.
inline bool Truthy(EvalContext& ctx, const Value& v, int pos, const char* what) {
  if (v.is_bool()) return v.as_bool();
  if (v.is_null()) return false;
  return NotABool(ctx, v, pos, what);
}

// ---- nodes --------------------------------------------------------------------------------

class ConstNode final : public Node {
 public:
  ConstNode(Value v, Type t, int pos) : Node(std::move(t), pos), value_(std::move(v)) {}
  const Value& Eval(EvalContext&, Value&) const override { return value_; }
  const Value* constant() const override { return &value_; }
  StringPeek PeekString(EvalContext&) const override { return Peek(value_); }

 private:
  Value value_;
};

class VarNode final : public Node {
 public:
  VarNode(size_t slot, Type t, int pos) : Node(std::move(t), pos), slot_(slot) {}
  const Value& Eval(EvalContext& ctx, Value& scratch) const override {
    if (ctx.natives && ctx.natives[slot_]) {
      scratch = ctx.natives[slot_]->ToValue();
      return scratch;
    }
    return ctx.vars[slot_];
  }
  StringPeek PeekString(EvalContext& ctx) const override {
    if (ctx.natives && ctx.natives[slot_]) return {};
    return Peek(ctx.vars[slot_]);
  }
  size_t slot() const { return slot_; }

 private:
  size_t slot_;
};

class LocalNode final : public Node {
 public:
  LocalNode(size_t slot, Type t, int pos) : Node(std::move(t), pos), slot_(slot) {}
  const Value& Eval(EvalContext& ctx, Value&) const override { return *ctx.locals[slot_]; }
  size_t slot() const { return slot_; }

 private:
  size_t slot_;
};

// Returns `*found`, which lives inside `container`; when the container is the scratch value
// itself, the result must be moved out before the container is overwritten.
const Value& Member(const Value& container, const Value* found, Value& scratch) {
  if (&container != &scratch) return *found;
  Value tmp = *found;
  scratch = std::move(tmp);
  return scratch;
}

class FieldNode final : public Node {
 public:
  FieldNode(NodePtr obj, std::string name, bool null_safe, Type t, int pos)
      : Node(std::move(t), pos),
        obj_(std::move(obj)),
        name_(std::move(name)),
        null_safe_(null_safe) {}

  const Value& Eval(EvalContext& ctx, Value& scratch) const override {
    return Read(ctx, obj_->Eval(ctx, scratch), scratch);
  }

  // The field of `o` (what obj_ gave).
  const Value& Read(EvalContext& ctx, const Value& o, Value& scratch) const {
    if (o.is_map()) {
      const Map& m = o.as_map();
      // Events of one stream share their field order: try where the field was last time.
      uint32_t h = hint_.load(std::memory_order_relaxed);
      if (h < m.size() && m[h].key == name_) return Member(o, &m[h].value, scratch);
      for (uint32_t i = 0; i < m.size(); ++i) {
        if (m[i].key == name_) {
          hint_.store(i, std::memory_order_relaxed);
          return Member(o, &m[i].value, scratch);
        }
      }
      return kNullValue;
    }
    if (o.is_null()) {
      if (!null_safe_) {
        ctx.Fail(pos(), "cannot read field '" + name_ + "' of null (use '?." + name_ + "')");
      }
      return kNullValue;
    }
    ctx.Fail(pos(), "cannot read field '" + name_ + "' of " + TypeName(o));
    return kNullValue;
  }
  const Node* object() const { return obj_.get(); }
  const std::string& name() const { return name_; }

 private:
  NodePtr obj_;
  std::string name_;
  bool null_safe_;
  mutable std::atomic<uint32_t> hint_{0};
};

// `#var.field` on a record variable: the field by its declared position when the variable is
// bound to a NativeRecord (no record is built), else as FieldNode does.
class VarFieldNode final : public Node {
 public:
  VarFieldNode(std::unique_ptr<VarNode> var, size_t index, std::string name, bool null_safe, Type t,
               int pos)
      : Node(t, pos),
        var_(std::move(var)),
        index_(index),
        field_(std::unique_ptr<Node>(), std::move(name), null_safe, std::move(t), pos) {}

  const Value& Eval(EvalContext& ctx, Value& scratch) const override {
    if (const NativeRecord* native = Native(ctx)) return native->Field(index_, scratch);
    return field_.Read(ctx, ctx.vars[var_->slot()], scratch);
  }
  bool IsNull(EvalContext& ctx) const override {
    if (const NativeRecord* native = Native(ctx)) return native->FieldIsNull(index_);
    return Node::IsNull(ctx);
  }
  size_t slot() const { return var_->slot(); }
  size_t index() const { return index_; }
  //! Member `key` of this field as the native record finds it (NativeRecord::Member), or
  //! nullptr.
  const Value* Member(EvalContext& ctx, std::string_view key, Value& scratch) const {
    const NativeRecord* native = Native(ctx);
    return native ? native->Member(index_, key, scratch) : nullptr;
  }
  //! Member `key` as it lies in the native record (NativeRecord::PeekMember), or kUnknown.
  StringPeek PeekMember(EvalContext& ctx, std::string_view key) const {
    const NativeRecord* native = Native(ctx);
    return native ? native->PeekMember(index_, key) : StringPeek{};
  }

 private:
  const NativeRecord* Native(const EvalContext& ctx) const {
    return ctx.natives ? ctx.natives[var_->slot()] : nullptr;
  }

  std::unique_ptr<VarNode> var_;
  size_t index_;
  FieldNode field_;  // for a variable that holds a plain value
};

// `#var.field.member` on a record variable's map field: the member as the native record finds
// it (one tracker field out of the event's JSON, not the whole map), else as FieldNode does.
class VarMemberNode final : public Node {
 public:
  VarMemberNode(std::unique_ptr<VarFieldNode> field, std::string name, bool null_safe, Type t,
                int pos)
      : Node(t, pos),
        field_(std::move(field)),
        member_(std::unique_ptr<Node>(), std::move(name), null_safe, std::move(t), pos) {}

  const Value& Eval(EvalContext& ctx, Value& scratch) const override {
    if (const Value* found = field_->Member(ctx, member_.name(), scratch)) return *found;
    return member_.Read(ctx, field_->Eval(ctx, scratch), scratch);
  }
  bool IsNull(EvalContext& ctx) const override {
    const StringPeek peek = PeekString(ctx);
    if (peek.kind == StringPeek::kUnknown) return Node::IsNull(ctx);
    return peek.kind == StringPeek::kNull;
  }
  StringPeek PeekString(EvalContext& ctx) const override {
    return field_->PeekMember(ctx, member_.name());
  }

 private:
  std::unique_ptr<VarFieldNode> field_;
  FieldNode member_;  // when the record cannot find the member itself
};

// `x == null` / `x != null`: asks the operand (Node::IsNull), which a native record's field
// answers without making its value.
class NullCheckNode final : public Node {
 public:
  NullCheckNode(NodePtr operand, bool is_null, int pos)
      : Node(Type::Bool(), pos), operand_(std::move(operand)), is_null_(is_null) {}
  const Value& Eval(EvalContext& ctx, Value&) const override {
    static const Value kTrue(true), kFalse(false);
    return operand_->IsNull(ctx) == is_null_ ? kTrue : kFalse;
  }

 private:
  NodePtr operand_;
  bool is_null_;
};

class IndexNode final : public Node {
 public:
  IndexNode(NodePtr obj, NodePtr index, bool null_safe, Type t, int pos)
      : Node(std::move(t), pos),
        obj_(std::move(obj)),
        index_(std::move(index)),
        null_safe_(null_safe) {}

  const Value& Eval(EvalContext& ctx, Value& scratch) const override {
    Value index_scratch;
    const Value& o = obj_->Eval(ctx, scratch);
    const Value& i = index_->Eval(ctx, index_scratch);
    if (o.is_list()) {
      if (i.is_null()) return kNullValue;
      if (!i.is_int()) {
        ctx.Fail(index_->pos(), "a list index must be an int, got " + TypeName(i));
        return kNullValue;
      }
      const List& l = o.as_list();
      int64_t k = i.as_int();
      if (k < 0) k += static_cast<int64_t>(l.size());  // -1 is the last element
      if (k < 0 || k >= static_cast<int64_t>(l.size())) return kNullValue;
      return Member(o, &l[k], scratch);
    }
    if (o.is_map()) {
      if (i.is_null()) return kNullValue;
      if (!i.is_string()) {
        ctx.Fail(index_->pos(), "a map key must be a string, got " + TypeName(i));
        return kNullValue;
      }
      const Value* found = o.Find(i.as_string());
      return found ? Member(o, found, scratch) : kNullValue;
    }
    if (o.is_null()) {
      if (!null_safe_) ctx.Fail(pos(), "cannot index null (use '?.[')");
      return kNullValue;
    }
    ctx.Fail(pos(), "cannot index " + TypeName(o));
    return kNullValue;
  }

 private:
  NodePtr obj_, index_;
  bool null_safe_;
};

class ListNode final : public Node {
 public:
  ListNode(std::vector<NodePtr> items, Type t, int pos)
      : Node(std::move(t), pos), items_(std::move(items)) {}
  const Value& Eval(EvalContext& ctx, Value& scratch) const override {
    List out;
    out.reserve(items_.size());
    for (const NodePtr& n : items_) {
      Value s;
      out.push_back(n->Eval(ctx, s));
    }
    scratch = Value(std::move(out));
    return scratch;
  }

 private:
  std::vector<NodePtr> items_;
};

class MapNode final : public Node {
 public:
  MapNode(std::vector<std::string> keys, std::vector<NodePtr> items, Type t, int pos)
      : Node(std::move(t), pos), keys_(std::move(keys)), items_(std::move(items)) {}
  const Value& Eval(EvalContext& ctx, Value& scratch) const override {
    // A record this node made before (a caller that keeps its scratch: a sink's value) is
    // refilled in place when nobody else holds it: no keys copied, no allocation.
    if (Map* last = scratch.UniqueMap(); last && SameKeys(*last)) {
      for (size_t i = 0; i < items_.size(); ++i) {
        Value s;
        const Value& v = items_[i]->Eval(ctx, s);
        if (&v == &s) {
          (*last)[i].value = std::move(s);
        } else {
          (*last)[i].value = v;
        }
      }
      return scratch;
    }
    Map out;
    out.reserve(items_.size());
    for (size_t i = 0; i < items_.size(); ++i) {
      Value s;
      out.push_back({keys_[i], items_[i]->Eval(ctx, s)});
    }
    scratch = Value(std::move(out));
    return scratch;
  }

 private:
  bool SameKeys(const Map& m) const {
    if (m.size() != keys_.size()) return false;
    for (size_t i = 0; i < keys_.size(); ++i) {
      if (m[i].key != keys_[i]) return false;
    }
    return true;
  }

  std::vector<std::string> keys_;
  std::vector<NodePtr> items_;
};

class NotNode final : public Node {
 public:
  NotNode(NodePtr x, int pos) : Node(Type::Bool(), pos), x_(std::move(x)) {}
  const Value& Eval(EvalContext& ctx, Value& scratch) const override {
    const Value& v = x_->Eval(ctx, scratch);
    scratch = Value(!Truthy(ctx, v, pos(), "'!'"));
    return scratch;
  }

 private:
  NodePtr x_;
};

class NegNode final : public Node {
 public:
  NegNode(NodePtr x, Type t, int pos) : Node(std::move(t), pos), x_(std::move(x)) {}
  const Value& Eval(EvalContext& ctx, Value& scratch) const override {
    const Value& v = x_->Eval(ctx, scratch);
    if (v.is_int() && v.as_int() != INT64_MIN) {
      scratch = Value(-v.as_int());
    } else if (v.is_double()) {
      scratch = Value(-v.as_double());
    } else if (v.is_null()) {
      return kNullValue;
    } else {
      ctx.Fail(pos(), v.is_int() ? "integer overflow" : "cannot negate " + TypeName(v));
      return kNullValue;
    }
    return scratch;
  }

 private:
  NodePtr x_;
};

// `a && b && c` (or `||`) as one node over its operands, in order, stopping at the first that
// decides.
class LogicNode final : public Node {
 public:
  LogicNode(bool is_and, NodePtr l, NodePtr r, int pos) : Node(Type::Bool(), pos), is_and_(is_and) {
    operands_.push_back(std::move(l));
    operands_.push_back(std::move(r));
  }
  bool is_and() const { return is_and_; }
  //! `this op r`, where `this` is the left side of the same operator.
  void Append(NodePtr r) { operands_.push_back(std::move(r)); }
  const Value& Eval(EvalContext& ctx, Value& scratch) const override {
    static const Value kTrue(true), kFalse(false);
    const char* what = is_and_ ? "'&&'" : "'||'";
    for (const NodePtr& operand : operands_) {
      // false for &&, true for ||: decided (short circuit)
      if (Truthy(ctx, operand->Eval(ctx, scratch), operand->pos(), what) != is_and_) {
        return is_and_ ? kFalse : kTrue;
      }
    }
    return is_and_ ? kTrue : kFalse;
  }

 private:
  bool is_and_;
  std::vector<NodePtr> operands_;
};

enum class CmpOp { kEq, kNe, kLt, kLe, kGt, kGe };

class CompareNode final : public Node {
 public:
  CompareNode(CmpOp op, NodePtr l, NodePtr r, int pos)
      : Node(Type::Bool(), pos), op_(op), l_(std::move(l)), r_(std::move(r)) {
    // `#input.raw.e == 'pv'`: compared where it lies, without making its value.
    if (op_ != CmpOp::kEq && op_ != CmpOp::kNe) return;
    const Value* literal = r_->constant();
    if (literal && literal->is_string()) literal_ = literal->as_string();
  }
  const Value& Eval(EvalContext& ctx, Value& scratch) const override {
    static const Value kTrue(true), kFalse(false);
    if (literal_) {
      const StringPeek peek = l_->PeekString(ctx);
      if (peek.kind != StringPeek::kUnknown) {
        // Null equals no string.
        const bool eq = peek.kind == StringPeek::kString && peek.text == *literal_;
        return (op_ == CmpOp::kEq) == eq ? kTrue : kFalse;
      }
    }
    Value rs;
    const Value& l = l_->Eval(ctx, scratch);
    const Value& r = r_->Eval(ctx, rs);
    bool result;
    if (op_ == CmpOp::kEq || op_ == CmpOp::kNe) {
      bool eq;
      if (l.is_null() || r.is_null()) {
        eq = l.is_null() && r.is_null();
      } else if (l.kind() != r.kind() && !(l.is_number() && r.is_number())) {
        ctx.Fail(pos(), "cannot compare " + TypeName(l) + " with " + TypeName(r));
        return kFalse;
      } else {
        eq = l == r;
      }
      result = (op_ == CmpOp::kEq) == eq;
    } else {
      if (l.is_null() || r.is_null()) return kFalse;  // null is unordered
      int c;
      if (l.is_int() && r.is_int()) {
        c = (l.as_int() > r.as_int()) - (l.as_int() < r.as_int());
      } else if (l.is_number() && r.is_number()) {
        double x = l.as_number(), y = r.as_number();
        if (std::isnan(x) || std::isnan(y)) return kFalse;
        c = (x > y) - (x < y);
      } else if (l.is_string() && r.is_string()) {
        int k = l.as_string().compare(r.as_string());
        c = (k > 0) - (k < 0);
      } else if (l.is_time() && r.is_time()) {
        c = (l.as_time().ms > r.as_time().ms) - (l.as_time().ms < r.as_time().ms);
      } else {
        ctx.Fail(pos(), "cannot compare " + TypeName(l) + " with " + TypeName(r));
        return kFalse;
      }
      switch (op_) {
        case CmpOp::kLt:
          result = c < 0;
          break;
        case CmpOp::kLe:
          result = c <= 0;
          break;
        case CmpOp::kGt:
          result = c > 0;
          break;
        default:
          result = c >= 0;
          break;
      }
    }
    return result ? kTrue : kFalse;
  }

 private:
  CmpOp op_;
  NodePtr l_, r_;
  std::optional<std::string_view> literal_;  // r_'s string, when it is a string literal
};

class ArithNode final : public Node {
 public:
  ArithNode(char op, NodePtr l, NodePtr r, Type t, int pos)
      : Node(std::move(t), pos), op_(op), l_(std::move(l)), r_(std::move(r)) {}

  const Value& Eval(EvalContext& ctx, Value& scratch) const override {
    Value rs;
    const Value& l = l_->Eval(ctx, scratch);
    const Value& r = r_->Eval(ctx, rs);
    if (l.is_null() || r.is_null()) return kNullValue;  // null propagates
    Value out = Apply(ctx, l, r);
    scratch = std::move(out);
    return scratch;
  }

 private:
  Value Fail(EvalContext& ctx, const Value& l, const Value& r) const {
    ctx.Fail(pos(),
             std::string("cannot apply '") + op_ + "' to " + TypeName(l) + " and " + TypeName(r));
    return {};
  }

  Value Apply(EvalContext& ctx, const Value& l, const Value& r) const {
    if (l.is_int() && r.is_int()) {
      int64_t a = l.as_int(), b = r.as_int(), out;
      bool overflow = false;
      switch (op_) {
        case '+':
          overflow = __builtin_add_overflow(a, b, &out);
          break;
        case '-':
          overflow = __builtin_sub_overflow(a, b, &out);
          break;
        case '*':
          overflow = __builtin_mul_overflow(a, b, &out);
          break;
        default:
          if (b == 0) {
            ctx.Fail(pos(), "division by zero");
            return {};
          }
          if (a == INT64_MIN && b == -1) {
            overflow = true;
            break;
          }
          out = op_ == '/' ? a / b : a % b;
      }
      if (overflow) {
        ctx.Fail(pos(), "integer overflow");
        return {};
      }
      return Value(out);
    }
    if (l.is_number() && r.is_number()) {
      double a = l.as_number(), b = r.as_number();
      switch (op_) {
        case '+':
          return Value(a + b);
        case '-':
          return Value(a - b);
        case '*':
          return Value(a * b);
        case '/':
          return Value(a / b);
        default:
          return Value(std::fmod(a, b));
      }
    }
    if (op_ == '+') {
      if (l.is_string() || r.is_string()) {
        if (l.is_string() && r.is_string()) {
          std::string s;
          s.reserve(l.as_string().size() + r.as_string().size());
          s.append(l.as_string()).append(r.as_string());
          return Value(std::move(s));
        }
        return Value(ToText(l) + ToText(r));
      }
      if (l.is_list() && r.is_list()) {
        List out = l.as_list();
        out.insert(out.end(), r.as_list().begin(), r.as_list().end());
        return Value(std::move(out));
      }
      if (l.is_time() && r.is_int()) return Value(TimeMs{l.as_time().ms + r.as_int()});
      if (l.is_int() && r.is_time()) return Value(TimeMs{l.as_int() + r.as_time().ms});
    }
    if (op_ == '-' && l.is_time()) {
      if (r.is_time()) return Value(l.as_time().ms - r.as_time().ms);
      if (r.is_int()) return Value(TimeMs{l.as_time().ms - r.as_int()});
    }
    return Fail(ctx, l, r);
  }

  char op_;
  NodePtr l_, r_;
};

class CondNode final : public Node {
 public:
  CondNode(NodePtr c, NodePtr a, NodePtr b, Type t, int pos)
      : Node(std::move(t), pos), c_(std::move(c)), a_(std::move(a)), b_(std::move(b)) {}
  const Value& Eval(EvalContext& ctx, Value& scratch) const override {
    bool c = Truthy(ctx, c_->Eval(ctx, scratch), c_->pos(), "the condition of '?'");
    return (c ? a_ : b_)->Eval(ctx, scratch);
  }

 private:
  NodePtr c_, a_, b_;
};

class ElvisNode final : public Node {
 public:
  ElvisNode(NodePtr a, NodePtr b, Type t, int pos)
      : Node(std::move(t), pos), a_(std::move(a)), b_(std::move(b)) {}
  const Value& Eval(EvalContext& ctx, Value& scratch) const override {
    const Value& a = a_->Eval(ctx, scratch);
    if (!a.is_null()) return a;
    return b_->Eval(ctx, scratch);
  }
  StringPeek PeekString(EvalContext& ctx) const override {
    const StringPeek a = a_->PeekString(ctx);
    return a.kind == StringPeek::kNull ? b_->PeekString(ctx) : a;
  }

 private:
  NodePtr a_, b_;
};

class CallNode final : public Node {
 public:
  CallNode(const Builtin* fn, std::vector<NodePtr> args, bool null_safe, std::unique_ptr<RE2> regex,
           std::optional<SimplePattern> simple, std::optional<UrlPattern> url_pattern, Type t,
           int pos)
      : Node(std::move(t), pos),
        fn_(fn),
        args_(std::move(args)),
        null_safe_(null_safe),
        regex_(std::move(regex)),
        simple_(std::move(simple)),
        url_pattern_(std::move(url_pattern)),
        simple_match_(simple_ && std::string_view(fn_->name) == "regex_match") {}

  const Value& Eval(EvalContext& ctx, Value& scratch) const override {
    if (simple_match_) {
      // A schema check (`regex_match(#input.raw.schema ?: '', '^iglu:…$')`) on the text where it
      // lies.
      static const Value kTrue(true), kFalse(false);
      const StringPeek text = args_[0]->PeekString(ctx);
      if (text.kind == StringPeek::kString) return simple_->Match(text.text) ? kTrue : kFalse;
    }
    Value scratches[3];
    const Value* args[3];
    if (!EvalArgs(ctx, scratches, args)) return kNullValue;
    CallSite site{pos(), regex_.get(), simple_ ? &*simple_ : nullptr,
                  url_pattern_ ? &*url_pattern_ : nullptr};
    scratch = fn_->eval(ctx, site, args, static_cast<int>(args_.size()));
    return scratch;
  }

  // Evaluates and checks the arguments into `args` (backed by `scratches`, 3 of each). False
  // when the call gives null without running: a null first argument that propagates, or a
  // failed check (recorded in ctx).
  bool EvalArgs(EvalContext& ctx, Value* scratches, const Value** args) const {
    const int n = static_cast<int>(args_.size());
    for (int i = 0; i < n; ++i) args[i] = &args_[i]->Eval(ctx, scratches[i]);
    for (int i = 0; i < n; ++i) {
      Kind k = args[i]->kind();
      if (k == Kind::kNull && i == 0 && (fn_->null_propagates || null_safe_)) return false;
      if (!(fn_->params[i] & Bit(k))) {
        if (k == Kind::kNull) {
          ctx.Fail(args_[i]->pos(),
                   std::string(fn_->name) + ": argument " + std::to_string(i + 1) + " is null");
        } else {
          ctx.Fail(args_[i]->pos(), std::string(fn_->name) + ": argument " + std::to_string(i + 1) +
                                        " must be " + MaskName(fn_->params[i]) + ", got " +
                                        TypeName(*args[i]));
        }
        return false;
      }
    }
    return true;
  }

  const Builtin* fn() const { return fn_; }
  const Node& arg(size_t i) const { return *args_[i]; }
  //! url_match's pattern, when it is a literal.
  const UrlPattern* url_pattern() const { return url_pattern_ ? &*url_pattern_ : nullptr; }

 private:
  const Builtin* fn_;
  std::vector<NodePtr> args_;
  bool null_safe_;
  std::unique_ptr<RE2> regex_;
  std::optional<SimplePattern> simple_;
  std::optional<UrlPattern> url_pattern_;
  bool simple_match_;  // regex_match with a simple literal pattern
};

// `url_match(url, 'pattern')?.name`: the parameter without building url_match's map, the
// common way to read a slug per event. Behaves exactly as the FieldNode over the call.
class UrlMatchFieldNode final : public Node {
 public:
  // REQUIRES: call->url_pattern().
  UrlMatchFieldNode(std::unique_ptr<CallNode> call, std::string name, bool null_safe, Type t,
                    int pos)
      : Node(std::move(t), pos),
        call_(std::move(call)),
        name_(std::move(name)),
        param_(call_->url_pattern()->Find(name_)),
        null_safe_(null_safe) {}

  const Value& Eval(EvalContext& ctx, Value& scratch) const override {
    // `#input.raw.url`: read where it lies (a null URL makes url_match null, as below).
    const StringPeek url = call_->arg(0).PeekString(ctx);
    Value scratches[3];
    const Value* args[3];
    if (url.kind == StringPeek::kString) {
      if (UrlMatchField(url.text, *call_->url_pattern(), param_, scratch)) return scratch;
    } else if (url.kind == StringPeek::kNull) {
      // url_match(null, …) is null.
    } else if (call_->EvalArgs(ctx, scratches, args)) {
      if (UrlMatchField(args[0]->as_string(), *call_->url_pattern(), param_, scratch)) {
        return scratch;
      }
    } else if (ctx.failed) {
      return kNullValue;
    }
    // url_match gave null.
    if (!null_safe_) {
      ctx.Fail(pos(), "cannot read field '" + name_ + "' of null (use '?." + name_ + "')");
    }
    return kNullValue;
  }

 private:
  std::unique_ptr<CallNode> call_;
  std::string name_;
  size_t param_;  // in the pattern's names, SIZE_MAX when it has no such one
  bool null_safe_;
};

enum class LambdaFn { kFilter, kMap, kAny, kAll };

class LambdaNode final : public Node {
 public:
  LambdaNode(LambdaFn fn, NodePtr list, size_t slot, NodePtr body, Type t, int pos)
      : Node(std::move(t), pos),
        fn_(fn),
        list_(std::move(list)),
        slot_(slot),
        body_(std::move(body)) {
    // `map(l, x -> x.field)`: the field is read from each element directly.
    if (fn_ != LambdaFn::kMap) return;
    if (const auto* field = dynamic_cast<const FieldNode*>(body_.get())) {
      const auto* local = dynamic_cast<const LocalNode*>(field->object());
      if (local && local->slot() == slot_) pluck_ = field;
    }
  }

  const Value& Eval(EvalContext& ctx, Value& scratch) const override {
    const Value& lv = list_->Eval(ctx, scratch);
    if (lv.is_null()) return kNullValue;
    if (!lv.is_list()) {
      ctx.Fail(list_->pos(), "expected a list, got " + TypeName(lv));
      return kNullValue;
    }
    Value keep = lv;  // the list must outlive `scratch` reuse below
    const List& list = keep.as_list();
    const Value*& param = ctx.locals[slot_];
    List out;
    if (fn_ == LambdaFn::kMap) out.reserve(list.size());
    for (const Value& item : list) {
      param = &item;  // `keep` holds the list
      Value s;
      const Value& r = pluck_ ? pluck_->Read(ctx, item, s) : body_->Eval(ctx, s);
      if (ctx.failed) break;
      switch (fn_) {
        case LambdaFn::kFilter:
          if (Truthy(ctx, r, body_->pos(), "the filter condition")) out.push_back(item);
          break;
        case LambdaFn::kMap:
          if (&r == &s) {
            out.push_back(std::move(s));
          } else {
            out.push_back(r);
          }
          break;
        case LambdaFn::kAny:
          if (Truthy(ctx, r, body_->pos(), "the any() condition")) {
            scratch = Value(true);
            return scratch;
          }
          break;
        case LambdaFn::kAll:
          if (!Truthy(ctx, r, body_->pos(), "the all() condition")) {
            scratch = Value(false);
            return scratch;
          }
          break;
      }
    }
    if (fn_ == LambdaFn::kAny || fn_ == LambdaFn::kAll) {
      scratch = Value(fn_ == LambdaFn::kAll);
    } else if (fn_ == LambdaFn::kFilter && out.size() == list.size()) {
      scratch = std::move(keep);
    } else {
      scratch = Value(std::move(out));
    }
    return scratch;
  }

 private:
  LambdaFn fn_;
  NodePtr list_;
  size_t slot_;
  NodePtr body_;
  const FieldNode* pluck_ = nullptr;  // body_ itself, when it only reads a field of the element
};

// ---- compiler -----------------------------------------------------------------------------

// Optimal string alignment distance: a swap of two neighbours ("inptu") counts as one edit.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] =
          std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// " (did you mean 'x'?)" for the closest candidate within about a third of the name's
// length in edits, else "" (a one-letter name resembles everything).
std::string DidYouMean(std::string_view name, const std::vector<std::string>& candidates,
                       std::string_view prefix = "") {
  std::string best;
  size_t best_d = std::max<size_t>(1, name.size() / 3) + 1;
  for (const std::string& c : candidates) {
    size_t d = EditDistance(name, c);
    if (d < best_d && d < name.size()) {
      best_d = d;
      best = c;
    }
  }
  return best.empty() ? "" : " (did you mean '" + std::string(prefix) + best + "'?)";
}

Type Unify(const Type& a, const Type& b) {
  if (a == b) return a;
  if (a.is(Type::Tag::kNull)) return b;
  if (b.is(Type::Tag::kNull)) return a;
  return Type::Any();
}

bool Passes(KindMask mask, const Type& t) {
  return t.is_any() || t.is(Type::Tag::kNull) || (mask & TypeBit(t));
}

bool Loose(const Type& t) { return t.is_any() || t.is(Type::Tag::kNull); }

class Compiler {
 public:
  Compiler(std::string_view src, const Schema& schema, const CompileOptions& options)
      : src_(src), schema_(schema), options_(options) {}

  NodePtr Compile(const Ast& a) {
    if (!error_.ok()) return nullptr;
    NodePtr n = CompileNode(a);
    if (!n) {
      if (error_.ok()) Fail(a.pos, "internal: no node");  // should not happen
      return nullptr;
    }
    return n;
  }

  const Status& error() const { return error_; }
  size_t num_locals() const { return num_locals_; }
  //! The variables read whole (once per use), the record fields read (Program::ReadsField), of
  //! those the ones read other than through a member or a null check, and the members read
  //! (Program::MembersRead).
  const std::vector<size_t>& whole_reads() const { return whole_reads_; }
  const std::vector<std::pair<size_t, size_t>>& field_reads() const { return field_reads_; }
  const std::vector<std::pair<size_t, size_t>>& whole_field_reads() const {
    return whole_field_reads_;
  }
  const std::vector<Program::MemberRead>& member_reads() const { return member_reads_; }

 private:
  void Fail(int pos, const std::string& msg) {
    if (error_.ok()) error_ = Status::Invalid("expression_error", Where(src_, pos) + ": " + msg);
  }

  // Replaces a node whose inputs are all constant by its value.
  NodePtr Fold(NodePtr n, std::initializer_list<const Node*> inputs) {
    if (!options_.fold_constants || !n) return n;
    for (const Node* in : inputs) {
      if (!in || !in->constant()) return n;
    }
    return FoldNow(std::move(n));
  }
  NodePtr FoldNow(NodePtr n) {
    EvalContext ctx;
    ctx.source = src_;
    Value scratch;
    Value v = n->Eval(ctx, scratch);
    if (ctx.failed) {
      if (error_.ok()) error_ = Status::Invalid("expression_error", ctx.error);
      return nullptr;
    }
    return std::make_unique<ConstNode>(std::move(v), n->type(), n->pos());
  }

  NodePtr CompileNode(const Ast& a) {
    using K = Ast::Kind;
    switch (a.kind) {
      case K::kLiteral:
        return std::make_unique<ConstNode>(a.literal, TypeOf(a.literal), a.pos);
      case K::kVar: {
        auto slot = schema_.Slot(a.name);
        if (!slot) {
          std::vector<std::string> names;
          for (size_t i = 0; i < schema_.size(); ++i) names.push_back(schema_.name(i));
          Fail(a.pos, "unknown variable '#" + a.name + "'" + DidYouMean(a.name, names, "#"));
          return nullptr;
        }
        whole_reads_.push_back(*slot);  // until it turns out to be `#var.field` (below)
        return std::make_unique<VarNode>(*slot, schema_.type(*slot), a.pos);
      }
      case K::kName: {
        for (auto it = scope_.rbegin(); it != scope_.rend(); ++it) {
          if (it->name == a.name) return std::make_unique<LocalNode>(it->slot, it->type, a.pos);
        }
        std::string hint;
        if (schema_.Slot(a.name)) {
          hint = " (variables start with '#': did you mean '#" + a.name + "'?)";
        } else if (FindBuiltin(a.name) || IsLambdaFunction(a.name)) {
          hint = " ('" + a.name + "' is a function: call it as " + a.name + "(...))";
        }
        Fail(a.pos, "unknown name '" + a.name + "'" + hint);
        return nullptr;
      }
      case K::kList: {
        std::vector<NodePtr> items;
        Type elem = Type::Null();
        bool all_const = true;
        for (size_t i = 0; i < a.kids.size(); ++i) {
          NodePtr n = Compile(*a.kids[i]);
          if (!n) return nullptr;
          elem = i == 0 ? n->type() : Unify(elem, n->type());
          all_const = all_const && n->constant();
          items.push_back(std::move(n));
        }
        if (elem.is(Type::Tag::kNull)) elem = Type::Any();
        NodePtr n = std::make_unique<ListNode>(std::move(items), Type::ListOf(elem), a.pos);
        return all_const && options_.fold_constants ? FoldNow(std::move(n)) : std::move(n);
      }
      case K::kMap: {
        std::vector<NodePtr> items;
        std::vector<std::pair<std::string, Type>> fields;
        bool all_const = true;
        for (size_t i = 0; i < a.kids.size(); ++i) {
          NodePtr n = Compile(*a.kids[i]);
          if (!n) return nullptr;
          fields.emplace_back(a.keys[i], n->type());
          all_const = all_const && n->constant();
          items.push_back(std::move(n));
        }
        NodePtr n = std::make_unique<MapNode>(a.keys, std::move(items),
                                              Type::Record(std::move(fields)), a.pos);
        return all_const && options_.fold_constants ? FoldNow(std::move(n)) : std::move(n);
      }
      case K::kField: {
        NodePtr obj = Compile(*a.kids[0]);
        if (!obj) return nullptr;
        const Type& ot = obj->type();
        Type t = Type::Any();
        if (ot.is(Type::Tag::kMap)) {
          const Type* ft = ot.Field(a.name);
          if (!ft) {
            std::vector<std::string> names;
            for (const auto& f : *ot.fields()) names.push_back(f.first);
            Fail(a.pos,
                 "unknown field '" + a.name + "' in " + ot.ToString() + DidYouMean(a.name, names));
            return nullptr;
          }
          t = *ft;
        } else if (!Loose(ot)) {
          Fail(a.pos, "cannot read field '" + a.name + "' of " + ot.ToString());
          return nullptr;
        }
        if (auto* var = dynamic_cast<VarNode*>(obj.get()); var && ot.fields()) {
          const auto& fields = *ot.fields();
          size_t index = 0;
          while (fields[index].first != a.name) ++index;  // present: checked above
          // The variable is read only through this field: its whole read was the latest one.
          whole_reads_.pop_back();
          field_reads_.emplace_back(var->slot(), index);
          whole_field_reads_.emplace_back(var->slot(), index);  // until read by member (below)
          obj.release();
          return std::make_unique<VarFieldNode>(std::unique_ptr<VarNode>(var), index, a.name,
                                                a.null_safe, t, a.pos);
        }
        if (auto* field = dynamic_cast<VarFieldNode*>(obj.get())) {
          // The field is read only through this member: its whole read was the latest one.
          whole_field_reads_.pop_back();
          member_reads_.push_back({field->slot(), field->index(), a.name});
          obj.release();
          return std::make_unique<VarMemberNode>(std::unique_ptr<VarFieldNode>(field), a.name,
                                                 a.null_safe, t, a.pos);
        }
        if (auto* call = dynamic_cast<CallNode*>(obj.get());
            call && call->url_pattern()) {
          obj.release();
          return std::make_unique<UrlMatchFieldNode>(std::unique_ptr<CallNode>(call), a.name,
                                                     a.null_safe, t, a.pos);
        }
        const Node* in = obj.get();
        return Fold(std::make_unique<FieldNode>(std::move(obj), a.name, a.null_safe, t, a.pos),
                    {in});
      }
      case K::kIndex: {
        NodePtr obj = Compile(*a.kids[0]);
        NodePtr idx = obj ? Compile(*a.kids[1]) : nullptr;
        if (!idx) return nullptr;
        const Type& ot = obj->type();
        const Type& it = idx->type();
        Type t = Type::Any();
        if (ot.is(Type::Tag::kList)) {
          if (!Passes(kMaskInt, it)) {
            Fail(idx->pos(), "a list index must be an int, got " + it.ToString());
            return nullptr;
          }
          t = ot.element();
        } else if (ot.is(Type::Tag::kMap)) {
          if (!Passes(kMaskString, it)) {
            Fail(idx->pos(), "a map key must be a string, got " + it.ToString());
            return nullptr;
          }
          if (ot.fields()) {
            if (const Value* k = idx->constant(); k && k->is_string()) {
              const Type* ft = ot.Field(k->as_string());
              if (!ft) {
                Fail(idx->pos(), "unknown field '" + std::string(k->as_string()) + "' in " +
                                     ot.ToString());
                return nullptr;
              }
              t = *ft;
            }
          } else {
            t = ot.element();
          }
        } else if (!Loose(ot)) {
          Fail(a.pos, "cannot index " + ot.ToString());
          return nullptr;
        }
        const Node *in0 = obj.get(), *in1 = idx.get();
        return Fold(
            std::make_unique<IndexNode>(std::move(obj), std::move(idx), a.null_safe, t, a.pos),
            {in0, in1});
      }
      case K::kUnary: {
        NodePtr x = Compile(*a.kids[0]);
        if (!x) return nullptr;
        const Node* in = x.get();
        if (a.op == "!") {
          if (!Passes(kMaskBool, x->type())) {
            Fail(a.pos, "'!' needs a bool, got " + x->type().ToString());
            return nullptr;
          }
          return Fold(std::make_unique<NotNode>(std::move(x), a.pos), {in});
        }
        if (!Passes(kMaskNumber, x->type())) {
          Fail(a.pos, "cannot negate " + x->type().ToString());
          return nullptr;
        }
        Type t = x->type().is_number() ? x->type() : Type::Any();
        return Fold(std::make_unique<NegNode>(std::move(x), t, a.pos), {in});
      }
      case K::kBinary:
        return CompileBinary(a);
      case K::kCond: {
        NodePtr c = Compile(*a.kids[0]);
        NodePtr x = c ? Compile(*a.kids[1]) : nullptr;
        NodePtr y = x ? Compile(*a.kids[2]) : nullptr;
        if (!y) return nullptr;
        if (!Passes(kMaskBool, c->type())) {
          Fail(c->pos(), "the condition of '?' must be bool, got " + c->type().ToString());
          return nullptr;
        }
        if (const Value* cv = c->constant(); cv && options_.fold_constants) {
          if (cv->is_bool() || cv->is_null()) {
            return (cv->is_bool() && cv->as_bool()) ? std::move(x) : std::move(y);
          }
        }
        Type t = Unify(x->type(), y->type());
        return std::make_unique<CondNode>(std::move(c), std::move(x), std::move(y), t, a.pos);
      }
      case K::kElvis: {
        NodePtr x = Compile(*a.kids[0]);
        NodePtr y = x ? Compile(*a.kids[1]) : nullptr;
        if (!y) return nullptr;
        if (const Value* xv = x->constant(); xv && options_.fold_constants) {
          return xv->is_null() ? std::move(y) : std::move(x);
        }
        Type t = x->type().is(Type::Tag::kNull) ? y->type() : Unify(x->type(), y->type());
        if (Loose(y->type()) && !x->type().is_any()) t = x->type();
        return std::make_unique<ElvisNode>(std::move(x), std::move(y), t, a.pos);
      }
      case K::kCall:
        return CompileCall(a);
      case K::kLambda:
        Fail(a.pos, "a lambda 'x -> ...' is only allowed as an argument of filter, map, any, all");
        return nullptr;
    }
    return nullptr;
  }

  NodePtr CompileBinary(const Ast& a) {
    NodePtr l = Compile(*a.kids[0]);
    NodePtr r = l ? Compile(*a.kids[1]) : nullptr;
    if (!r) return nullptr;
    const Type lt = l->type(), rt = r->type();
    const Node *in0 = l.get(), *in1 = r.get();
    const std::string& op = a.op;
    if (op == "&&" || op == "||") {
      for (const Node* n : {in0, in1}) {
        if (!Passes(kMaskBool, n->type())) {
          Fail(n->pos(), "'" + op + "' needs bool operands, got " + n->type().ToString());
          return nullptr;
        }
      }
      bool is_and = op == "&&";
      // false && x, true || x: decided by the left side alone.
      if (const Value* lv = l->constant();
          lv && lv->is_bool() && lv->as_bool() != is_and && options_.fold_constants) {
        return std::make_unique<ConstNode>(Value(!is_and), Type::Bool(), a.pos);
      }
      if (auto* chain = dynamic_cast<LogicNode*>(l.get()); chain && chain->is_and() == is_and) {
        chain->Append(std::move(r));  // `a && b && c`: one node (a chain is never constant)
        return l;
      }
      return Fold(std::make_unique<LogicNode>(is_and, std::move(l), std::move(r), a.pos),
                  {in0, in1});
    }
    static const std::pair<const char*, CmpOp> kCmp[] = {{"==", CmpOp::kEq}, {"!=", CmpOp::kNe},
                                                         {"<", CmpOp::kLt},  {"<=", CmpOp::kLe},
                                                         {">", CmpOp::kGt},  {">=", CmpOp::kGe}};
    for (const auto& [name, cmp] : kCmp) {
      if (op != name) continue;
      bool ok;
      if (Loose(lt) || Loose(rt)) {
        ok = cmp == CmpOp::kEq || cmp == CmpOp::kNe ||
             (Passes(kMaskNumber | kMaskString | kMaskTime, lt) &&
              Passes(kMaskNumber | kMaskString | kMaskTime, rt));
      } else if (lt.is_number() && rt.is_number()) {
        ok = true;
      } else if (cmp == CmpOp::kEq || cmp == CmpOp::kNe) {
        ok = lt.tag() == rt.tag();
      } else {
        ok = lt.tag() == rt.tag() && (lt.is(Type::Tag::kString) || lt.is(Type::Tag::kTime));
      }
      if (!ok) {
        Fail(a.pos, "cannot compare " + lt.ToString() + " with " + rt.ToString());
        return nullptr;
      }
      if (cmp == CmpOp::kEq || cmp == CmpOp::kNe) {
        const Value* lc = l->constant();
        const Value* rc = r->constant();
        if ((lc == nullptr) != (rc == nullptr) && (lc ? lc : rc)->is_null()) {
          NodePtr operand = lc ? std::move(r) : std::move(l);
          // Testing a record field for null does not read its value (the constant read nothing).
          if (dynamic_cast<const VarFieldNode*>(operand.get())) whole_field_reads_.pop_back();
          return std::make_unique<NullCheckNode>(std::move(operand), cmp == CmpOp::kEq, a.pos);
        }
      }
      return Fold(std::make_unique<CompareNode>(cmp, std::move(l), std::move(r), a.pos),
                  {in0, in1});
    }
    // Arithmetic.
    using T = Type::Tag;
    Type t;
    bool ok = true;
    char c = op[0];
    if (lt.is_number() && rt.is_number()) {
      t = lt.is(T::kInt) && rt.is(T::kInt) ? Type::Int() : Type::Double();
    } else if (c == '+' && (lt.is(T::kString) || rt.is(T::kString))) {
      t = Type::String();
    } else if (c == '+' && lt.is(T::kList) && rt.is(T::kList)) {
      t = Type::ListOf(Unify(lt.element(), rt.element()));
    } else if ((c == '+' || c == '-') && lt.is(T::kTime) && Passes(kMaskInt, rt) && !Loose(rt)) {
      t = Type::Time();
    } else if (c == '+' && lt.is(T::kInt) && rt.is(T::kTime)) {
      t = Type::Time();
    } else if (c == '-' && lt.is(T::kTime) && rt.is(T::kTime)) {
      t = Type::Int();
    } else if (Loose(lt) || Loose(rt)) {
      KindMask allowed = c == '+' ? kMaskAny : c == '-' ? (kMaskNumber | kMaskTime) : kMaskNumber;
      ok = Passes(allowed, lt) && Passes(allowed, rt);
      t = Type::Any();
    } else {
      ok = false;
    }
    if (!ok) {
      Fail(a.pos, "cannot apply '" + op + "' to " + lt.ToString() + " and " + rt.ToString());
      return nullptr;
    }
    return Fold(std::make_unique<ArithNode>(c, std::move(l), std::move(r), t, a.pos), {in0, in1});
  }

  NodePtr CompileCall(const Ast& a) {
    if (IsLambdaFunction(a.name)) return CompileLambdaCall(a);
    const Builtin* fn = FindBuiltin(a.name);
    if (!fn) {
      std::vector<std::string> names = FunctionNames();
      Fail(a.pos, "unknown function '" + a.name + "'" + DidYouMean(a.name, names));
      return nullptr;
    }
    int n = static_cast<int>(a.kids.size());
    if (n < fn->min_args || n > fn->max_args) {
      std::string expected = fn->min_args == fn->max_args ? std::to_string(fn->min_args)
                                                          : std::to_string(fn->min_args) + " to " +
                                                                std::to_string(fn->max_args);
      Fail(a.pos, std::string(fn->name) + " takes " + expected + " argument" +
                      (fn->max_args == 1 ? "" : "s") + ", got " + std::to_string(n) + ": " +
                      fn->signature);
      return nullptr;
    }
    std::vector<NodePtr> args;
    std::vector<Type> types;
    bool all_const = true;
    for (int i = 0; i < n; ++i) {
      if (a.kids[i]->kind == Ast::Kind::kLambda) {
        Fail(a.kids[i]->pos, "a lambda is only allowed in filter, map, any, all");
        return nullptr;
      }
      NodePtr arg = Compile(*a.kids[i]);
      if (!arg) return nullptr;
      if (!Passes(fn->params[i], arg->type())) {
        Fail(arg->pos(), "argument " + std::to_string(i + 1) + " of " + fn->name + " must be " +
                             MaskName(fn->params[i]) + ", got " + arg->type().ToString());
        return nullptr;
      }
      all_const = all_const && arg->constant();
      types.push_back(arg->type());
      args.push_back(std::move(arg));
    }
    std::unique_ptr<RE2> regex;
    std::optional<SimplePattern> simple;
    std::optional<UrlPattern> url_pattern;
    if (std::string_view(fn->name) == "url_match") {
      if (const Value* p = args[1]->constant(); p && p->is_string()) {
        url_pattern.emplace(p->as_string());
      }
    }
    if (std::string_view(fn->name).starts_with("regex_")) {
      if (const Value* p = args[1]->constant(); p && p->is_string()) {
        RE2::Options opts;
        opts.set_log_errors(false);
        regex = std::make_unique<RE2>(p->as_string(), opts);
        if (!regex->ok()) {
          Fail(args[1]->pos(), "invalid regex: " + regex->error());
          return nullptr;
        }
        simple = SimplePattern::Parse(p->as_string());
      }
    }
    NodePtr node = std::make_unique<CallNode>(fn, std::move(args), a.null_safe, std::move(regex),
                                              std::move(simple), std::move(url_pattern),
                                              fn->result(types), a.pos);
    if (all_const && fn->pure && options_.fold_constants) return FoldNow(std::move(node));
    return node;
  }

  NodePtr CompileLambdaCall(const Ast& a) {
    if (a.kids.size() != 2 || a.kids[1]->kind != Ast::Kind::kLambda) {
      Fail(a.pos, a.name + " takes a list and a lambda: " + a.name + "(list, x -> ...)");
      return nullptr;
    }
    NodePtr list = Compile(*a.kids[0]);
    if (!list) return nullptr;
    const Type lt = list->type();
    if (!Passes(kMaskList, lt)) {
      Fail(list->pos(), "argument 1 of " + a.name + " must be list, got " + lt.ToString());
      return nullptr;
    }
    const Ast& lambda = *a.kids[1];
    size_t slot = num_locals_++;
    scope_.push_back({lambda.name, slot, lt.element()});
    NodePtr body = Compile(*lambda.kids[0]);
    scope_.pop_back();
    if (!body) return nullptr;
    LambdaFn fn = a.name == "filter" ? LambdaFn::kFilter
                  : a.name == "map"  ? LambdaFn::kMap
                  : a.name == "any"  ? LambdaFn::kAny
                                     : LambdaFn::kAll;
    if (fn != LambdaFn::kMap && !Passes(kMaskBool, body->type())) {
      Fail(body->pos(),
           "the lambda of " + a.name + " must return bool, got " + body->type().ToString());
      return nullptr;
    }
    Type t = fn == LambdaFn::kFilter ? (lt.is_any() ? Type::ListOf(Type::Any()) : lt)
             : fn == LambdaFn::kMap  ? Type::ListOf(body->type())
                                     : Type::Bool();
    // Not folded even over a literal list: the body reads a local slot, so it never is constant.
    return std::make_unique<LambdaNode>(fn, std::move(list), slot, std::move(body), t, a.pos);
  }

  struct Local {
    std::string name;
    size_t slot;
    Type type;
  };

  std::string_view src_;
  const Schema& schema_;
  const CompileOptions& options_;
  Status error_;
  std::vector<Local> scope_;
  size_t num_locals_ = 0;
  std::vector<size_t> whole_reads_;
  std::vector<std::pair<size_t, size_t>> field_reads_;
  std::vector<std::pair<size_t, size_t>> whole_field_reads_;
  std::vector<Program::MemberRead> member_reads_;
};

}  // namespace

// ---- public API ---------------------------------------------------------------------------

size_t Schema::Add(std::string name, Type type) {
  if (!name.empty() && name[0] == '#') name.erase(0, 1);
  for (size_t i = 0; i < vars_.size(); ++i) {
    if (vars_[i].first == name) {
      vars_[i].second = std::move(type);
      return i;
    }
  }
  vars_.emplace_back(std::move(name), std::move(type));
  return vars_.size() - 1;
}

std::optional<size_t> Schema::Slot(std::string_view name) const {
  if (!name.empty() && name[0] == '#') name.remove_prefix(1);
  for (size_t i = 0; i < vars_.size(); ++i) {
    if (vars_[i].first == name) return i;
  }
  return std::nullopt;
}

void Env::Reset(const Schema& schema) {
  schema_ = &schema;
  values_.clear();
  values_.resize(schema.size());
  natives_.assign(schema.size(), nullptr);
  now_ms_.reset();
}

void Env::Clear() {
  for (Value& v : values_) v.Reset();
  for (const NativeRecord*& n : natives_) n = nullptr;
  now_ms_.reset();
}

Status Env::Set(std::string_view name, Value value) {
  auto slot = schema_->Slot(name);
  if (!slot) {
    return Status::Invalid("unknown_variable",
                           "no variable '#" + std::string(name) + "' in the schema");
  }
  values_[*slot] = std::move(value);
  return Status::Ok();
}

bool Program::is_constant() const { return root_ && root_->constant() != nullptr; }

namespace {

// Locals live on the stack for the usual one or two lambdas.
constexpr size_t kInlineLocals = 4;

template <typename F>
auto WithContext(const Program& p, const Env& env, size_t num_vars, size_t num_locals,
                 std::string_view source, F&& f) {
  EvalContext ctx;
  ctx.vars = env.values();
  ctx.natives = env.natives();
  ctx.now_ms = env.now_ms();
  ctx.source = source;
  const Value* inline_locals[kInlineLocals] = {};
  std::vector<const Value*> heap_locals;
  if (num_locals > kInlineLocals) {
    heap_locals.resize(num_locals);
    ctx.locals = heap_locals.data();
  } else {
    ctx.locals = inline_locals;
  }
  return f(ctx);
}

}  // namespace

namespace {
Status TooFewVariables() {
  return Status::Invalid("expression_error",
                         "the environment has fewer variables than the schema the expression "
                         "was compiled with");
}
}  // namespace

template <typename F>
bool Program::EvalWith(const Env& env, Value& scratch, Status* error, F&& use) const {
  if (env.size() < num_vars_) {
    *error = TooFewVariables();
    return false;
  }
  // `#var` alone (a group or coalesce key, a model input), or `#input.field`: read without an
  // evaluation context (neither can fail that way).
  if (root_var_ != SIZE_MAX) {
    const NativeRecord* native = env.natives()[root_var_];
    if (root_field_ == SIZE_MAX && !native) return use(env.Get(root_var_), scratch);
    if (root_field_ != SIZE_MAX && native) return use(native->Field(root_field_, scratch), scratch);
  }
  return WithContext(*this, env, num_vars_, num_locals_, source_, [&](EvalContext& ctx) {
    const Value& v = root_->Eval(ctx, scratch);
    if (ctx.failed) {
      *error = Status::Invalid("expression_error", std::move(ctx.error));
      return false;
    }
    return use(v, scratch);
  });
}

bool Program::EvalTo(const Env& env, Value& out, Status* error) const {
  Value scratch;
  return EvalWith(env, scratch, error, [&](const Value& v, Value& made) {
    if (&v == &made) {
      out = std::move(made);
    } else {
      out = v;  // a variable, a constant or a part of one: copied (a copy guards aliasing)
    }
    return true;
  });
}

const Value* Program::EvalRef(const Env& env, Value& scratch, Status* error) const {
  const Value* result = nullptr;
  const bool ok = EvalWith(env, scratch, error, [&](const Value& v, Value&) {
    result = &v;
    return true;
  });
  return ok ? result : nullptr;
}

bool Program::EvalBoolTo(const Env& env, bool& out, Status* error) const {
  Value scratch;
  return EvalWith(env, scratch, error, [&](const Value& v, Value&) {
    if (!v.is_null() && !v.is_bool()) {
      *error = Status::Invalid("expression_error", "expected a bool result, got " + TypeName(v));
      return false;
    }
    out = v.is_bool() && v.as_bool();
    return true;
  });
}

Result<Value> Program::Eval(const Env& env) const {
  Value out;
  Status error;
  if (!EvalTo(env, out, &error)) return error;
  return out;
}

Result<bool> Program::EvalBool(const Env& env) const {
  bool out = false;
  Status error;
  if (!EvalBoolTo(env, out, &error)) return error;
  return out;
}

Result<Program> Compile(std::string_view source, const Schema& schema,
                        const CompileOptions& options) {
  if (source.size() > options.max_source_length) {
    return Status::Invalid(
        "expression_error",
        "expression longer than " + std::to_string(options.max_source_length) + " bytes");
  }
  auto ast = Parse(source);
  if (!ast.ok()) return ast.status();
  Program program;
  program.source_ = std::string(source);
  // Errors quote columns of `source`; node positions index program.source_ identically.
  Compiler compiler(program.source_, schema, options);
  NodePtr root = compiler.Compile(**ast);
  if (!root) return compiler.error();
  if (options.expect && !Loose(root->type()) && !(root->type() == *options.expect) &&
      !(options.expect->is_any())) {
    bool both_maps = root->type().is(Type::Tag::kMap) && options.expect->is(Type::Tag::kMap);
    bool both_lists = root->type().is(Type::Tag::kList) && options.expect->is(Type::Tag::kList);
    if (!both_maps && !both_lists) {
      return Status::Invalid("expression_error", Where(source, 0) + ": expected a " +
                                                     options.expect->ToString() +
                                                     " expression, got " + root->type().ToString());
    }
  }
  program.result_type_ = root->type();
  if (const auto* var = dynamic_cast<const VarNode*>(root.get())) program.root_var_ = var->slot();
  if (const auto* field = dynamic_cast<const VarFieldNode*>(root.get())) {
    program.root_var_ = field->slot();
    program.root_field_ = field->index();
  }
  program.root_ = std::shared_ptr<const Node>(std::move(root));
  program.num_vars_ = schema.size();
  program.num_locals_ = compiler.num_locals();
  program.whole_reads_ = compiler.whole_reads();
  program.field_reads_ = compiler.field_reads();
  program.whole_field_reads_ = compiler.whole_field_reads();
  program.member_reads_ = compiler.member_reads();
  return program;
}

bool Program::ReadsField(size_t slot, size_t field) const {
  return std::find(whole_reads_.begin(), whole_reads_.end(), slot) != whole_reads_.end() ||
         std::find(field_reads_.begin(), field_reads_.end(), std::pair(slot, field)) !=
             field_reads_.end();
}

std::optional<std::vector<std::string>> Program::MembersRead(size_t slot, size_t field) const {
  if (std::find(whole_reads_.begin(), whole_reads_.end(), slot) != whole_reads_.end() ||
      std::find(whole_field_reads_.begin(), whole_field_reads_.end(), std::pair(slot, field)) !=
          whole_field_reads_.end()) {
    return std::nullopt;
  }
  std::vector<std::string> members;
  for (const MemberRead& read : member_reads_) {
    if (read.slot == slot && read.field == field) members.push_back(read.member);
  }
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  return members;
}

std::vector<std::string> FunctionNames() {
  std::vector<std::string> names;
  for (const Builtin& b : Builtins()) names.emplace_back(b.name);
  for (const char* n : {"filter", "map", "any", "all"}) names.emplace_back(n);
  return names;
}

}  // namespace streamrec::expr
