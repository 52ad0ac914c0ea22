#include "registry/manifest.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cstdio>
#include <sstream>

namespace streamrec::registry {
namespace {

namespace json = boost::json;
using common::Result;
using common::Status;

constexpr std::string_view kTypeNames[] = {"covis",       "vsknn",  "sknn", "sasrec",
                                           "torchscript", "slirec", "blend"};
constexpr std::string_view kStageNames[] = {"candidate", "production", "archived"};

// Boost.JSON writes 0.5 as "5E-1"; manifests are read by people, so numbers are printed as %.10g.
void Write(std::ostream& out, const json::value& v, int indent, bool pretty) {
  const std::string pad = pretty ? std::string(indent + 2, ' ') : "";
  const char* nl = pretty ? "\n" : "";
  switch (v.kind()) {
    case json::kind::double_: {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.10g", v.get_double());
      std::string text = buf;
      // Keep it a double when read back (1.0 stays 1.0, not the integer 1).
      if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
      out << text;
      return;
    }
    case json::kind::object: {
      const auto& o = v.get_object();
      if (o.empty()) {
        out << "{}";
        return;
      }
      out << "{" << nl;
      bool first = true;
      for (const auto& [k, child] : o) {
        out << (first    ? ""
                : pretty ? ",\n"
                         : ",")
            << pad << json::serialize(json::string(k)) << (pretty ? ": " : ":");
        Write(out, child, indent + 2, pretty);
        first = false;
      }
      out << nl << (pretty ? std::string(indent, ' ') : "") << "}";
      return;
    }
    case json::kind::array: {
      const auto& a = v.get_array();
      // Arrays of scalars stay on one line; arrays of objects get a line each.
      bool flat = !pretty || std::none_of(a.begin(), a.end(), [](const json::value& e) {
        return e.is_object() || e.is_array();
      });
      out << "[" << (flat ? "" : "\n");
      for (size_t i = 0; i < a.size(); ++i) {
        if (!flat) out << pad;
        Write(out, a[i], indent + 2, false);
        if (i + 1 < a.size()) out << (flat ? "," : ",\n");
      }
      if (!flat) out << "\n" << std::string(indent, ' ');
      out << "]";
      return;
    }
    default:
      out << json::serialize(v);
  }
}

void Pretty(std::ostream& out, const json::value& v, int indent) { Write(out, v, indent, true); }

std::string Compact(const json::value& v) {
  std::ostringstream out;
  Write(out, v, 0, false);
  return out.str();
}

json::array FieldsToJson(const std::vector<Field>& fields) {
  json::array out;
  for (const auto& f : fields) out.push_back(json::object{{"name", f.name}, {"type", f.type}});
  return out;
}

Result<std::vector<Field>> FieldsFromJson(const json::value& v, const std::string& what) {
  if (!v.is_array()) return Status::Invalid("invalid_signature", what + " must be an array", what);
  std::vector<Field> out;
  for (size_t i = 0; i < v.get_array().size(); ++i) {
    const auto& e = v.get_array()[i];
    const std::string at = what + "[" + std::to_string(i) + "]";
    const auto* o = e.if_object();
    const json::value* name = o ? o->if_contains("name") : nullptr;
    const json::value* type = o ? o->if_contains("type") : nullptr;
    if (!name || !name->is_string() || !type || !type->is_string() || name->get_string().empty()) {
      return Status::Invalid("invalid_signature",
                             at + " must be {\"name\": string, \"type\": string}", at);
    }
    out.push_back({std::string(name->get_string()), std::string(type->get_string())});
  }
  return out;
}

Result<json::value> Parse(std::string_view text, const std::string& field) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return Status::Invalid("invalid_json", field + ": " + ec.message(), field);
  return v;
}

// Typed getters that name the missing or mistyped field.
Status GetString(const json::object& o, const char* key, std::string* out, bool required = true) {
  const auto* v = o.if_contains(key);
  if (!v) {
    return required ? Status::Invalid("missing_field", std::string(key) + " is required", key)
                    : Status::Ok();
  }
  if (!v->is_string())
    return Status::Invalid("invalid_field", std::string(key) + " must be a string", key);
  *out = std::string(v->get_string());
  return Status::Ok();
}

template <typename Int>
Status GetInt(const json::object& o, const char* key, Int* out, bool required = true) {
  const auto* v = o.if_contains(key);
  if (!v) {
    return required ? Status::Invalid("missing_field", std::string(key) + " is required", key)
                    : Status::Ok();
  }
  if (v->is_int64()) {
    *out = static_cast<Int>(v->get_int64());
  } else if (v->is_uint64()) {
    *out = static_cast<Int>(v->get_uint64());
  } else {
    return Status::Invalid("invalid_field", std::string(key) + " must be an integer", key);
  }
  return Status::Ok();
}

#define SR_RETURN_IF_ERROR(expr)                 \
  do {                                           \
    if (Status s_ = (expr); !s_.ok()) return s_; \
  } while (0)

}  // namespace

std::string_view ModelTypeName(ModelType type) { return kTypeNames[static_cast<int>(type)]; }
Result<ModelType> ParseModelType(std::string_view name) {
  for (size_t i = 0; i < std::size(kTypeNames); ++i) {
    if (kTypeNames[i] == name) return static_cast<ModelType>(i);
  }
  return Status::Invalid(
      "invalid_type",
      "type must be covis|vsknn|sknn|sasrec|slirec|torchscript|blend, got " + std::string(name),
      "type");
}
std::string_view StageName(Stage stage) { return kStageNames[static_cast<int>(stage)]; }
Result<Stage> ParseStage(std::string_view name) {
  for (size_t i = 0; i < std::size(kStageNames); ++i) {
    if (kStageNames[i] == name) return static_cast<Stage>(i);
  }
  return Status::Invalid("invalid_stage",
                         "stage must be candidate|production|archived, got " + std::string(name),
                         "stage");
}

std::vector<Field> DefaultInputs() {
  return {{"user_id", "string"}, {"items", "list<string>"}, {"timestamps", "list<int64>"}};
}
std::vector<Field> DefaultOutputs() {
  return {{"items", "list<string>"}, {"scores", "list<float>"}};
}

Result<std::vector<Field>> ParseFields(std::string_view text) {
  auto v = Parse(text, "signature");
  if (!v.ok()) return v.status();
  return FieldsFromJson(*v, "signature");
}

Result<std::string> CompactJson(std::string_view text) {
  auto v = Parse(text, "json");
  if (!v.ok()) return v.status();
  return Compact(*v);
}

std::string ManifestToJson(const Manifest& m) {
  json::object o;
  o["name"] = m.name;
  o["version"] = m.version;
  o["type"] = std::string(ModelTypeName(m.type));
  o["stage"] = std::string(StageName(m.stage));
  o["created_ms"] = m.created_ms;
  o["signature"] =
      json::object{{"inputs", FieldsToJson(m.inputs)}, {"outputs", FieldsToJson(m.outputs)}};
  json::array artifacts;
  for (const auto& a : m.artifacts) artifacts.push_back(json::string(a));
  o["artifacts"] = std::move(artifacts);
  o["vocabulary"] = m.vocabulary;
  o["training_data"] = json::object{{"path", m.training_data.path},
                                    {"sha256", m.training_data.sha256},
                                    {"sequences", m.training_data.sequences},
                                    {"events", m.training_data.events},
                                    {"items", m.training_data.items}};
  boost::system::error_code ec;
  // Both were validated on the way in (Register); an unparsable one is kept as a string.
  json::value metrics = json::parse(m.metrics_json, ec);
  o["metrics"] = ec ? json::value(json::string(m.metrics_json)) : metrics;
  json::value options = json::parse(m.options_json, ec);
  o["training_options"] = ec ? json::value(json::string(m.options_json)) : options;
  json::array history;
  for (const auto& h : m.history) {
    history.push_back(
        json::object{{"from", h.from}, {"to", h.to}, {"at_ms", h.at_ms}, {"reason", h.reason}});
  }
  o["history"] = std::move(history);
  std::ostringstream out;
  Pretty(out, o, 0);
  out << "\n";
  return out.str();
}

Result<Manifest> ManifestFromJson(std::string_view text) {
  auto parsed = Parse(text, "manifest");
  if (!parsed.ok()) return parsed.status();
  const auto* o = parsed->if_object();
  if (!o) return Status::Invalid("invalid_manifest", "manifest must be a JSON object");
  Manifest m;
  SR_RETURN_IF_ERROR(GetString(*o, "name", &m.name));
  SR_RETURN_IF_ERROR(GetInt(*o, "version", &m.version));
  std::string type, stage;
  SR_RETURN_IF_ERROR(GetString(*o, "type", &type));
  auto t = ParseModelType(type);
  if (!t.ok()) return t.status();
  m.type = *t;
  SR_RETURN_IF_ERROR(GetString(*o, "stage", &stage));
  auto st = ParseStage(stage);
  if (!st.ok()) return st.status();
  m.stage = *st;
  SR_RETURN_IF_ERROR(GetInt(*o, "created_ms", &m.created_ms, false));
  if (const auto* sig = o->if_contains("signature"); sig && sig->is_object()) {
    if (const auto* in = sig->get_object().if_contains("inputs")) {
      auto f = FieldsFromJson(*in, "signature.inputs");
      if (!f.ok()) return f.status();
      m.inputs = std::move(*f);
    }
    if (const auto* out = sig->get_object().if_contains("outputs")) {
      auto f = FieldsFromJson(*out, "signature.outputs");
      if (!f.ok()) return f.status();
      m.outputs = std::move(*f);
    }
  }
  if (const auto* a = o->if_contains("artifacts"); a && a->is_array()) {
    for (const auto& e : a->get_array()) {
      if (!e.is_string())
        return Status::Invalid("invalid_field", "artifacts must be strings", "artifacts");
      m.artifacts.emplace_back(e.get_string());
    }
  }
  SR_RETURN_IF_ERROR(GetString(*o, "vocabulary", &m.vocabulary, false));
  if (const auto* td = o->if_contains("training_data"); td && td->is_object()) {
    const auto& d = td->get_object();
    SR_RETURN_IF_ERROR(GetString(d, "path", &m.training_data.path, false));
    SR_RETURN_IF_ERROR(GetString(d, "sha256", &m.training_data.sha256, false));
    SR_RETURN_IF_ERROR(GetInt(d, "sequences", &m.training_data.sequences, false));
    SR_RETURN_IF_ERROR(GetInt(d, "events", &m.training_data.events, false));
    SR_RETURN_IF_ERROR(GetInt(d, "items", &m.training_data.items, false));
  }
  if (const auto* v = o->if_contains("metrics")) m.metrics_json = Compact(*v);
  if (const auto* v = o->if_contains("training_options")) m.options_json = Compact(*v);
  if (const auto* h = o->if_contains("history"); h && h->is_array()) {
    for (const auto& e : h->get_array()) {
      if (!e.is_object())
        return Status::Invalid("invalid_field", "history entries must be objects", "history");
      StageChange c;
      SR_RETURN_IF_ERROR(GetString(e.get_object(), "from", &c.from, false));
      SR_RETURN_IF_ERROR(GetString(e.get_object(), "to", &c.to));
      SR_RETURN_IF_ERROR(GetInt(e.get_object(), "at_ms", &c.at_ms, false));
      SR_RETURN_IF_ERROR(GetString(e.get_object(), "reason", &c.reason, false));
      m.history.push_back(std::move(c));
    }
  }
  return m;
}

}  // namespace streamrec::registry
