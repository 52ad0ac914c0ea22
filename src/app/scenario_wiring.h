// Running a YAML scenario inside `streamrec serve`: its models are the pipeline's live item
// models, its sinks the push sinks (webhook, shopify) plus log and null.
#pragma once

#include <memory>

#include "pipeline/pipeline.h"
#include "scenario/host.h"
#include "scenario/plugins.h"

namespace streamrec::app {

//! Sink types a served scenario may use. `metrics` outlives the registry.
scenario::SinkRegistry ServerSinks(common::Registry& metrics);

}  // namespace streamrec::app
