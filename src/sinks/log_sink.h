// The `log` sink: one JSON line per update to a file or stdout, for debugging.
#pragma once

#include "sinks/sink.h"

namespace streamrec::sinks {

//! Config: {type: log, name?, path?: file or "-" (stdout, the default)}. Writes
//! synchronously under a lock (it is a debugging aid, not a production output).
common::Result<std::unique_ptr<Sink>> MakeLogSink(const boost::json::object& config, Deps deps);

}  // namespace streamrec::sinks
