// The `#input` record of a scenario: the canonical event after the log, with its properties
// parsed and, when the event came from a Snowplow tracker and the caller kept them, the raw
// tracker fields.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

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

//! What EventInput reuses from one event to the next, one per thread: the JSON parser for the
//! raw tracker fields and its buffers (allocated once, not per event).
class RawFieldsParser {
 public:
  RawFieldsParser();
  ~RawFieldsParser();
  RawFieldsParser(const RawFieldsParser&) = delete;
  RawFieldsParser& operator=(const RawFieldsParser&) = delete;

 private:
  friend class EventInput;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

//! `#input`: each field is made only when an expression reads it (expr::Env::SetNative), so an
//! event pays for what it uses; ToValue() makes the whole record (traces). `raw` is the
//! tracker's field map (e.g. {"e":"pv","duid":…,"url":…}) or null; properties that are not a
//! JSON object read as null. `#input.raw.e` and `#input.raw != null` read the JSON parsed with
//! `parser` without making the whole map (Member, FieldIsNull).
//! REQUIRES: `event`, `raw` (when given) and `parser` outlive this object, and no other
//! EventInput uses `parser` meanwhile; one thread at a time.
class EventInput final : public expr::NativeRecord {
 public:
  //! `raw` null: event.raw is parsed when `parse_raw` (on first read).
  EventInput(const events::Event& event, const expr::Value* raw, bool parse_raw,
             bool parse_properties, RawFieldsParser& parser)
      : event_(event),
        raw_(raw),
        parse_raw_(parse_raw),
        parse_properties_(parse_properties),
        parser_(parser) {}
  //! Drops the member values made for this event (they must not outlive it in the parser).
  ~EventInput() override;
  const expr::Value& Field(size_t index, expr::Value& scratch) const override;
  expr::Value ToValue() const override;
  const expr::Value* Member(size_t index, std::string_view key,
                            expr::Value& scratch) const override;
  expr::StringPeek PeekMember(size_t index, std::string_view key) const override;
  bool FieldIsNull(size_t index) const override;

 private:
  const expr::Value& Raw() const;
  //! Whether event.raw parsed as a JSON object into parser_ (parsed on the first call).
  bool RawParsed() const;
  //! Whether field `index` is `raw` read from the parsed text: no map was given or made yet.
  bool ReadsRawText(size_t index) const {
    return index == kInputRawField && !raw_ && parse_raw_ && !parsed_raw_;
  }

  const events::Event& event_;
  const expr::Value* raw_;
  bool parse_raw_;
  bool parse_properties_;
  RawFieldsParser& parser_;
  // Parsed on first read, once per event.
  mutable std::optional<expr::Value> parsed_raw_, properties_;
  mutable std::optional<bool> raw_parsed_;
};

}  // namespace streamrec::scenario
