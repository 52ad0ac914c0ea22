#include "scenario/scenario.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/json.hpp>
#include <deque>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "common/string_hash.h"
#include "expr/expr.h"
#include "expr/json.h"
#include "scenario/input.h"

namespace streamrec::scenario {

using common::Result;
using common::Status;
using expr::Program;
using expr::Type;
using expr::Value;

namespace {

constexpr size_t kDrop = SIZE_MAX;
constexpr size_t kInputSlot = 0;  // `#input`, declared first
constexpr size_t kEndRoute = SIZE_MAX - 1;
constexpr size_t kMaxSteps = 256;
constexpr size_t kMaxWindowItems = 10'000;
constexpr size_t kMaxRecommendations = 1000;
constexpr const char* kMetricName = "streamrec_scenario_step_events_total";
constexpr const char* kKinds[] = {"in", "out", "errors", "dropped", "late"};

Type ScoredListType() {
  return Type::ListOf(Type::Record({{"item_id", Type::String()}, {"score", Type::Double()}}));
}

bool ValidName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  }
  return true;
}

bool ValidVariable(std::string_view name) {
  if (name.empty() || name.size() > 64 || std::isdigit(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

// node[key] that never throws: missing keys (and keys of non-maps) read as undefined. yaml-cpp's
// own lookup gives an invalid node whose type queries throw.
YAML::Node At(const YAML::Node& node, const char* key) {
  if (node.IsMap()) {
    YAML::Node value = node[key];
    if (value.IsDefined()) return value;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

int LineOf(const YAML::Node& node) {
  if (!node.IsDefined()) return 0;
  YAML::Mark mark = node.Mark();
  return mark.is_null() ? 0 : mark.line + 1;
}

// YAML scalars become JSON numbers and booleans when they read as such (sink configs).
boost::json::value YamlToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      boost::json::object object;
      for (const auto& kv : node) object[kv.first.Scalar()] = YamlToJson(kv.second);
      return object;
    }
    case YAML::NodeType::Sequence: {
      boost::json::array array;
      for (const auto& element : node) array.push_back(YamlToJson(element));
      return array;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (node.Tag() == "!") return boost::json::string(s);  // quoted
      if (s == "true") return true;
      if (s == "false") return false;
      int64_t i;
      if (YAML::convert<int64_t>::decode(node, i)) return i;
      double d;
      if (YAML::convert<double>::decode(node, d)) return d;
      return boost::json::string(s);
    }
    default:
      return nullptr;
  }
}

std::string RouteName(size_t route, const std::vector<std::string>& ids) {
  if (route == kDrop) return "drop";
  if (route == kEndRoute) return "end";
  return ids[route];
}

}  // namespace

const char* StepTypeName(StepType type) {
  switch (type) {
    case StepType::kSource:
      return "source";
    case StepType::kFilter:
      return "filter";
    case StepType::kSet:
      return "set";
    case StepType::kRecord:
      return "record";
    case StepType::kWindow:
      return "window";
    case StepType::kRecommend:
      return "recommend";
    case StepType::kRules:
      return "rules";
    case StepType::kSplit:
      return "split";
    case StepType::kSink:
      return "sink";
  }
  return "?";
}

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPassed:
      return "passed";
    case Outcome::kDropped:
      return "dropped";
    case Outcome::kLate:
      return "late";
    case Outcome::kError:
      return "error";
    case Outcome::kEnd:
      return "end";
    case Outcome::kDeferred:
      return "deferred";
  }
  return "?";
}

std::string ScenarioError::ToString() const {
  std::string out;
  if (!step.empty()) out += "step '" + step + "'";
  if (!field.empty()) out += (out.empty() ? "" : " ") + std::string("field '") + field + "'";
  out += (out.empty() ? "" : ": ") + message;
  if (line > 0) out += " (line " + std::to_string(line) + ")";
  return out;
}

// ---------------------------------------------------------------------------------------------
// Compiled form

struct Scenario::Step {
  std::string id;
  StepType type = StepType::kSource;
  int line = 0;
  size_t next = 0;
  std::string next_name;       // explicit `next:`, resolved after every step is read
  boost::json::object config;  // summary for GraphJson

  std::optional<Program> cond;                          // filter
  std::vector<std::pair<size_t, Program>> assigns;      // set
  std::vector<std::pair<std::string, Program>> fields;  // record
  size_t output_slot = SIZE_MAX;                        // record, window, recommend, rules

  WindowSpec window;  // window
  std::optional<Program> group_by, time;
  std::vector<std::pair<std::string, std::optional<Program>>> aggregates;  // nullopt: count all
  std::string fingerprint;

  std::string model, fallback;  // recommend
  size_t n = 10;
  std::optional<Program> in_user, in_tenant, in_items, in_times, in_session, in_exclude;

  std::string placement;  // rules
  std::optional<Program> candidates, context;

  struct Case {
    std::optional<Program> when;  // nullopt only in a scenario that failed to load
    std::string to_name;
    size_t to = kDrop;
  };
  std::vector<Case> cases;  // split
  std::string default_name = "drop";
  size_t default_to = kDrop;

  std::shared_ptr<Sink> sink;  // sink
  std::optional<Program> value;
};

struct Scenario::Compiled {
  expr::Schema schema;
  std::vector<Step> steps;  // [0] is the source
  std::vector<std::string> ids;
  bool uses_properties = false;
  bool uses_raw = false;                  // some expression reads `#input.raw`
  // The tracker fields read as `#input.raw.<field>`, sorted; nullopt once one reads it whole.
  std::optional<std::vector<std::string>> raw_fields = std::vector<std::string>();
  bool stores_lists = false;              // a `store` sink step
  size_t coalesce_from = SIZE_MAX;        // the `coalesce` step, if any
  std::optional<Program> coalesce_by;
  const ModelRegistry* models = nullptr;  // not owned; outlive the scenario
  const RulesHook* rules = nullptr;
};

Scenario::Scenario() = default;
Scenario::~Scenario() = default;
size_t Scenario::node_count() const { return compiled_->steps.size(); }
const std::string& Scenario::node_id(size_t node) const { return compiled_->steps[node].id; }
StepType Scenario::node_type(size_t node) const { return compiled_->steps[node].type; }
bool Scenario::reads_raw() const { return compiled_->uses_raw; }
const std::optional<std::vector<std::string>>& Scenario::raw_fields() const {
  return compiled_->raw_fields;
}
bool Scenario::stores_lists() const { return compiled_->stores_lists; }
std::pair<std::string, std::string> Scenario::coalesce() const {
  const Compiled& c = *compiled_;
  if (c.coalesce_from == SIZE_MAX || !c.coalesce_by) return {};
  return {c.steps[c.coalesce_from].id, c.coalesce_by->source()};
}
int64_t Scenario::warmup_ms() const {
  int64_t span = 0;
  for (const auto& step : compiled_->steps) {
    if (step.type != StepType::kWindow) continue;
    const WindowSpec& w = step.window;
    // A session has no fixed length: its items within the TTL, at most an hour, rebuild it.
    const int64_t extent =
        w.kind == WindowKind::kSession ? std::min<int64_t>(w.ttl_ms, 3'600'000) : w.size_ms;
    span = std::max(span, extent + w.allowed_lateness_ms);
  }
  return span;
}

// ---------------------------------------------------------------------------------------------
// Loading

namespace {

class Builder {
 public:
  using Step = Scenario::Step;

  Builder(const ModelRegistry* models, const SinkRegistry* sinks, const LoadOptions& options,
          std::vector<ScenarioError>* errors, Scenario::Compiled* out)
      : models_(models), sinks_(sinks), options_(options), errors_(errors), out_(out) {}

  void Error(const std::string& step, std::string field, std::string message,
             const YAML::Node& node) {
    errors_->push_back({step, std::move(field), std::move(message), LineOf(node)});
  }

  // Compiles the scalar at `node`; records an error and returns nullopt when it fails.
  std::optional<Program> Expr(Step& step, const std::string& field, const YAML::Node& node,
                              std::optional<Type> expect = std::nullopt) {
    if (!node.IsDefined() || node.IsNull()) {
      Error(step.id, field, "missing expression", node);
      return std::nullopt;
    }
    if (!node.IsScalar()) {
      Error(step.id, field, "expected an expression string", node);
      return std::nullopt;
    }
    auto program = expr::Compile(node.Scalar(), out_->schema, {.expect = expect});
    if (!program.ok()) {
      Error(step.id, field, program.status().message, node);
      return std::nullopt;
    }
    if (program->ReadsField(kInputSlot, kInputPropertiesField)) out_->uses_properties = true;
    if (program->ReadsField(kInputSlot, kInputRawField)) {
      out_->uses_raw = true;
      auto members = program->MembersRead(kInputSlot, kInputRawField);
      auto& fields = out_->raw_fields;
      if (!members) {
        fields.reset();
      } else if (fields) {
        std::vector<std::string> merged;
        std::set_union(fields->begin(), fields->end(), members->begin(), members->end(),
                       std::back_inserter(merged));
        *fields = std::move(merged);
      }
    }
    return std::move(program).value();
  }

  // Declares `#name` for the steps after this one.
  size_t Declare(Step& step, const std::string& field, const std::string& name, Type type,
                 const YAML::Node& node) {
    if (!ValidVariable(name) || name == "input") {
      Error(step.id, field, "invalid variable name '" + name + "'", node);
    }
    return out_->schema.Add(name, std::move(type));
  }

  void CheckKeys(Step& step, const YAML::Node& node, std::initializer_list<const char*> allowed) {
    for (const auto& kv : node) {
      const std::string& key = kv.first.Scalar();
      if (key == "id" || key == "type" || key == "next") continue;
      if (std::find_if(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; }) ==
          allowed.end()) {
        std::string list;
        for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        Error(step.id, key,
              "unknown key for a " + std::string(StepTypeName(step.type)) +
                  " step (allowed: id, type, next" + (list.empty() ? "" : ", ") + list + ")",
              kv.first);
      }
    }
  }

  std::string Output(Step& step, const YAML::Node& node) {
    const YAML::Node& output = At(node, "output");
    if (!output.IsDefined() || !output.IsScalar() || output.Scalar().empty()) {
      Error(step.id, "output", "missing output variable name", node);
      return {};
    }
    return output.Scalar();
  }

  bool Duration(Step& step, const YAML::Node& node, const char* key, int64_t* ms, bool required) {
    const YAML::Node& value = node[key];
    if (!value.IsDefined()) {
      if (required) Error(step.id, key, "missing duration", node);
      return !required;
    }
    if (!value.IsScalar() || !ParseDuration(value.Scalar(), ms) || *ms < 0) {
      Error(step.id, key,
            "invalid duration '" + (value.IsScalar() ? value.Scalar() : "") +
                "' (e.g. 500ms, 30s, 5m, 2h, 1d)",
            value);
      return false;
    }
    return true;
  }

  bool Count(Step& step, const YAML::Node& node, const char* key, size_t* out, size_t min,
             size_t max) {
    const YAML::Node& value = node[key];
    if (!value.IsDefined()) return true;
    int64_t n = 0;
    if (!value.IsScalar() || !YAML::convert<int64_t>::decode(value, n) ||
        n < static_cast<int64_t>(min) || n > static_cast<int64_t>(max)) {
      Error(step.id, key,
            "expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]",
            value);
      return false;
    }
    *out = static_cast<size_t>(n);
    return true;
  }

  void Source(Step& step, const YAML::Node& node) {
    step.type = StepType::kSource;
    step.line = LineOf(node);
    if (!node.IsDefined()) return;
    std::string type = node.IsScalar()                               ? node.Scalar()
                       : node.IsMap() && At(node, "type").IsScalar() ? At(node, "type").Scalar()
                                                                     : "";
    if (type != "events") {
      Error(step.id, "source.type", "unknown source '" + type + "' (known: events)", node);
    }
    step.config["type"] = "events";
  }

  void Filter(Step& step, const YAML::Node& node) {
    CheckKeys(step, node, {"expr"});
    step.cond = Expr(step, "expr", At(node, "expr"), Type::Bool());
    if (At(node, "expr").IsScalar()) step.config["expr"] = At(node, "expr").Scalar();
  }

  void Set(Step& step, const YAML::Node& node) {
    CheckKeys(step, node, {"vars"});
    const YAML::Node& vars = At(node, "vars");
    if (!vars.IsMap() || vars.size() == 0) {
      Error(step.id, "vars", "expected a mapping of variable: expression", node);
      return;
    }
    boost::json::object summary;
    for (const auto& kv : vars) {
      std::string name = kv.first.Scalar();
      auto program = Expr(step, "vars." + name, kv.second);
      Type type = program ? program->result_type() : Type::Any();
      size_t slot = Declare(step, "vars." + name, name, type, kv.first);
      if (program) step.assigns.emplace_back(slot, std::move(*program));
      if (kv.second.IsScalar()) summary[name] = kv.second.Scalar();
    }
    step.config["vars"] = std::move(summary);
  }

  void Record(Step& step, const YAML::Node& node) {
    CheckKeys(step, node, {"fields", "output"});
    std::string output = Output(step, node);
    const YAML::Node& fields = At(node, "fields");
    std::vector<std::pair<std::string, Type>> types;
    if (!fields.IsMap() || fields.size() == 0) {
      Error(step.id, "fields", "expected a mapping of field: expression", node);
    } else {
      for (const auto& kv : fields) {
        std::string name = kv.first.Scalar();
        auto program = Expr(step, "fields." + name, kv.second);
        types.emplace_back(name, program ? program->result_type() : Type::Any());
        if (program) step.fields.emplace_back(name, std::move(*program));
      }
    }
    if (!output.empty()) {
      step.output_slot = Declare(step, "output", output, Type::Record(std::move(types)), node);
      step.config["output"] = output;
    }
  }

  void Window(Step& step, const YAML::Node& node) {
    CheckKeys(step, node,
              {"kind", "size", "gap", "group_by", "time", "allowed_lateness", "max_items",
               "max_groups", "ttl", "aggregate", "output"});
    std::string output = Output(step, node);
    WindowSpec& spec = step.window;
    std::string kind = At(node, "kind").IsScalar() ? At(node, "kind").Scalar() : "sliding";
    if (kind == "sliding") {
      spec.kind = WindowKind::kSliding;
    } else if (kind == "tumbling") {
      spec.kind = WindowKind::kTumbling;
    } else if (kind == "session") {
      spec.kind = WindowKind::kSession;
    } else {
      Error(step.id, "kind",
            "unknown window kind '" + kind + "' (known: sliding, tumbling, session)",
            At(node, "kind"));
    }
    if (spec.kind == WindowKind::kSession) {
      Duration(step, node, "gap", &spec.gap_ms, true);
      if (At(node, "size").IsDefined()) Error(step.id, "size", "session windows take 'gap'", node);
    } else {
      if (Duration(step, node, "size", &spec.size_ms, true) && spec.size_ms <= 0) {
        Error(step.id, "size", "must be positive", At(node, "size"));
        spec.size_ms = 1;
      }
      if (At(node, "gap").IsDefined())
        Error(step.id, "gap", "only session windows take 'gap'", node);
    }
    if (spec.kind == WindowKind::kSession && spec.gap_ms <= 0) spec.gap_ms = 1;
    Duration(step, node, "allowed_lateness", &spec.allowed_lateness_ms, false);
    Duration(step, node, "ttl", &spec.ttl_ms, false);
    Count(step, node, "max_items", &spec.max_items, 1, kMaxWindowItems);
    Count(step, node, "max_groups", &spec.max_groups, 1, 100'000'000);

    step.group_by = Expr(step, "group_by", At(node, "group_by"));
    if (At(node, "time").IsDefined()) step.time = Expr(step, "time", At(node, "time"));
    if (step.time && !step.time->result_type().is_any() &&
        !step.time->result_type().is(Type::Tag::kTime) &&
        !step.time->result_type().is(Type::Tag::kInt)) {
      Error(step.id, "time",
            "must be a time or int (ms), got " + step.time->result_type().ToString(),
            At(node, "time"));
    }

    std::vector<std::pair<std::string, Type>> types;
    const YAML::Node& aggregate = At(node, "aggregate");
    boost::json::object summary;
    if (!aggregate.IsMap() || aggregate.size() == 0) {
      Error(step.id, "aggregate", "expected a mapping of name: {aggregator: expression}", node);
    } else {
      static const std::pair<const char*, AggregateKind> kAggregators[] = {
          {"list", AggregateKind::kList},   {"set", AggregateKind::kSet},
          {"count", AggregateKind::kCount}, {"sum", AggregateKind::kSum},
          {"min", AggregateKind::kMin},     {"max", AggregateKind::kMax},
          {"last", AggregateKind::kLast},   {"approx_distinct", AggregateKind::kApproxDistinct}};
      for (const auto& kv : aggregate) {
        std::string name = kv.first.Scalar();
        std::string field = "aggregate." + name;
        if (name == "key" || name == "start" || name == "end" || name == "size") {
          Error(step.id, field, "'" + name + "' is reserved for the window's own fields", kv.first);
        }
        if (!kv.second.IsMap() || kv.second.size() != 1) {
          Error(step.id, field, "expected one {aggregator: expression}, e.g. {list: \"#item\"}",
                kv.second);
          continue;
        }
        std::string agg = kv.second.begin()->first.Scalar();
        const YAML::Node& source = kv.second.begin()->second;
        const auto* found = std::find_if(std::begin(kAggregators), std::end(kAggregators),
                                         [&](const auto& a) { return agg == a.first; });
        if (found == std::end(kAggregators)) {
          Error(step.id, field,
                "unknown aggregator '" + agg +
                    "' (known: list, set, count, sum, min, max, last, "
                    "approx_distinct)",
                kv.second);
          continue;
        }
        spec.aggregates.push_back(found->second);
        spec.names.push_back(name);
        std::optional<Program> program;
        if (!(found->second == AggregateKind::kCount && source.IsScalar() &&
              source.Scalar() == "*")) {
          program = Expr(step, field + "." + agg, source);
        }
        Type element = program ? program->result_type() : Type::Any();
        Type type = element;
        switch (found->second) {
          case AggregateKind::kList:
          case AggregateKind::kSet:
            type = Type::ListOf(element);
            break;
          case AggregateKind::kCount:
          case AggregateKind::kApproxDistinct:
            type = Type::Int();
            break;
          case AggregateKind::kSum:
            type = element.is(Type::Tag::kInt) ? Type::Int()
                   : element.is_any()          ? Type::Any()
                                               : Type::Double();
            if (program && !element.is_any() && !element.is_number()) {
              Error(step.id, field + "." + agg, "sum needs numbers, got " + element.ToString(),
                    source);
            }
            break;
          default:
            break;
        }
        types.emplace_back(name, type);
        step.aggregates.emplace_back(name, std::move(program));
        summary[name] = agg + ": " + (source.IsScalar() ? source.Scalar() : "");
      }
    }
    types.emplace_back("key", Type::String());
    types.emplace_back("start", Type::Time());
    types.emplace_back("end", Type::Time());
    types.emplace_back("size", Type::Int());
    if (!output.empty()) {
      step.output_slot = Declare(step, "output", output, Type::Record(std::move(types)), node);
    }
    step.fingerprint = YAML::Dump(node);
    step.config["kind"] = kind;
    if (spec.kind == WindowKind::kSession) {
      step.config["gap_ms"] = spec.gap_ms;
    } else {
      step.config["size_ms"] = spec.size_ms;
    }
    if (At(node, "group_by").IsScalar()) step.config["group_by"] = At(node, "group_by").Scalar();
    step.config["allowed_lateness_ms"] = spec.allowed_lateness_ms;
    step.config["max_items"] = spec.max_items;
    step.config["max_groups"] = spec.max_groups;
    step.config["ttl_ms"] = spec.ttl_ms;
    step.config["aggregate"] = std::move(summary);
    step.config["output"] = output;
  }

  bool CheckModel(Step& step, const char* field, const std::string& model, const YAML::Node& at) {
    if (!models_) return true;
    auto names = models_->Names();
    if (std::find(names.begin(), names.end(), model) != names.end()) return true;
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    Error(step.id, field, "unknown model '" + model + "' (known: " + known + ")", at);
    return false;
  }

  void Recommend(Step& step, const YAML::Node& node) {
    CheckKeys(step, node, {"model", "fallback", "inputs", "n", "output"});
    std::string output = Output(step, node);
    if (!At(node, "model").IsScalar() || At(node, "model").Scalar().empty()) {
      Error(step.id, "model", "missing model name", node);
    } else {
      step.model = At(node, "model").Scalar();
      CheckModel(step, "model", step.model, At(node, "model"));
    }
    if (At(node, "fallback").IsDefined()) {
      step.fallback = At(node, "fallback").IsScalar() ? At(node, "fallback").Scalar() : "";
      CheckModel(step, "fallback", step.fallback, At(node, "fallback"));
    }
    Count(step, node, "n", &step.n, 1, kMaxRecommendations);
    const YAML::Node& inputs = At(node, "inputs");
    boost::json::object summary;
    if (inputs.IsDefined() && !inputs.IsMap()) {
      Error(step.id, "inputs", "expected a mapping", inputs);
    } else if (inputs.IsDefined()) {
      for (const auto& kv : inputs) {
        std::string key = kv.first.Scalar();
        std::optional<Program>* slot = key == "user"      ? &step.in_user
                                       : key == "tenant"  ? &step.in_tenant
                                       : key == "items"   ? &step.in_items
                                       : key == "times"   ? &step.in_times
                                       : key == "session" ? &step.in_session
                                       : key == "exclude" ? &step.in_exclude
                                                          : nullptr;
        if (!slot) {
          Error(step.id, "inputs." + key,
                "unknown input (known: user, tenant, items, times, session, exclude)", kv.first);
          continue;
        }
        *slot = Expr(step, "inputs." + key, kv.second);
        if (*slot && (key == "items" || key == "times" || key == "exclude")) {
          const Type& t = (*slot)->result_type();
          if (!t.is_any() && !t.is(Type::Tag::kList)) {
            Error(step.id, "inputs." + key, "must be a list, got " + t.ToString(), kv.second);
          }
        }
        if (kv.second.IsScalar()) summary[key] = kv.second.Scalar();
      }
    }
    if (!output.empty()) step.output_slot = Declare(step, "output", output, ScoredListType(), node);
    step.config["model"] = step.model;
    if (!step.fallback.empty()) step.config["fallback"] = step.fallback;
    step.config["n"] = step.n;
    step.config["inputs"] = std::move(summary);
    step.config["output"] = output;
  }

  void Rules(Step& step, const YAML::Node& node) {
    CheckKeys(step, node, {"placement", "input", "context", "output"});
    std::string output = Output(step, node);
    step.placement = At(node, "placement").IsScalar() ? At(node, "placement").Scalar() : "default";
    step.candidates = Expr(step, "input", At(node, "input"));
    if (At(node, "context").IsDefined()) step.context = Expr(step, "context", At(node, "context"));
    if (!output.empty()) step.output_slot = Declare(step, "output", output, ScoredListType(), node);
    step.config["placement"] = step.placement;
    step.config["output"] = output;
    step.config["hook"] = options_.rules ? "rules" : "pass-through";
  }

  void Split(Step& step, const YAML::Node& node) {
    CheckKeys(step, node, {"cases", "default"});
    if (At(node, "next").IsDefined())
      Error(step.id, "next", "a split routes with cases/default", node);
    const YAML::Node& cases = At(node, "cases");
    if (!cases.IsSequence() || cases.size() == 0) {
      Error(step.id, "cases", "expected a list of {when, to}", node);
    } else {
      for (size_t i = 0; i < cases.size(); ++i) {
        std::string field = "cases[" + std::to_string(i) + "]";
        const YAML::Node& c = cases[i];
        if (!c.IsMap()) {
          Error(step.id, field, "expected {when, to}", c);
          continue;
        }
        auto when = Expr(step, field + ".when", At(c, "when"), Type::Bool());
        std::string to = At(c, "to").IsScalar() ? At(c, "to").Scalar() : "";
        if (to.empty()) Error(step.id, field + ".to", "missing target step", c);
        step.cases.push_back({std::move(when), to, kDrop});
      }
    }
    if (At(node, "default").IsDefined()) {
      step.default_name = At(node, "default").IsScalar() ? At(node, "default").Scalar() : "";
    }
  }

  void SinkStep(Step& step, const YAML::Node& node) {
    CheckKeys(step, node, {"sink", "value"});
    const YAML::Node& sink = At(node, "sink");
    if (At(node, "value").IsDefined()) step.value = Expr(step, "value", At(node, "value"));
    // `type: null` reads as a YAML null: it names the null sink.
    if (!sink.IsMap() || !(At(sink, "type").IsScalar() || At(sink, "type").IsNull())) {
      Error(step.id, "sink", "expected {type: log|store|webhook|shopify|null, ...}", node);
      return;
    }
    std::string type = At(sink, "type").IsNull() ? "null" : At(sink, "type").Scalar();
    step.config["sink"] = type;
    if (type == "store") out_->stores_lists = true;
    if (!sinks_) {
      Error(step.id, "sink.type", "no sinks are available here", sink);
      return;
    }
    boost::json::object config = YamlToJson(sink).as_object();
    config.erase("type");
    auto created = sinks_->Create(type, config);
    if (!created.ok()) {
      const Status& s = created.status();
      Error(step.id, "sink." + (s.field.empty() ? std::string("type") : s.field), s.message, sink);
      return;
    }
    step.sink = std::move(created).value();
  }

  void Build(const YAML::Node& root) {
    if (!root.IsMap()) {
      Error("", "", "a scenario is a YAML mapping with name, version, source and steps", root);
      return;
    }
    for (const auto& kv : root) {
      const std::string& key = kv.first.Scalar();
      if (key != "name" && key != "version" && key != "description" && key != "source" &&
          key != "steps" && key != "coalesce") {
        Error("", key,
              "unknown key (allowed: name, version, description, source, steps, coalesce)",
              kv.first);
      }
    }
    out_->schema.Add("input", InputType());  // kInputSlot

    Step source;
    source.id = "source";
    const YAML::Node& steps = At(root, "steps");
    bool source_step = steps.IsSequence() && steps.size() > 0 && steps[0].IsMap() &&
                       At(steps[0], "type").IsScalar() && At(steps[0], "type").Scalar() == "source";
    if (source_step) {
      if (At(steps[0], "id").IsScalar()) source.id = At(steps[0], "id").Scalar();
      if (At(root, "source").IsDefined()) {
        Error(source.id, "source", "give the source either at the top or as the first step",
              At(root, "source"));
      }
      Source(source,
             At(steps[0], "source").IsDefined() ? At(steps[0], "source") : YAML::Node("events"));
    } else {
      Source(source, At(root, "source").IsDefined() ? At(root, "source") : YAML::Node("events"));
    }
    out_->steps.push_back(std::move(source));

    if (!steps.IsSequence() || steps.size() == 0) {
      Error("", "steps", "expected a non-empty list of steps", root);
      return;
    }
    if (steps.size() > kMaxSteps) {
      Error("", "steps", "more than " + std::to_string(kMaxSteps) + " steps", steps);
      return;
    }
    std::set<std::string> ids = {out_->steps[0].id};
    for (size_t i = source_step ? 1 : 0; i < steps.size(); ++i) {
      const YAML::Node& node = steps[i];
      Step step;
      step.line = LineOf(node);
      step.id = node.IsMap() && At(node, "id").IsScalar() ? At(node, "id").Scalar() : "";
      std::string label = step.id.empty() ? "#" + std::to_string(i + 1) : step.id;
      if (!node.IsMap()) {
        Error(label, "", "a step is a mapping with id and type", node);
        continue;
      }
      if (step.id.empty()) {
        Error(label, "id", "missing step id", node);
        step.id = label;
      } else if (!ValidName(step.id) || step.id == "drop" || step.id == "end") {
        Error(step.id, "id", "invalid id (letters, digits, '_' and '-'; not 'drop' or 'end')",
              At(node, "id"));
      } else if (!ids.insert(step.id).second) {
        Error(step.id, "id", "duplicate step id", At(node, "id"));
      }
      std::string type = At(node, "type").IsScalar() ? At(node, "type").Scalar() : "";
      if (At(node, "next").IsDefined())
        step.next_name = At(node, "next").IsScalar() ? At(node, "next").Scalar() : "?";
      if (type == "filter") {
        step.type = StepType::kFilter;
        Filter(step, node);
      } else if (type == "set") {
        step.type = StepType::kSet;
        Set(step, node);
      } else if (type == "record") {
        step.type = StepType::kRecord;
        Record(step, node);
      } else if (type == "window") {
        step.type = StepType::kWindow;
        Window(step, node);
      } else if (type == "recommend") {
        step.type = StepType::kRecommend;
        Recommend(step, node);
      } else if (type == "rules") {
        step.type = StepType::kRules;
        Rules(step, node);
      } else if (type == "split") {
        step.type = StepType::kSplit;
        Split(step, node);
      } else if (type == "sink") {
        step.type = StepType::kSink;
        SinkStep(step, node);
      } else if (type == "source") {
        Error(step.id, "type", "only the first step may be a source", At(node, "type"));
        continue;
      } else {
        Error(step.id, "type",
              type.empty() ? "missing step type"
                           : "unknown step type '" + type +
                                 "' (known: source, filter, set, record, window, recommend, "
                                 "rules, split, sink)",
              At(node, "type").IsDefined() ? At(node, "type") : node);
        continue;
      }
      out_->steps.push_back(std::move(step));
    }
    Resolve();
    if (At(root, "coalesce").IsDefined()) Coalesce(At(root, "coalesce"));
  }

  // `coalesce: {from: <step>, by: <expression>}`: of the events handed over together (a pipeline
  // step), only the latest of each `by` value runs from that step on. Windows must see every
  // event, so none may follow it.
  void Coalesce(const YAML::Node& node) {
    Step file_level;  // errors name no step
    if (!node.IsMap()) {
      Error("", "coalesce", "expected {from: <step id>, by: <expression>}", node);
      return;
    }
    for (const auto& kv : node) {
      const std::string& key = kv.first.Scalar();
      if (key != "from" && key != "by") {
        Error("", "coalesce." + key, "unknown key (allowed: from, by)", kv.first);
      }
    }
    const YAML::Node& from = At(node, "from");
    if (!from.IsScalar()) {
      Error("", "coalesce.from", "missing step id", node);
      return;
    }
    auto& steps = out_->steps;
    size_t at = SIZE_MAX;
    for (size_t i = 1; i < steps.size(); ++i) {
      if (steps[i].id == from.Scalar()) at = i;
    }
    if (at == SIZE_MAX) {
      Error("", "coalesce.from", "no step '" + from.Scalar() + "' (the source cannot coalesce)",
            from);
      return;
    }
    const std::vector<bool> after = Reachable(at);
    // A sink that an event can reach without passing `from` would write before the deferred
    // runs of earlier events, which could then overwrite it with an older list.
    const std::vector<bool> around = Reachable(0, at);
    for (size_t i = 0; i < steps.size(); ++i) {
      if (after[i] && steps[i].type == StepType::kWindow) {
        Error("", "coalesce.from",
              "window step '" + steps[i].id + "' follows '" + from.Scalar() +
                  "': a window must see every event",
              from);
        return;
      }
      if (around[i] && steps[i].type == StepType::kSink) {
        Error("", "coalesce.from",
              "sink step '" + steps[i].id + "' is reached without passing '" + from.Scalar() +
                  "': its output would come before that of the events deferred there",
              from);
        return;
      }
    }
    out_->coalesce_by = Expr(file_level, "coalesce.by", At(node, "by"));
    if (out_->coalesce_by) out_->coalesce_from = at;
  }

  // Where an event may go after `step`: its next step, or a split's cases and default (steps,
  // kDrop or kEndRoute).
  static std::vector<size_t> Routes(const Step& step) {
    std::vector<size_t> routes = {step.type == StepType::kSplit ? step.default_to : step.next};
    for (const auto& c : step.cases) routes.push_back(c.to);
    return routes;
  }

  // By step: whether an event at `start` can reach it without entering `avoid`.
  std::vector<bool> Reachable(size_t start, size_t avoid = SIZE_MAX) const {
    const auto& steps = out_->steps;
    std::vector<bool> seen(steps.size(), false);
    std::vector<size_t> todo = {start};
    while (!todo.empty()) {
      const size_t i = todo.back();
      todo.pop_back();
      if (i == kDrop || i == kEndRoute || i == avoid || seen[i]) continue;
      seen[i] = true;
      for (size_t t : Routes(steps[i])) todo.push_back(t);
    }
    return seen;
  }

  size_t Target(Step& step, const std::string& field, const std::string& name, size_t self) {
    if (name == "drop") return kDrop;
    if (name == "end") return kEndRoute;
    for (size_t i = 1; i < out_->steps.size(); ++i) {
      if (out_->steps[i].id == name) {
        if (i == self) Error(step.id, field, "a step cannot route to itself", YAML::Node());
        return i;
      }
    }
    Error(step.id, field, "no step '" + name + "' (targets: a step id, 'drop' or 'end')",
          YAML::Node());
    return kDrop;
  }

  void Resolve() {
    auto& steps = out_->steps;
    for (size_t i = 0; i < steps.size(); ++i) {
      Step& step = steps[i];
      step.next = i + 1 < steps.size() ? i + 1 : kEndRoute;
      if (!step.next_name.empty()) step.next = Target(step, "next", step.next_name, i);
      for (size_t c = 0; c < step.cases.size(); ++c) {
        step.cases[c].to =
            Target(step, "cases[" + std::to_string(c) + "].to", step.cases[c].to_name, i);
      }
      if (step.type == StepType::kSplit) {
        step.default_to = Target(step, "default", step.default_name, i);
      }
      out_->ids.push_back(step.id);
    }
    // Cycles: depth-first search over every route.
    std::vector<int> color(steps.size(), 0);  // 0 new, 1 on the stack, 2 done
    std::function<void(size_t)> visit = [&](size_t i) {
      color[i] = 1;
      for (size_t t : Routes(steps[i])) {
        if (t == kDrop || t == kEndRoute) continue;
        if (color[t] == 1) {
          Error(steps[i].id, "next", "routes back to '" + steps[t].id + "': a cycle", YAML::Node());
        } else if (color[t] == 0) {
          visit(t);
        }
      }
      color[i] = 2;
    };
    for (size_t i = 0; i < steps.size(); ++i) {
      if (color[i] == 0) visit(i);
    }
  }

 private:
  const ModelRegistry* models_;
  const SinkRegistry* sinks_;
  const LoadOptions& options_;
  std::vector<ScenarioError>* errors_;
  Scenario::Compiled* out_;
};

}  // namespace

std::shared_ptr<Scenario> Scenario::Build(std::string_view yaml, const ModelRegistry* models,
                                          const SinkRegistry* sinks, const LoadOptions& options,
                                          std::vector<ScenarioError>* errors) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    errors->push_back({"", "", "invalid YAML: " + e.msg, e.mark.is_null() ? 0 : e.mark.line + 1});
    return nullptr;
  }
  std::shared_ptr<Scenario> scenario(new Scenario());
  scenario->text_ = std::string(yaml);
  scenario->compiled_ = std::make_unique<Compiled>();
  scenario->compiled_->models = models;
  scenario->compiled_->rules = options.rules;
  try {
    if (root.IsMap()) {
      const YAML::Node& name = At(root, "name");
      if (!name.IsScalar() || !ValidName(name.Scalar())) {
        errors->push_back(
            {"", "name", "missing or invalid name (letters, digits, '_', '-')", LineOf(root)});
      } else {
        scenario->name_ = name.Scalar();
      }
      const YAML::Node& version = At(root, "version");
      if (version.IsDefined() &&
          (!version.IsScalar() || !YAML::convert<int64_t>::decode(version, scenario->version_) ||
           scenario->version_ < 0)) {
        errors->push_back({"", "version", "expected a non-negative integer", LineOf(version)});
      }
    }
    Builder(models, sinks, options, errors, scenario->compiled_.get()).Build(root);
  } catch (const YAML::Exception& e) {
    // Only malformed shapes that the checks above missed get here.
    errors->push_back(
        {"", "", "invalid scenario: " + e.msg, e.mark.is_null() ? 0 : e.mark.line + 1});
  }
  if (!errors->empty()) return nullptr;
  return scenario;
}

Result<std::shared_ptr<const Scenario>> Scenario::Load(std::string_view yaml,
                                                       const ModelRegistry* models,
                                                       const SinkRegistry* sinks,
                                                       const LoadOptions& options) {
  std::vector<ScenarioError> errors;
  auto scenario = Build(yaml, models, sinks, options, &errors);
  if (!scenario) {
    std::string message;
    for (const auto& e : errors) message += (message.empty() ? "" : "\n") + e.ToString();
    Status status = Status::Invalid("invalid_scenario", message);
    if (errors.size() == 1) status.field = errors[0].field;
    return status;
  }
  return std::shared_ptr<const Scenario>(std::move(scenario));
}

std::vector<ScenarioError> Scenario::Validate(std::string_view yaml, const ModelRegistry* models,
                                              const SinkRegistry* sinks,
                                              const LoadOptions& options) {
  std::vector<ScenarioError> errors;
  Build(yaml, models, sinks, options, &errors);
  return errors;
}

// ---------------------------------------------------------------------------------------------
// Running

namespace {
constexpr size_t kIn = 0, kOut = 1, kErrors = 2, kDropped = 3, kLate = 4;

size_t OutcomeCounter(Outcome outcome) {
  switch (outcome) {
    case Outcome::kDropped:
      return kDropped;
    case Outcome::kLate:
      return kLate;
    case Outcome::kError:
      return kErrors;
    case Outcome::kPassed:
    case Outcome::kEnd:
    case Outcome::kDeferred:  // not counted until it runs
      break;
  }
  return kOut;
}
}  // namespace

// Per-step outcome counts. Each thread that runs the runner adds to its own block, with a plain
// load and store: a locked add per step and event was a quarter of the step loop's own time.
// Readers sum the blocks (at most one per thread).
struct Runner::StepCounters {
  static constexpr size_t kKindCount = 5;  // kKinds order
  // `in` is not counted: every step that takes an event ends it with exactly one outcome, so it
  // is their sum.
  class Block {
   public:
    explicit Block(size_t nodes)
        : owner_(std::this_thread::get_id()),
          lines_(std::make_unique<Line[]>((nodes * kKindCount + Line::kCounts - 1) /
                                          Line::kCounts)) {}
    void Inc(size_t node, size_t kind) {
      // One writer (the owner thread): no read-modify-write needed.
      std::atomic<uint64_t>& count = At(node * kKindCount + kind);
      count.store(count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    uint64_t Get(size_t node, size_t kind) const {
      return At(node * kKindCount + kind).load(std::memory_order_relaxed);
    }
    std::thread::id owner() const { return owner_; }

   private:
    // Whole cache lines, so that two threads' blocks share none.
    struct alignas(64) Line {
      static constexpr size_t kCounts = 8;
      std::atomic<uint64_t> counts[kCounts] = {};
    };
    std::atomic<uint64_t>& At(size_t i) const {
      return lines_[i / Line::kCounts].counts[i % Line::kCounts];
    }
    std::thread::id owner_;
    std::unique_ptr<Line[]> lines_;
  };

  explicit StepCounters(size_t nodes) : nodes_(nodes), id_(NextId()) {}

  //! This thread's block, made on its first count.
  Block& ForThisThread() {
    // Keyed by id_, never reused: a block cached for a runner that is gone never matches. Two
    // entries: a hot reload runs two versions side by side for a while.
    struct Cached {
      uint64_t id = 0;
      Block* block = nullptr;
    };
    thread_local Cached cache[2];
    if (cache[0].id == id_) return *cache[0].block;
    if (cache[1].id == id_) {
      std::swap(cache[0], cache[1]);
      return *cache[0].block;
    }
    cache[1] = cache[0];
    cache[0] = {id_, &Find()};
    return *cache[0].block;
  }
  void Inc(size_t node, size_t kind) { ForThisThread().Inc(node, kind); }

  uint64_t Count(size_t node, size_t kind) const {
    std::lock_guard lock(mu_);
    uint64_t total = 0;
    for (const Block& block : blocks_) {
      if (kind != kIn) {
        total += block.Get(node, kind);
        continue;
      }
      for (size_t k = 0; k < kKindCount; ++k) {
        if (k != kIn) total += block.Get(node, k);
      }
    }
    return total;
  }

 private:
  static uint64_t NextId() {
    static std::atomic<uint64_t> last{0};
    return last.fetch_add(1, std::memory_order_relaxed) + 1;
  }
  // A block stays until the runner goes (its counts are part of the totals): one per thread
  // that ever ran this version, pipeline workers and the few threads of the HTTP API.
  Block& Find() {
    std::lock_guard lock(mu_);
    for (Block& block : blocks_) {
      if (block.owner() == std::this_thread::get_id()) return block;
    }
    return blocks_.emplace_back(nodes_);
  }

  const size_t nodes_;
  const uint64_t id_;
  mutable std::mutex mu_;
  std::deque<Block> blocks_;  // stable addresses
};

Runner::Runner(std::shared_ptr<const Scenario> scenario, common::Registry* metrics,
               const Runner* carry_from)
    : scenario_(std::move(scenario)) {
  const auto& steps = scenario_->compiled_->steps;
  counters_ = std::make_unique<StepCounters>(steps.size());
  windows_.resize(steps.size());
  for (size_t i = 0; i < steps.size(); ++i) {
    if (metrics) {
      for (size_t k = 0; k < 5; ++k) {
        common::Counter& metric = metrics->GetCounter(
            kMetricName, "Events through each scenario step, by outcome",
            {{"scenario", scenario_->name()}, {"step", steps[i].id}, {"kind", kKinds[k]}});
        live_metrics_.push_back({&metric, i, k});
      }
    }
    if (steps[i].type != StepType::kWindow) continue;
    if (steps[i].output_slot != SIZE_MAX) {
      window_outputs_.emplace_back(i, steps[i].output_slot);
      const Scenario::Compiled& c = *scenario_->compiled_;
      if (steps[i].next == c.coalesce_from && c.coalesce_by &&
          c.coalesce_by->source() == steps[i].group_by->source()) {
        coalesce_window_ = i;
      }
    }
    if (carry_from) {
      const auto& old_steps = carry_from->scenario_->compiled_->steps;
      for (size_t j = 0; j < old_steps.size(); ++j) {
        if (old_steps[j].type == StepType::kWindow && old_steps[j].id == steps[i].id &&
            old_steps[j].fingerprint == steps[i].fingerprint) {
          windows_[i] = carry_from->windows_[j];
        }
      }
    }
    if (!windows_[i]) windows_[i] = std::make_shared<WindowState>(steps[i].window);
  }
  // Last, when nothing else can fail: from here the counters read counters_ until ~Runner (a
  // constructor that throws runs no destructor, so a failure here undoes what it added).
  try {
    for (const LiveMetric& live : live_metrics_) {
      live.metric->AddLive(this, [counters = counters_.get(), node = live.node, kind = live.kind] {
        return counters->Count(node, kind);
      });
    }
  } catch (...) {
    for (const LiveMetric& live : live_metrics_) live.metric->RetireLive(this);
    throw;
  }
}

Runner::~Runner() {
  for (const LiveMetric& live : live_metrics_) live.metric->RetireLive(this);
}

namespace {

// `v` as a key, without a copy when it is a string; `buffer` holds other kinds' text.
std::string_view KeyView(const Value& v, std::string* buffer) {
  if (v.is_string()) return v.as_string();
  *buffer = expr::ToText(v);
  return *buffer;
}

const expr::Schema& NoVariables() {
  static const expr::Schema kNone;
  return kNone;
}

// A step's failure: which field, and the evaluator's message.
std::string FieldError(std::string_view field, const Status& status) {
  return "field '" + std::string(field) + "': " + status.message;
}

}  // namespace

// What Run reuses from one event to the next on a thread, so that a steady stream of events
// allocates as little as possible: the variables, the window inputs and records, the model
// inputs.
struct Runner::RunScratch {
  expr::Env env{NoVariables()};
  std::vector<Value> window_inputs;
  std::vector<Value> window_records;  // by node: last event's window record, refilled in place
  // By node: last event's recommend / rules output, likewise. Kept between events (item ids and
  // scores only, like the window records) so that the next event can refill it.
  std::vector<Value> scored_lists;
  std::vector<Value> sink_values;
  ModelInputs model_inputs;
  RawFieldsParser raw_parser;  // `#input.raw`'s JSON, parsed once per event
  bool in_use = false;  // Run on this thread is already using it (a sink that runs a scenario)

  // By node: window records of deferred runs that are done (run or dropped), for the window
  // step to refill when last event's record is still held (by the run deferred with it). About
  // as many as a pipeline step defers (one per user of the step), so that a step allocates none.
  std::vector<std::vector<Value>> spare_records;
  static constexpr size_t kMaxSpareRecords = 256;

  Value* ScoredList(size_t node) {
    if (scored_lists.size() <= node) scored_lists.resize(node + 1);
    return &scored_lists[node];
  }
  //! By node: a sink step's last value, for its expression to refill (fields null between
  //! events).
  Value& SinkValue(size_t node) {
    if (sink_values.size() <= node) sink_values.resize(node + 1);
    return sink_values[node];
  }
  //! Last event's record of window step `node` when nobody else holds it, else a spare one (or
  //! null: the window step then makes one).
  Value& WindowRecord(size_t node) {
    if (window_records.size() <= node) window_records.resize(node + 1);
    return window_records[node];
  }
  Value TakeWindowRecord(size_t node) {
    Value record = std::move(WindowRecord(node));
    if (record.UniqueMap() || spare_records.size() <= node || spare_records[node].empty()) {
      return record;
    }
    record = std::move(spare_records[node].back());
    spare_records[node].pop_back();
    return record;
  }
  void KeepSpareRecord(size_t node, Value record) {
    if (spare_records.size() <= node) spare_records.resize(node + 1);
    if (record.UniqueMap() && spare_records[node].size() < kMaxSpareRecords) {
      spare_records[node].push_back(std::move(record));
    }
  }
  static RunScratch& ForThisThread() {
    thread_local RunScratch scratch;
    return scratch;
  }
};

struct DeferredRuns::Run {
  size_t from = 0;  // the `coalesce` step
  const events::Event* event = nullptr;
  RunOptions options;  // defer unset
  std::string key;
  std::vector<Value> vars;  // by slot, as the env had them at `from`; null once run or dropped
  uint64_t window_version = 0;  // of its Runner::coalesce_window_ output (WindowOutput::version)
};

StepTrace Runner::Run(const events::Event& event, const RunOptions& options) const {
  return Run(event, options, 0, nullptr);
}

template <typename Take>
void Runner::KeepSpareRecords(Take&& take, RunScratch& scratch) const {
  for (const auto& [node, slot] : window_outputs_) scratch.KeepSpareRecord(node, take(slot));
}

StepTrace Runner::Run(const events::Event& event, const RunOptions& options, size_t node,
                      std::vector<Value>* saved) const {
  RunScratch& thread_scratch = RunScratch::ForThisThread();
  if (thread_scratch.in_use) {
    RunScratch own;
    return Run(event, options, node, saved, own);
  }
  thread_scratch.in_use = true;
  StepTrace trace = Run(event, options, node, saved, thread_scratch);
  thread_scratch.in_use = false;
  return trace;
}

StepTrace Runner::Run(const events::Event& event, const RunOptions& options, size_t node,
                      std::vector<Value>* saved, RunScratch& scratch) const {
  const Scenario::Compiled& c = *scenario_->compiled_;
  StepTrace trace;
  expr::Env& env = scratch.env;
  // Every run ends with env.Clear() (below), which leaves what Reset would: only another
  // scenario's schema needs one.
  if (!env.BoundTo(c.schema)) env.Reset(c.schema);
  // `#input`: only the fields that expressions read are made (the whole record for traces).
  EventInput input(event, options.raw, c.uses_raw, c.uses_properties, scratch.raw_parser);
  // Drops this event's values when done (whatever the exit): they must not outlive the event
  // on a thread that goes idle, and what becomes unique again is reused by the next event.
  struct Release {
    expr::Env& env;
    ~Release() { env.Clear(); }
  } release{env};
  // A deferred run's variables: its storage and the env's (all null) trade places, before
  // `#input` is bound (from its event) over what the run kept in that slot. They have this
  // scenario's size: DeferredRuns::Keep took them from an env bound to the same schema.
  if (saved) env.SwapValues(*saved);
  if (options.trace) {
    // The source step shows the whole record.
    env.Set(kInputSlot, input.ToValue());
  } else {
    env.SetNative(kInputSlot, &input);
  }
  env.set_now_ms(event.timestamp_ms);

  Status status;  // of the evaluation that failed
  // From coalesce_window_, for the coalesce step right after it: the version of its output for
  // this event, and the run kept for the key (found there, not looked up again).
  uint64_t coalesce_window_version = 0;
  DeferredRuns::Run* coalesce_kept = nullptr;
  bool coalesce_looked_up = false;  // coalesce_kept is the lookup's answer (null: none kept)
  StepCounters::Block* counts = nullptr;  // this thread's, found on the first count
  while (true) {
    const Scenario::Step& step = c.steps[node];
    bool key_failed = false;  // the `coalesce` key: the step's error, as any expression's
    if (node == c.coalesce_from && options.defer && !options.raw &&
        options.defer->Accepts(*this)) {
      // The rest waits for the caller; a null key runs on now (such events share no key).
      Value made;
      const Value* key = c.coalesce_by->EvalRef(env, made, &status);
      if (!key) {
        key_failed = true;
      } else if (!key->is_null()) {
        std::string buffer;
        const bool replaced = options.defer->Keep(*this, node, event, options,
                                                  KeyView(*key, &buffer), env,
                                                  coalesce_window_version, coalesce_kept,
                                                  coalesce_looked_up);
        if (replaced) {
          // The env now holds the replaced run's variables: its window records are spares.
          KeepSpareRecords([&env](size_t slot) { return env.Take(slot); }, scratch);
        }
        trace.outcome = Outcome::kDeferred;
        trace.last_step = step.id;
        break;
      }
    }
    ++trace.steps_run;
    Outcome outcome = Outcome::kPassed;
    Value output;
    std::string error;
    size_t next = step.next;

    auto fail = [&](std::string_view field, const Status& status) {
      outcome = Outcome::kError;
      error = FieldError(field, status);
    };
    // The step's result into its output variable (and the trace: a copy only when traced).
    auto set_output = [&](Value value) {
      if (options.trace) output = value;
      env.Set(step.output_slot, std::move(value));
    };

    if (key_failed) fail("coalesce.by", status);
    else switch (step.type) {
      case StepType::kSource:
        if (options.trace) output = env.Get(0);
        break;
      case StepType::kFilter: {
        bool keep = false;
        if (!step.cond->EvalBoolTo(env, keep, &status)) {
          fail("expr", status);
        } else {
          if (options.trace) output = keep;
          if (!keep) outcome = Outcome::kDropped;
        }
        break;
      }
      case StepType::kSet: {
        expr::Map traced;
        for (const auto& [slot, program] : step.assigns) {
          Value v;
          if (!program.EvalTo(env, v, &status)) {
            fail("vars." + c.schema.name(slot), status);
            break;
          }
          if (options.trace) traced.push_back({c.schema.name(slot), v});
          env.Set(slot, std::move(v));
        }
        if (options.trace) output = Value(std::move(traced));
        break;
      }
      case StepType::kRecord: {
        expr::Map record;
        record.reserve(step.fields.size());
        for (const auto& [name, program] : step.fields) {
          Value v;
          if (!program.EvalTo(env, v, &status)) {
            fail("fields." + name, status);
            break;
          }
          record.push_back({name, std::move(v)});
        }
        if (outcome == Outcome::kError) break;
        set_output(Value(std::move(record)));
        break;
      }
      case StepType::kWindow: {
        Value made_key;  // a key read in place (a variable) until the window has it
        const Value* key = step.group_by->EvalRef(env, made_key, &status);
        if (!key) {
          fail("group_by", status);
          break;
        }
        if (key->is_null()) {
          outcome = Outcome::kDropped;
          break;
        }
        int64_t time_ms = event.timestamp_ms;
        if (step.time) {
          Value made_time;
          const Value* t = step.time->EvalRef(env, made_time, &status);
          if (!t) {
            fail("time", status);
            break;
          }
          if (t->is_time()) {
            time_ms = t->as_time().ms;
          } else if (t->is_int()) {
            time_ms = t->as_int();
          } else {
            fail("time", Status::Invalid("expression_error", std::string("expected a time, got ") +
                                                                 expr::KindName(t->kind())));
            break;
          }
        }
        std::vector<Value>& inputs = scratch.window_inputs;
        inputs.clear();
        for (const auto& [name, program] : step.aggregates) {
          if (!program) {
            inputs.emplace_back(true);
            continue;
          }
          if (!program->EvalTo(env, inputs.emplace_back(), &status)) {
            fail("aggregate." + name, status);
            break;
          }
        }
        if (outcome == Outcome::kError) break;
        WindowOutput window;
        std::string key_buffer;
        const std::string_view key_text = KeyView(*key, &key_buffer);
        // The window right before the `coalesce` step, grouped by its key: this event's run
        // will replace the run kept for that key, whose window record is updated for this one
        // (what left the window dropped, the new item appended) instead of made again.
        DeferredRuns::Run* kept = nullptr;
        const bool look_up = node == coalesce_window_ && options.defer && !options.raw &&
                             options.defer->Accepts(*this);
        if (look_up) kept = options.defer->Kept(event.tenant, key_text);
        DeferredRuns::Run* replaced = kept && kept->window_version != 0 ? kept : nullptr;
        uint64_t previous = 0;
        if (replaced) {
          previous = replaced->window_version;
          window.record = std::exchange(replaced->vars[step.output_slot], Value());
          // Last event's record may be the same one (that user's previous event): let it go.
          Value& last = scratch.WindowRecord(node);
          if (last.is_map() && window.record.is_map() &&
              &last.as_map() == &window.record.as_map()) {
            last.Reset();
          }
        } else {
          window.record = scratch.TakeWindowRecord(node);
        }
        bool added = windows_[node]->Add(key_text, time_ms, inputs, &window, previous);
        inputs.clear();  // moved from
        if (added) {
          if (options.trace) output = window.record;
          if (step.output_slot != SIZE_MAX) env.Set(step.output_slot, window.record);
          if (node == coalesce_window_) {
            coalesce_window_version = window.version;
            coalesce_kept = kept;
            coalesce_looked_up = look_up;
          }
        } else {
          outcome = Outcome::kLate;
          if (replaced) {
            // Late: no replacement comes; the kept run keeps its record.
            replaced->vars[step.output_slot] = std::move(window.record);
            break;
          }
        }
        scratch.WindowRecord(node) = std::move(window.record);
        break;
      }
      case StepType::kRecommend: {
        // Reused: assigning keeps the strings' and vectors' capacity.
        ModelInputs& inputs = scratch.model_inputs;
        inputs.now_ms = event.timestamp_ms;
        inputs.tenant = event.tenant;
        inputs.user = event.user_id;
        inputs.session_id = event.session_id;
        inputs.exclude.clear();
        // Read in place (variables, mostly): made_* hold what an expression made.
        static const Value kNone;
        Value made_items, made_times, made_exclude;
        const Value* items = &kNone;
        const Value* times = &kNone;
        const Value* exclude = &kNone;
        auto value = [&](const std::optional<Program>& p, const char* field, Value& made,
                         const Value** out) {
          if (!p) return true;
          if ((*out = p->EvalRef(env, made, &status))) return true;
          fail(std::string("inputs.") + field, status);
          return false;
        };
        auto text = [&](const std::optional<Program>& p, const char* field, std::string* out) {
          Value made;
          const Value* v = &kNone;
          if (!p) return true;
          if (!value(p, field, made, &v)) return false;
          if (v->is_null()) {
            out->clear();
          } else {
            std::string buffer;
            *out = KeyView(*v, &buffer);
          }
          return true;
        };
        if (!text(step.in_user, "user", &inputs.user) ||
            !text(step.in_tenant, "tenant", &inputs.tenant) ||
            !text(step.in_session, "session", &inputs.session_id) ||
            !value(step.in_items, "items", made_items, &items) ||
            !value(step.in_times, "times", made_times, &times) ||
            !value(step.in_exclude, "exclude", made_exclude, &exclude)) {
          break;
        }
        size_t used = 0;  // of inputs.items, whose strings are reused
        if (items->is_list()) {
          const expr::List* ts = times->is_list() ? &times->as_list() : nullptr;
          const auto& list = items->as_list();
          for (size_t i = 0; i < list.size(); ++i) {
            if (list[i].is_null()) continue;
            int64_t t = event.timestamp_ms;
            if (ts && i < ts->size()) {
              if ((*ts)[i].is_time())
                t = (*ts)[i].as_time().ms;
              else if ((*ts)[i].is_int())
                t = (*ts)[i].as_int();
            }
            if (used == inputs.items.size()) inputs.items.emplace_back();
            std::string buffer;
            inputs.items[used].item_id = KeyView(list[i], &buffer);
            inputs.items[used].timestamp_ms = t;
            ++used;
          }
        }
        inputs.items.resize(used);
        if (exclude->is_list()) {
          for (const auto& v : exclude->as_list()) {
            std::string buffer;
            if (!v.is_null()) inputs.exclude.emplace_back(KeyView(v, &buffer));
          }
        }
        if (!c.models) {
          fail("model", Status::Internal("no model registry was given to the scenario"));
          break;
        }
        Result<std::vector<models::ScoredItem>> recs =
            c.models->Recommend(step.model, inputs, step.n);
        if (!recs.ok()) {
          fail("model", recs.status());
          break;
        }
        if (!step.fallback.empty() && recs->size() < step.n) {
          for (const auto& r : *recs) inputs.exclude.push_back(r.item_id);
          auto more = c.models->Recommend(step.fallback, inputs, step.n - recs->size());
          if (!more.ok()) {
            fail("fallback", more.status());
            break;
          }
          for (auto& r : *more) recs->push_back(std::move(r));
        }
        set_output(ScoredItemsToValue(*recs, scratch.ScoredList(node)));
        break;
      }
      case StepType::kRules: {
        Value candidates;
        if (!step.candidates->EvalTo(env, candidates, &status)) {
          fail("input", status);
          break;
        }
        if (!c.rules) {
          set_output(std::move(candidates));
          break;
        }
        auto items = ScoredItemsFromValue(candidates);
        if (!items.ok()) {
          fail("input", items.status());
          break;
        }
        Value context;
        if (step.context && !step.context->EvalTo(env, context, &status)) {
          fail("context", status);
          break;
        }
        auto ruled = c.rules->Apply(event.tenant, step.placement, *items, context);
        if (!ruled.ok()) {
          fail("rules", ruled.status());
          break;
        }
        set_output(ScoredItemsToValue(*ruled, scratch.ScoredList(node)));
        break;
      }
      case StepType::kSplit: {
        next = step.default_to;
        for (size_t i = 0; i < step.cases.size(); ++i) {
          bool match = false;
          if (!step.cases[i].when->EvalBoolTo(env, match, &status)) {
            fail("cases[" + std::to_string(i) + "].when", status);
            break;
          }
          if (match) {
            next = step.cases[i].to;
            break;
          }
        }
        if (options.trace) output = Value(RouteName(next, c.ids));
        break;
      }
      case StepType::kSink: {
        // Last event's value (a record), refilled when the expression makes one like it. Its
        // fields let go of what they hold once the step is done, whatever the outcome (this
        // event's values must not outlive it; model and window lists are reused when unshared).
        Value& made = scratch.SinkValue(node);
        struct ReleaseFields {
          Value& made;
          ~ReleaseFields() {
            if (expr::Map* fields = made.UniqueMap()) {
              for (expr::MapEntry& field : *fields) field.value.Reset();
            } else {
              made.Reset();
            }
          }
        } release_fields{made};
        const Value* value = &made;
        if (step.value) {
          value = step.value->EvalRef(env, made, &status);
          if (!value) {
            fail("value", status);
            break;
          }
        } else {
          expr::Map vars;
          for (size_t slot = 1; slot < env.size(); ++slot) {
            if (!env.Get(slot).is_null()) vars.push_back({c.schema.name(slot), env.Get(slot)});
          }
          made = Value(std::move(vars));
        }
        Status s = step.sink->Emit(SinkRecord{scenario_->name(), step.id, event, *value});
        if (!s.ok()) {
          fail("sink", s);
          break;
        }
        ++trace.sinks;
        if (options.trace) output = *value;
        break;
      }
    }

    if (outcome == Outcome::kPassed) {
      if (next == kDrop) {
        outcome = Outcome::kDropped;
      } else if (next == kEndRoute) {
        outcome = Outcome::kEnd;
      }
    }
    if (options.count) {
      if (!counts) counts = &counters_->ForThisThread();
      counts->Inc(node, OutcomeCounter(outcome));
    }
    if (options.trace) {
      trace.entries.push_back({step.id, step.type, outcome, std::move(output), std::move(error)});
    } else if (outcome == Outcome::kError) {
      trace.entries.push_back({step.id, step.type, outcome, Value(), std::move(error)});
    }
    if (outcome != Outcome::kPassed) {
      trace.outcome = outcome;
      trace.last_step = step.id;  // once per event, not per step
      break;
    }
    node = next;
  }
  if (saved) {
    // A deferred run's window records are not the ones the window steps refill next: spares.
    KeepSpareRecords([&env](size_t slot) { return env.Take(slot); }, scratch);
  }
  return trace;
}

struct DeferredRuns::Index {
  using Keys = boost::unordered_flat_map<std::string, size_t, common::StringHash, std::equal_to<>>;
  // Key -> position in runs_, by tenant (shops never share a key); most see one tenant.
  std::vector<std::pair<std::string, Keys>> tenants;

  Keys& For(std::string_view tenant) {
    for (auto& [name, keys] : tenants) {
      if (name == tenant) return keys;
    }
    return tenants.emplace_back(std::string(tenant), Keys()).second;
  }
  void Clear() {
    if (tenants.size() > 16) {
      tenants.clear();  // bounded: a batch of many shops does not leave its tables behind
      return;
    }
    for (auto& tenant : tenants) tenant.second.clear();
  }
};

DeferredRuns::DeferredRuns() : index_(std::make_unique<Index>()) {}
DeferredRuns::~DeferredRuns() { Drop(); }

const std::string& DeferredRuns::key(size_t i) const { return runs_[i].key; }
const events::Event& DeferredRuns::event(size_t i) const { return *runs_[i].event; }

DeferredRuns::Run* DeferredRuns::Kept(std::string_view tenant, std::string_view key) {
  if (used_ == 0) return nullptr;
  Index::Keys& keys = index_->For(tenant);
  auto found = keys.find(key);
  return found == keys.end() ? nullptr : &runs_[found->second];
}

bool DeferredRuns::Keep(const Runner& runner, size_t from, const events::Event& event,
                        const RunOptions& options, std::string_view key, expr::Env& env,
                        uint64_t window_version, Run* known, bool looked_up) {
  // `key` may be a variable's text: read before the variables are swapped out (the end).
  runner_ = &runner;
  Run* run = known;
  if (!run) {
    Index::Keys& keys = index_->For(event.tenant);
    if (!looked_up) {
      if (auto found = keys.find(key); found != keys.end()) run = &runs_[found->second];
    }
    if (!run) {
      if (used_ == runs_.size()) runs_.emplace_back();  // first: the index never names a gap
      keys.emplace(std::string(key), used_);
      run = &runs_[used_++];
      run->key.assign(key);
      return KeepRun(*run, runner, from, event, options, env, window_version, false);
    }
  }
  return KeepRun(*run, runner, from, event, options, env, window_version, true);
}

bool DeferredRuns::KeepRun(Run& run, const Runner& runner, size_t from,
                           const events::Event& event, const RunOptions& options, expr::Env& env,
                           uint64_t window_version, bool replaced) {
  if (replaced && run.options.count) runner.counters_->Inc(from, kDropped);
  run.from = from;
  run.event = &event;
  run.options = options;
  run.options.defer = nullptr;
  run.window_version = window_version;
  if (run.vars.size() != env.size()) {
    run.vars.clear();  // another scenario's variables (the storage of an earlier runner's run)
    run.vars.resize(env.size());
  }
  env.SwapValues(run.vars);  // the env gets the replaced run's variables, or nulls
  return replaced;
}

void DeferredRuns::RunAll(const std::function<void(const events::Event&)>& before) {
  for (size_t i = 0; i < used_; ++i) {
    Run& run = runs_[i];
    if (before) before(*run.event);
    runner_->Run(*run.event, run.options, run.from, &run.vars);
  }
  used_ = 0;
  index_->Clear();
}

void DeferredRuns::Drop() {
  if (used_ == 0) return;
  Runner::RunScratch& scratch = Runner::RunScratch::ForThisThread();
  for (size_t i = 0; i < used_; ++i) {
    Run& run = runs_[i];
    if (run.options.count) runner_->counters_->Inc(run.from, kDropped);
    runner_->KeepSpareRecords(
        [&run](size_t slot) {
          return slot < run.vars.size() ? std::exchange(run.vars[slot], Value()) : Value();
        },
        scratch);
    for (Value& v : run.vars) v.Reset();
  }
  used_ = 0;
  index_->Clear();
}

std::vector<StepCounts> Runner::Counts() const {
  std::vector<StepCounts> counts(scenario_->node_count());
  for (size_t i = 0; i < counts.size(); ++i) {
    const StepCounters& n = *counters_;
    counts[i] = {n.Count(i, kIn), n.Count(i, kOut), n.Count(i, kErrors), n.Count(i, kDropped),
                 n.Count(i, kLate)};
  }
  return counts;
}

StepCounts Runner::Counts(std::string_view node_id) const {
  for (size_t i = 0; i < scenario_->node_count(); ++i) {
    if (scenario_->node_id(i) == node_id) return Counts()[i];
  }
  return {};
}

std::string Runner::GraphJson() const {
  const Scenario::Compiled& c = *scenario_->compiled_;
  boost::json::object graph;
  graph["name"] = scenario_->name();
  graph["version"] = scenario_->version();
  if (auto [from, by] = scenario_->coalesce(); !from.empty()) {
    graph["coalesce"] = {{"from", from}, {"by", by}};
  }
  boost::json::array nodes, edges;
  auto counts = Counts();
  auto edge = [&](size_t from, size_t to, std::string label) {
    if (to == kDrop || to == kEndRoute) return;
    boost::json::object e;
    e["from"] = c.steps[from].id;
    e["to"] = c.steps[to].id;
    if (!label.empty()) e["label"] = label;
    edges.push_back(std::move(e));
  };
  for (size_t i = 0; i < c.steps.size(); ++i) {
    const Scenario::Step& step = c.steps[i];
    boost::json::object n;
    n["id"] = step.id;
    n["type"] = StepTypeName(step.type);
    boost::json::object config = step.config;
    if (step.type == StepType::kSplit) {
      boost::json::array cases;
      for (const auto& cs : step.cases) {
        cases.push_back({{"when", cs.when->source()}, {"to", RouteName(cs.to, c.ids)}});
      }
      config["cases"] = std::move(cases);
      config["default"] = RouteName(step.default_to, c.ids);
    } else if (!step.next_name.empty()) {
      config["next"] = step.next_name;
    }
    n["config"] = std::move(config);
    n["counts"] = {{"in", counts[i].in},
                   {"out", counts[i].out},
                   {"errors", counts[i].errors},
                   {"dropped", counts[i].dropped},
                   {"late", counts[i].late}};
    if (windows_[i]) {
      n["state"] = {{"groups", windows_[i]->groups()},
                    {"items", windows_[i]->items()},
                    {"evicted_groups", windows_[i]->evicted_groups()}};
    }
    nodes.push_back(std::move(n));
    if (step.type == StepType::kSplit) {
      for (const auto& cs : step.cases) edge(i, cs.to, cs.when->source());
      edge(i, step.default_to, "default");
    } else {
      edge(i, step.next, "");
    }
  }
  graph["nodes"] = std::move(nodes);
  graph["edges"] = std::move(edges);
  return boost::json::serialize(graph);
}

}  // namespace streamrec::scenario
