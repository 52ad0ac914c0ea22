// Collector decoders: request bodies / query strings -> canonical events. Pure functions, no I/O;
// serve/ calls them and maps a non-ok Result to an HTTP status.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "events/event.h"

namespace streamrec::collector {

//! How tracker fields map onto the canonical event.
struct MappingOptions {
  //! Page URL path pattern; "{item}" stands for (part of) one path segment, e.g.
  //! "/products/{item}" or "/p/{item}.html". Matched anywhere in the path.
  std::string item_url_pattern = "/products/{item}";
  //! Fields of a self-describing event's data (or product entity) that carry the item id;
  //! the first present and non-empty one wins.
  std::vector<std::string> item_fields = {"item_id", "sku", "product_id", "id"};
  //! Empty = any tenant; else the tenant must be listed (BadRow "tenant_not_allowed").
  std::vector<std::string> allowed_tenants;
  //! Tenant for events without aid / tenant.
  std::string default_tenant = "default";
  //! More events in one request rejects the whole request (kTooLarge, "batch_too_large").
  size_t max_batch_events = 500;
  //! Keep each Snowplow event's own fields in Event::raw (for scenarios reading `#input.raw`):
  //! the event object of a tp2 POST plus the request's "schema", or a GET's decoded parameters.
  bool keep_raw = false;
  //! With keep_raw, only these of the fields ("schema" included), sorted: those the running
  //! scenario reads (Scenario::raw_fields), so the log holds no more than it needs; nullopt keeps
  //! every field. The first of duplicate fields is the one kept.
  std::optional<std::vector<std::string>> raw_fields;
};

//! Bad-row payloads are truncated to this many bytes.
inline constexpr size_t kMaxBadRowPayload = 4096;

// All three decoders: a request-level failure (body not JSON, wrong payload_data schema, wrong
// shape, batch too large) is a non-ok Result with reason/field set. Otherwise every input event
// ends up either in DecodeOutput.events or as one BadRow (reason, field, message, raw payload,
// tenant when known), in input order within each list.

//! Snowplow tracker protocol v2 POST body (`POST /com.snowplowanalytics.snowplow/tp2`):
//! {"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-{0..4}","data":[..]}.
common::Result<events::DecodeOutput> DecodeSnowplowPost(std::string_view body, int64_t now_ms,
                                                        const MappingOptions& options);

//! Snowplow GET /i pixel: one event as a url-encoded query string (a leading '?' is allowed).
common::Result<events::DecodeOutput> DecodeSnowplowQuery(std::string_view query_string,
                                                         int64_t now_ms,
                                                         const MappingOptions& options);

//! Native `POST /v1/events`: one event object or an array of them:
//! {"event_id","type","user_id","item_id","timestamp"(ms),"tenant"?,"session_id"?,"properties"?}.
//! Ids may be strings or integers (integers are kept as their decimal text).
common::Result<events::DecodeOutput> DecodeNativeJson(std::string_view body, int64_t now_ms,
                                                      const MappingOptions& options);

}  // namespace streamrec::collector
