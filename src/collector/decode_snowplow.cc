// Snowplow tracker protocol v2 -> canonical events. Field names follow
// https://docs.snowplow.io/docs/sources/trackers/snowplow-tracker-protocol/ .
#include <simdjson.h>

#include <algorithm>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/encoding_opts.hpp>
#include <boost/url/parse_query.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "collector/decode.h"
#include "collector/json_util.h"
#include "collector/mapping.h"

namespace streamrec::collector {

namespace {

using common::Code;
using common::Result;
using common::Status;
using events::BadRow;
using events::DecodeOutput;
using events::Event;
using events::EventType;

constexpr std::string_view kPayloadDataPrefix =
    "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-";
constexpr std::string_view kUnstructEventPrefix =
    "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/";
constexpr std::string_view kEcommerceActionPrefix =
    "iglu:com.snowplowanalytics.snowplow.ecommerce/snowplow_ecommerce_action/jsonschema/1-0-";
constexpr std::string_view kProductEntityPrefix =
    "iglu:com.snowplowanalytics.snowplow.ecommerce/product/jsonschema/1-";
constexpr std::string_view kLegacyAddToCartPrefix =
    "iglu:com.snowplowanalytics.snowplow/add_to_cart/jsonschema/";
constexpr std::string_view kLegacyRemoveFromCartPrefix =
    "iglu:com.snowplowanalytics.snowplow/remove_from_cart/jsonschema/";

// The tracker-protocol fields the mapping reads, as views into the request. An empty value
// counts as absent: trackers send "" for unset fields.
struct TrackerFields {
  std::string_view e, eid, aid, uid, duid, nuid, tnuid, sid, dtm, stm, ttm, url;
  std::string_view ue_pr, ue_px, co, cx;
  std::string_view tr_id, tr_tt, ti_id, ti_sk, ti_pr, ti_qu;
  std::string_view se_ca, se_ac, se_la, se_pr, se_va;
  std::string_view non_string_field;  //!< first known field whose JSON value was not a string
};

struct FieldSlot {
  std::string_view name;
  std::string_view TrackerFields::*member;
};

constexpr FieldSlot kFieldSlots[] = {
    {"e", &TrackerFields::e},         {"eid", &TrackerFields::eid},
    {"aid", &TrackerFields::aid},     {"uid", &TrackerFields::uid},
    {"duid", &TrackerFields::duid},   {"nuid", &TrackerFields::nuid},
    {"tnuid", &TrackerFields::tnuid}, {"sid", &TrackerFields::sid},
    {"dtm", &TrackerFields::dtm},     {"stm", &TrackerFields::stm},
    {"ttm", &TrackerFields::ttm},     {"url", &TrackerFields::url},
    {"ue_pr", &TrackerFields::ue_pr}, {"ue_px", &TrackerFields::ue_px},
    {"co", &TrackerFields::co},       {"cx", &TrackerFields::cx},
    {"tr_id", &TrackerFields::tr_id}, {"tr_tt", &TrackerFields::tr_tt},
    {"ti_id", &TrackerFields::ti_id}, {"ti_sk", &TrackerFields::ti_sk},
    {"ti_pr", &TrackerFields::ti_pr}, {"ti_qu", &TrackerFields::ti_qu},
    {"se_ca", &TrackerFields::se_ca}, {"se_ac", &TrackerFields::se_ac},
    {"se_la", &TrackerFields::se_la}, {"se_pr", &TrackerFields::se_pr},
    {"se_va", &TrackerFields::se_va},
};

std::string_view* FindSlot(TrackerFields& fields, std::string_view name) {
  for (const FieldSlot& slot : kFieldSlots) {
    if (slot.name == name) return &(fields.*slot.member);
  }
  return nullptr;
}

bool IsPayloadDataSchema(std::string_view schema) {
  return schema.size() == kPayloadDataPrefix.size() + 1 && schema.starts_with(kPayloadDataPrefix) &&
         schema.back() >= '0' && schema.back() <= '4';
}

// Compact JSON object of the non-empty (name, value) pairs.
std::string PropertiesJson(
    std::initializer_list<std::pair<std::string_view, std::string_view>> kv) {
  boost::json::object object;
  for (const auto& [name, value] : kv) {
    if (!value.empty()) object[name] = value;
  }
  return object.empty() ? std::string() : boost::json::serialize(object);
}

std::string_view StringAt(simdjson::dom::object object, std::string_view key) {
  std::string_view value;
  return object[key].get_string().get(value) ? std::string_view() : value;
}

// Maps one event's fields to an Event; reuses its inner parser across the events of a request.
class TrackerMapper {
 public:
  explicit TrackerMapper(const MappingOptions& options)
      : options_(options), url_pattern_(options.item_url_pattern) {}

  //! Fills *event, or returns why the event is rejected (payload left to the caller).
  std::optional<BadRow> Map(const TrackerFields& fields, int64_t now_ms, Event* event);

 private:
  std::optional<BadRow> ParseEmbedded(std::string_view json, std::string_view json_field,
                                      std::string_view base64, std::string_view base64_field,
                                      simdjson::dom::element* out);
  std::optional<BadRow> ProductFromContexts(const TrackerFields& fields, std::string* item);
  std::optional<BadRow> MapSelfDescribing(const TrackerFields& fields,
                                          const std::string& product_item, Event* event);
  std::string ItemFromData(simdjson::dom::object data, std::string_view first_field) const;

  BadRow Reject(std::string_view reason, std::string_view field, std::string message) const {
    return BadRow{std::string(reason), std::string(field), std::move(message), {}, tenant_};
  }

  const MappingOptions& options_;
  UrlPattern url_pattern_;
  // Separate from the request's parser: parsing here must not invalidate the outer document.
  simdjson::dom::parser inner_parser_;
  std::string scratch_;  //!< embedded JSON, with room for simdjson's padding
  std::string tenant_;   //!< of the event being mapped, for rejections
};

std::optional<BadRow> TrackerMapper::Map(const TrackerFields& f, int64_t now_ms, Event* event) {
  tenant_ = f.aid.empty() ? options_.default_tenant : std::string(f.aid);
  if (!f.non_string_field.empty()) {
    return Reject("invalid_field", f.non_string_field, "tracker protocol values must be strings");
  }
  if (f.eid.empty()) return Reject("missing_field", "eid", "event id (eid) is required");
  if (!TenantAllowed(options_, tenant_)) {
    return Reject("tenant_not_allowed", "aid",
                  "tenant '" + tenant_.substr(0, 64) + "' is not allowed");
  }
  if (f.e.empty()) return Reject("missing_field", "e", "event type (e) is required");

  std::string_view user = !f.uid.empty()    ? f.uid
                          : !f.duid.empty() ? f.duid
                          : !f.nuid.empty() ? f.nuid
                                            : f.tnuid;
  if (user.empty()) return Reject("missing_field", "duid", "no user id: send uid, duid or nuid");

  int64_t timestamp_ms = now_ms;
  for (auto [name, text] : {std::pair{"ttm", f.ttm}, {"dtm", f.dtm}, {"stm", f.stm}}) {
    if (text.empty()) continue;
    std::optional<int64_t> parsed = ParseMillis(text);
    if (!parsed) {
      return Reject("invalid_field", name,
                    std::string(name) + " is not a millisecond timestamp: '" +
                        std::string(text.substr(0, 64)) + "'");
    }
    timestamp_ms = *parsed;
    break;
  }

  std::string product_item;
  if (auto bad = ProductFromContexts(f, &product_item)) return bad;

  event->event_id = f.eid;
  event->tenant = tenant_;
  event->user_id = user;
  event->timestamp_ms = timestamp_ms;
  event->collector_ms = now_ms;
  event->session_id = f.sid;

  if (f.e == "pv") {
    event->type = EventType::kView;
    event->item_id = url_pattern_.Match(f.url).value_or("");
  } else if (f.e == "ue") {
    if (auto bad = MapSelfDescribing(f, product_item, event)) return bad;
  } else if (f.e == "tr") {
    event->type = EventType::kPurchase;
    event->properties = PropertiesJson({{"tr_id", f.tr_id}, {"tr_tt", f.tr_tt}});
  } else if (f.e == "ti") {
    event->type = EventType::kPurchase;
    event->item_id = f.ti_sk;
    event->properties = PropertiesJson(
        {{"ti_id", f.ti_id}, {"ti_sk", f.ti_sk}, {"ti_pr", f.ti_pr}, {"ti_qu", f.ti_qu}});
  } else if (f.e == "se") {
    event->type = events::ParseEventType(f.se_ac).value_or(EventType::kOther);
    event->item_id = !f.se_la.empty() ? f.se_la : f.se_pr;
    event->properties = PropertiesJson({{"se_ca", f.se_ca},
                                        {"se_ac", f.se_ac},
                                        {"se_la", f.se_la},
                                        {"se_pr", f.se_pr},
                                        {"se_va", f.se_va}});
  } else {
    event->type = EventType::kOther;
    if (!f.url.empty()) event->item_id = url_pattern_.Match(f.url).value_or("");
  }
  return std::nullopt;
}

std::optional<BadRow> TrackerMapper::ParseEmbedded(std::string_view json,
                                                   std::string_view json_field,
                                                   std::string_view base64,
                                                   std::string_view base64_field,
                                                   simdjson::dom::element* out) {
  std::string_view field = json_field;
  if (!json.empty()) {
    scratch_.assign(json);
  } else {
    field = base64_field;
    if (!DecodeBase64(base64, &scratch_)) {
      return Reject("invalid_base64", field, std::string(field) + " is not valid base64");
    }
  }
  scratch_.reserve(scratch_.size() + simdjson::SIMDJSON_PADDING);  // parse() then won't copy
  if (auto error = inner_parser_.parse(scratch_).get(*out); error) {
    return Reject("invalid_json", field,
                  std::string(field) + " is not valid JSON: " + JsonError(error));
  }
  return std::nullopt;
}

std::optional<BadRow> TrackerMapper::ProductFromContexts(const TrackerFields& f,
                                                         std::string* item) {
  if (f.co.empty() && f.cx.empty()) return std::nullopt;
  simdjson::dom::element root;
  if (auto bad = ParseEmbedded(f.co, "co", f.cx, "cx", &root)) return bad;
  std::string_view field = f.co.empty() ? "cx" : "co";
  simdjson::dom::array entities;
  if (root["data"].get_array().get(entities)) {
    return Reject("invalid_field", field, "contexts must be {\"schema\", \"data\": [entities]}");
  }
  for (simdjson::dom::element entity : entities) {
    simdjson::dom::object object;
    simdjson::dom::object data;
    if (entity.get_object().get(object) ||
        !StringAt(object, "schema").starts_with(kProductEntityPrefix) ||
        object["data"].get_object().get(data)) {
      continue;
    }
    *item = ItemFromData(data, "id");
    if (!item->empty()) break;
  }
  return std::nullopt;
}

std::optional<BadRow> TrackerMapper::MapSelfDescribing(const TrackerFields& f,
                                                       const std::string& product_item,
                                                       Event* event) {
  if (f.ue_pr.empty() && f.ue_px.empty()) {
    return Reject("missing_field", "ue_pr", "self-describing event needs ue_pr or ue_px");
  }
  std::string_view field = f.ue_pr.empty() ? "ue_px" : "ue_pr";
  simdjson::dom::element root;
  if (auto bad = ParseEmbedded(f.ue_pr, "ue_pr", f.ue_px, "ue_px", &root)) return bad;

  // Trackers wrap the event in unstruct_event; accept a bare {schema, data} too.
  simdjson::dom::element sde = root;
  simdjson::dom::object root_object;
  bool wrapped = !root.get_object().get(root_object) &&
                 StringAt(root_object, "schema").starts_with(kUnstructEventPrefix);
  simdjson::dom::object sde_object;
  simdjson::dom::object data;
  std::string_view schema;
  if ((wrapped && root_object["data"].get(sde)) || sde.get_object().get(sde_object) ||
      sde_object["schema"].get_string().get(schema) || sde_object["data"].get_object().get(data)) {
    return Reject("invalid_field", field,
                  "self-describing event must be {\"schema\": string, \"data\": object}");
  }
  event->properties = simdjson::minify(sde);

  if (schema.starts_with(kEcommerceActionPrefix)) {
    std::string_view action = StringAt(data, "type");
    event->type = action == "product_view"       ? EventType::kView
                  : action == "add_to_cart"      ? EventType::kAddToCart
                  : action == "remove_from_cart" ? EventType::kRemoveFromCart
                  : action == "transaction"      ? EventType::kPurchase
                                                 : EventType::kOther;
    event->item_id = product_item;
  } else if (schema.starts_with(kLegacyAddToCartPrefix)) {
    event->type = EventType::kAddToCart;
    event->item_id = ItemFromData(data, "sku");
  } else if (schema.starts_with(kLegacyRemoveFromCartPrefix)) {
    event->type = EventType::kRemoveFromCart;
    event->item_id = ItemFromData(data, "sku");
  } else {
    event->type = EventType::kOther;
    for (std::string_view key : {"type", "event_type", "action"}) {
      if (auto type = events::ParseEventType(StringAt(data, key))) {
        event->type = *type;
        break;
      }
    }
    event->item_id = ItemFromData(data, {});
    if (event->item_id.empty()) event->item_id = product_item;
  }
  return std::nullopt;
}

// Whether tracker field `key` is kept for `#input.raw` (MappingOptions::raw_fields).
bool KeepsRawField(const MappingOptions& options, std::string_view key) {
  return !options.raw_fields ||
         std::binary_search(options.raw_fields->begin(), options.raw_fields->end(), key);
}

// `{"schema":<payload_data schema>, ...the event's fields}`: what `#input.raw` reads, only the
// kept fields, the first of duplicates.
std::string RawFields(std::string_view schema, simdjson::dom::object event_object,
                      const MappingOptions& options) {
  std::string raw = "{";
  std::vector<std::string_view> seen;  // kept so far, when not keeping all (a few names)
  auto append = [&](std::string_view key, std::string_view json_value) {
    if (options.raw_fields) {
      if (!KeepsRawField(options, key) ||
          std::find(seen.begin(), seen.end(), key) != seen.end()) {
        return;
      }
      seen.push_back(key);
    }
    if (raw.size() > 1) raw += ',';
    raw += boost::json::serialize(boost::json::string(key));
    raw += ':';
    raw.append(json_value);
  };
  append("schema", boost::json::serialize(boost::json::string(schema)));
  if (!options.raw_fields) {
    // All of them as they came (minified): no need to take the object apart.
    const std::string fields = simdjson::minify(event_object);
    if (fields.size() > 2) raw.append(",").append(fields, 1, fields.size() - 2);
  } else {
    for (auto [key, value] : event_object) append(key, simdjson::minify(value));
  }
  raw += '}';
  return raw;
}

std::string TrackerMapper::ItemFromData(simdjson::dom::object data,
                                        std::string_view first_field) const {
  simdjson::dom::element value;
  if (!first_field.empty() && !data[first_field].get(value)) {
    if (std::optional<std::string> text = IdText(value); text && !text->empty()) return *text;
  }
  for (const std::string& name : options_.item_fields) {
    if (data[name].get(value)) continue;
    if (std::optional<std::string> text = IdText(value); text && !text->empty()) return *text;
  }
  return {};
}

}  // namespace

Result<DecodeOutput> DecodeSnowplowPost(std::string_view body, int64_t now_ms,
                                        const MappingOptions& options) {
  simdjson::padded_string padded(body);
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(padded).get(root); error) {
    return Status::Invalid("invalid_json", "body is not valid JSON: " + JsonError(error), "body");
  }
  simdjson::dom::object payload;
  if (root.get_object().get(payload)) {
    return Status::Invalid("invalid_payload", "body must be a payload_data object", "body");
  }
  std::string_view schema;
  if (payload["schema"].get_string().get(schema) || !IsPayloadDataSchema(schema)) {
    return Status::Invalid("invalid_schema",
                           "schema must be " + std::string(kPayloadDataPrefix) + "0 to 4, got '" +
                               std::string(schema.substr(0, 200)) + "'",
                           "schema");
  }
  simdjson::dom::array data;
  if (payload["data"].get_array().get(data)) {
    return Status::Invalid("invalid_payload", "data must be an array of events", "data");
  }
  if (data.size() > options.max_batch_events) {
    return Status::Make(Code::kTooLarge, "batch_too_large",
                        std::to_string(data.size()) + " events in one request, limit is " +
                            std::to_string(options.max_batch_events),
                        "data");
  }

  DecodeOutput out;
  out.events.reserve(data.size());
  TrackerMapper mapper(options);
  for (simdjson::dom::element element : data) {
    simdjson::dom::object object;
    if (element.get_object().get(object)) {
      out.bad_rows.push_back(BadRow{.reason = "invalid_event",
                                    .field = "data",
                                    .message = "event must be a JSON object",
                                    .payload = TruncatePayload(simdjson::minify(element))});
      continue;
    }
    TrackerFields fields;
    for (auto [key, value] : object) {
      std::string_view* slot = FindSlot(fields, key);
      if (slot == nullptr || value.is_null()) continue;
      if (value.get_string().get(*slot) && fields.non_string_field.empty()) {
        fields.non_string_field = key;
      }
    }
    Event event;
    if (std::optional<BadRow> bad = mapper.Map(fields, now_ms, &event)) {
      bad->payload = TruncatePayload(simdjson::minify(element));  // only rejections pay for it
      out.bad_rows.push_back(std::move(*bad));
    } else {
      if (options.keep_raw) event.raw = RawFields(schema, object, options);
      out.events.push_back(std::move(event));
    }
  }
  return out;
}

Result<DecodeOutput> DecodeSnowplowQuery(std::string_view query_string, int64_t now_ms,
                                         const MappingOptions& options) {
  if (query_string.starts_with('?')) query_string.remove_prefix(1);
  auto params = boost::urls::parse_query(query_string);
  if (!params) {
    return Status::Invalid("invalid_query",
                           "query string is not valid: " + params.error().message(), "query");
  }
  // Form encoding, as trackers and Snowplow's own collector read it: '+' is a space.
  boost::urls::encoding_opts form_encoding(/*space_as_plus=*/true);
  std::vector<std::pair<std::string, std::string>> decoded;
  decoded.reserve(params->size());
  for (auto param : *params) {
    decoded.emplace_back(param.key.decode(form_encoding), param.value.decode(form_encoding));
  }
  TrackerFields fields;
  for (const auto& [key, value] : decoded) {
    if (std::string_view* slot = FindSlot(fields, key)) *slot = value;
  }
  DecodeOutput out;
  TrackerMapper mapper(options);
  Event event;
  if (std::optional<BadRow> bad = mapper.Map(fields, now_ms, &event)) {
    bad->payload = TruncatePayload(query_string);
    out.bad_rows.push_back(std::move(*bad));
  } else {
    if (options.keep_raw) {
      boost::json::object raw;
      for (const auto& [key, value] : decoded) {
        if (KeepsRawField(options, key)) raw.emplace(key, value);  // the first of duplicates
      }
      event.raw = boost::json::serialize(raw);
    }
    out.events.push_back(std::move(event));
  }
  return out;
}

}  // namespace streamrec::collector
