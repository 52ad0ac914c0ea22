// The `#input` record of a scenario: the canonical event after the log, with its properties
// parsed and, when the event came from a Snowplow tracker and the caller kept them, the raw
// tracker fields.
#pragma once

#include <optional>

#include "events/event.h"
#include "expr/expr.h"
#include "expr/value.h"

namespace streamrec::scenario {

//! {event_id, tenant, user_id, item_id, type, timestamp: time, collector_time: time, session_id,
//!  properties: map<any>, raw: map<any>}. A record type, so a misspelt field is a load error.
expr::Type InputType();
//! Positions in InputType() of the fields parsed only when an expression reads them.
inline constexpr size_t kInputPropertiesField = 8;
inline constexpr size_t kInputRawField = 9;

//! `#input`: each field is made only when an expression reads it (expr::Env::SetNative), so an
//! event pays for what it uses; ToValue() makes the whole record (traces). `raw` is the
//! tracker's field map (e.g. {"e":"pv","duid":…,"url":…}) or null; properties that are not a
//! JSON object read as null.
//! REQUIRES: `event` and `raw` (when given) outlive this object; one thread at a time.
class EventInput final : public expr::NativeRecord {
 public:
  //! `raw` null: event.raw is parsed when `parse_raw` (on first read).
  EventInput(const events::Event& event, const expr::Value* raw, bool parse_raw,
             bool parse_properties)
      : event_(event), raw_(raw), parse_raw_(parse_raw), parse_properties_(parse_properties) {}
  const expr::Value& Field(size_t index, expr::Value& scratch) const override;
  expr::Value ToValue() const override;

 private:
  const expr::Value& Raw() const;

  const events::Event& event_;
  const expr::Value* raw_;
  bool parse_raw_;
  bool parse_properties_;
  // Parsed on first read, once per event.
  mutable std::optional<expr::Value> parsed_raw_, properties_;
};

}  // namespace streamrec::scenario
