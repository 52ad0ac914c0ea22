// The `shopify` sink: writes each user's list into a Shopify metaobject (handle
// "customer-<user>") with the Admin GraphQL metaobjectUpsert mutation, on the webhook
// engine (coalescing, retries, dead letter) with Shopify's cost-based rate budget.
#pragma once

#include <string>

#include "sinks/http_sink.h"
#include "sinks/sink.h"

namespace streamrec::sinks {

inline constexpr char kShopifyUpsertMutation[] =
    "mutation StreamrecUpsert($handle: MetaobjectHandleInput!, "
    "$metaobject: MetaobjectUpsertInput!) { metaobjectUpsert(handle: $handle, "
    "metaobject: $metaobject) { metaobject { id handle } userErrors { field message code } } }";

//! A metaobject handle for a user: `prefix` + the id with [a-z0-9-] kept and every other
//! byte written as `_xx` (hex), so distinct ids never share a handle.
std::string ShopifyHandle(std::string_view prefix, std::string_view user_id);

//! Judges a GraphQL response and feeds `extensions.cost.throttleStatus` into `budget`.
//! HTTP 200 with `errors` or `userErrors` fails; an error with extensions.code THROTTLED
//! is retried once the budget has refilled.
PushOutcome ClassifyShopify(const tools::HttpResponse& response, TokenBucket& budget, double cost);

common::Result<std::unique_ptr<Sink>> MakeShopifySink(const boost::json::object& config, Deps deps);

}  // namespace streamrec::sinks
