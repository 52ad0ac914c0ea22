// The `#input` record of a scenario: the canonical event after the log, with its properties
// parsed and, when the event came from a Snowplow tracker and the caller kept them, the raw
// tracker fields.
#pragma once

#include "events/event.h"
#include "expr/value.h"

namespace streamrec::scenario {

//! {event_id, tenant, user_id, item_id, type, timestamp: time, collector_time: time, session_id,
//!  properties: map<any>, raw: map<any>}. A record type, so a misspelt field is a load error.
expr::Type InputType();

//! `raw` is the tracker's field map (e.g. {"e":"pv","duid":…,"url":…}) or null. Properties
//! that are not a JSON object give null. Parsing them costs more than most steps, so callers
//! pass `parse_properties = false` when no expression reads them.
expr::Value InputValue(const events::Event& event, const expr::Value& raw, bool parse_properties);

}  // namespace streamrec::scenario
