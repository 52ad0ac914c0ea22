// Running a YAML scenario inside `streamrec serve`: its models are the pipeline's live item
// models, its sinks the push sinks (webhook, shopify), `store` (the served lists) plus log and
// null.
#pragma once

#include <memory>

#include "pipeline/pipeline.h"
#include "scenario/host.h"
#include "scenario/plugins.h"

namespace streamrec::app {

//! Sink types a served scenario may use. `metrics` outlives the registry. The `store` sink
//! writes into the pipeline step that runs the event (see ScenarioObserver); every sink is
//! silent during the warm-up replay (ScenarioWarmup).
scenario::SinkRegistry ServerSinks(common::Registry& metrics);

//! Runs each event the pipeline applies through the host's current scenario, inside the step,
//! so that a `store` sink's list is written in the same atomic batch as the user's state.
//! REQUIRES: `host` outlives the pipeline's workers.
pipeline::EventObserver ScenarioObserver(const scenario::ScenarioHost& host);

//! Replays already-handled events through the current scenario at start-up to rebuild its
//! windows, with every sink silent (see Pipeline::AddWarmupObserver).
pipeline::WarmupObserver ScenarioWarmup(const scenario::ScenarioHost& host);

}  // namespace streamrec::app
