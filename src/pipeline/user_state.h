// Private to the pipeline: per-user state transitions and the stored encodings
// of UserState and RecList (compact, versioned binary).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "events/event.h"
#include "pipeline/pipeline.h"

namespace streamrec::pipeline {

//! Applies one event (log seq `seq` of the user's partition) to `state`:
//! session, last event time, and for item events the history (timestamp order,
//! capped, TTL).
void ApplyEvent(UserState &state, const events::Event &event, uint64_t seq,
                const PipelineOptions &options);

//! The state as it was before the event with log seq `seq`, as far as the
//! history still shows it (entries with a smaller seq; last_event_ms from
//! them). Used when replay must re-apply an event to the item model while the
//! stored user state is already past it.
UserState StateBefore(const UserState &state, uint64_t seq);

//! True when a state whose newest event is at `last_event_ms` has expired at
//! `now_ms`.
inline bool Expired(int64_t last_event_ms, int64_t now_ms, int64_t ttl_ms) {
  return last_event_ms < now_ms - ttl_ms;
}

std::string EncodeUserState(const UserState &state);
common::Result<UserState> DecodeUserState(std::string_view bytes);

std::string EncodeRecList(const RecList &recs);
common::Result<RecList> DecodeRecList(std::string_view bytes);

}  // namespace streamrec::pipeline
