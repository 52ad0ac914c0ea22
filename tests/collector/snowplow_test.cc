#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "collector/decode.h"
#include "test_util.h"

namespace streamrec::collector {
namespace {

using common::Code;
using events::EventType;
using testing::Base64;
using testing::ReadFixture;

constexpr int64_t kNow = 1'800'000'000'000;
constexpr std::string_view kPayloadSchema =
    "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4";
constexpr std::string_view kEcommerceAction =
    "iglu:com.snowplowanalytics.snowplow.ecommerce/snowplow_ecommerce_action/jsonschema/1-0-2";
constexpr std::string_view kProduct =
    "iglu:com.snowplowanalytics.snowplow.ecommerce/product/jsonschema/1-0-0";

std::string Post(const std::vector<std::string>& events, std::string_view schema = kPayloadSchema) {
  std::string body = "{\"schema\":\"" + std::string(schema) + "\",\"data\":[";
  for (size_t i = 0; i < events.size(); ++i) body += (i ? "," : "") + events[i];
  return body + "]}";
}

// A tracker event with the usual fields plus `extra` (already JSON members, may be empty).
std::string TrackerEvent(std::string_view eid, std::string_view extra) {
  std::string event = "{\"e\":\"pv\",\"eid\":\"" + std::string(eid) +
                      "\",\"aid\":\"shop1\",\"duid\":\"d-1\",\"dtm\":\"1700000000001\","
                      "\"url\":\"https://shop.example/products/p-" +
                      std::string(eid) + "\"";
  if (!extra.empty()) event += "," + std::string(extra);
  return event + "}";
}

// An unstruct_event wrapper around a self-describing event, as trackers send it.
std::string Unstruct(std::string_view schema, std::string_view data_json) {
  return R"({"schema":"iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",)"
         R"("data":{"schema":")" +
         std::string(schema) + R"(","data":)" + std::string(data_json) + "}}";
}

std::string Contexts(std::string_view entities_json) {
  return R"({"schema":"iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0","data":)" +
         std::string(entities_json) + "}";
}

// JSON string literal of `text` (enough escaping for the test inputs here).
std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

events::DecodeOutput MustDecode(const std::string& body, const MappingOptions& options = {}) {
  auto result = DecodeSnowplowPost(body, kNow, options);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? std::move(result).value() : events::DecodeOutput{};
}

// The values of "eid" in a tracker body, in order.
std::vector<std::string> Eids(std::string_view body) {
  std::vector<std::string> eids;
  constexpr std::string_view kKey = "\"eid\":\"";
  for (size_t pos = body.find(kKey); pos != std::string_view::npos; pos = body.find(kKey, pos)) {
    pos += kKey.size();
    eids.emplace_back(body.substr(pos, body.find('"', pos) - pos));
  }
  return eids;
}

void ExpectRealTrackerBatch(const std::string& body) {
  auto out = MustDecode(body);
  ASSERT_TRUE(out.bad_rows.empty()) << out.bad_rows[0].reason << " " << out.bad_rows[0].field;
  ASSERT_EQ(out.events.size(), 3u);
  std::vector<std::string> eids = Eids(body);
  ASSERT_EQ(eids.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const events::Event& e = out.events[i];
    EXPECT_EQ(e.event_id, eids[i]);
    EXPECT_EQ(e.tenant, "shop1");
    EXPECT_EQ(e.user_id, "user-42");  // uid wins over duid
    EXPECT_EQ(e.session_id, "5b2c1e44-0000-4000-8000-0000000000a1");
    EXPECT_EQ(e.item_id, "blue-shirt");
    EXPECT_EQ(e.collector_ms, kNow);
    EXPECT_GT(e.timestamp_ms, 1'700'000'000'000);  // from dtm, not now
    EXPECT_NE(e.timestamp_ms, kNow);
  }
  EXPECT_EQ(out.events[0].type, EventType::kView);  // page view, item from the URL
  EXPECT_EQ(out.events[0].properties, "");
  EXPECT_EQ(out.events[1].type, EventType::kView);  // ecommerce product_view
  EXPECT_EQ(out.events[2].type, EventType::kAddToCart);
  EXPECT_EQ(out.events[2].properties, "{\"schema\":\"" + std::string(kEcommerceAction) +
                                          "\",\"data\":{\"type\":\"add_to_cart\"}}");
}

TEST(SnowplowPostTest, RealNodeTrackerBase64Batch) {
  ExpectRealTrackerBatch(ReadFixture("snowplow/node_tracker_post_base64.json"));
}

TEST(SnowplowPostTest, RealNodeTrackerPlainJsonBatch) {
  std::string body = ReadFixture("snowplow/node_tracker_post_plain.json");
  ASSERT_NE(body.find("\"ue_pr\""), std::string::npos);  // really the unencoded variant
  ExpectRealTrackerBatch(body);
}

TEST(SnowplowPostTest, BatchOfNYieldsNEventsInOrder) {
  std::vector<std::string> events;
  for (int i = 0; i < 120; ++i) events.push_back(TrackerEvent(std::to_string(i), ""));
  auto out = MustDecode(Post(events));
  ASSERT_EQ(out.events.size(), 120u);
  EXPECT_TRUE(out.bad_rows.empty());
  for (int i = 0; i < 120; ++i) {
    EXPECT_EQ(out.events[i].event_id, std::to_string(i));
    EXPECT_EQ(out.events[i].item_id, "p-" + std::to_string(i));
  }
}

TEST(SnowplowPostTest, KeepsEachEventsTrackerFieldsAndTheSchemaOnlyWhenAsked) {
  std::string body = Post({TrackerEvent("1", "\"tv\":\"node-4.8.0\""), TrackerEvent("2", "")});
  auto plain = MustDecode(body);
  ASSERT_EQ(plain.events.size(), 2u);
  EXPECT_TRUE(plain.events[0].raw.empty());

  MappingOptions options;
  options.keep_raw = true;
  auto kept = MustDecode(body, options);
  ASSERT_EQ(kept.events.size(), 2u);
  EXPECT_EQ(kept.events[0].raw,
            "{\"schema\":\"" + std::string(kPayloadSchema) +
                "\",\"e\":\"pv\",\"eid\":\"1\",\"aid\":\"shop1\",\"duid\":\"d-1\","
                "\"dtm\":\"1700000000001\",\"url\":\"https://shop.example/products/p-1\","
                "\"tv\":\"node-4.8.0\"}");
  EXPECT_NE(kept.events[1].raw.find("\"eid\":\"2\""), std::string::npos);
  // Everything else is decoded the same.
  kept.events[0].raw.clear();
  EXPECT_EQ(kept.events[0], plain.events[0]);
}

// A scenario that reads a few tracker fields gets only those in the log: the rest of a tracker's
// payload (contexts, screen sizes, ...) would only make every logged event larger.
TEST(SnowplowPostTest, KeepsOnlyTheListedTrackerFieldsTheFirstOfDuplicates) {
  std::string body = Post({TrackerEvent("1", R"("tv":"node-4.8.0","note":"first",)"
                                             R"("nested":{"a":[1,{"b":null}]},"note":"second")"),
                           TrackerEvent("2", "")});
  MappingOptions options;
  options.keep_raw = true;
  options.raw_fields = std::vector<std::string>{"e", "missing", "nested", "note", "url"};
  auto kept = MustDecode(body, options);
  ASSERT_EQ(kept.events.size(), 2u);
  EXPECT_EQ(kept.events[0].raw, R"({"e":"pv","url":"https://shop.example/products/p-1",)"
                                R"("note":"first","nested":{"a":[1,{"b":null}]}})");
  EXPECT_EQ(kept.events[1].raw, R"({"e":"pv","url":"https://shop.example/products/p-2"})");

  options.raw_fields = std::vector<std::string>{"aid", "schema"};
  EXPECT_EQ(MustDecode(body, options).events[1].raw,
            "{\"schema\":\"" + std::string(kPayloadSchema) + "\",\"aid\":\"shop1\"}");
  // None of them: still an object, so `#input.raw != null` tells tracker events apart.
  options.raw_fields = std::vector<std::string>{};
  EXPECT_EQ(MustDecode(body, options).events[0].raw, "{}");
}

TEST(SnowplowPostTest, EmptyBatchIsFine) {
  auto out = MustDecode(Post({}));
  EXPECT_TRUE(out.events.empty());
  EXPECT_TRUE(out.bad_rows.empty());
}

TEST(SnowplowPostTest, InvalidJsonBodyIsRequestError) {
  for (std::string body : {"", "{", "not json", "{\"schema\":\"x\",\"data\":[}"}) {
    auto result = DecodeSnowplowPost(body, kNow, {});
    ASSERT_FALSE(result.ok()) << body;
    EXPECT_EQ(result.status().code, Code::kInvalidArgument);
    EXPECT_EQ(result.status().reason, "invalid_json");
    EXPECT_EQ(result.status().field, "body");
    EXPECT_FALSE(result.status().message.empty());
  }
}

TEST(SnowplowPostTest, SchemaMustBePayloadData10To14) {
  for (char minor = '0'; minor <= '4'; ++minor) {
    std::string schema = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-";
    EXPECT_TRUE(DecodeSnowplowPost(Post({}, schema + minor), kNow, {}).ok()) << minor;
  }
  for (std::string schema : {"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-5",
                             "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/2-0-0",
                             "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-10",
                             "iglu:com.acme/payload_data/jsonschema/1-0-4", ""}) {
    auto result = DecodeSnowplowPost(Post({}, schema), kNow, {});
    ASSERT_FALSE(result.ok()) << schema;
    EXPECT_EQ(result.status().reason, "invalid_schema");
    EXPECT_EQ(result.status().field, "schema");
  }
  auto missing = DecodeSnowplowPost(R"({"data":[]})", kNow, {});
  EXPECT_EQ(missing.status().reason, "invalid_schema");
}

TEST(SnowplowPostTest, WrongShapeIsRequestError) {
  auto array = DecodeSnowplowPost("[1,2]", kNow, {});
  EXPECT_EQ(array.status().reason, "invalid_payload");
  EXPECT_EQ(array.status().field, "body");
  auto data = DecodeSnowplowPost("{\"schema\":\"" + std::string(kPayloadSchema) + "\",\"data\":{}}",
                                 kNow, {});
  EXPECT_EQ(data.status().reason, "invalid_payload");
  EXPECT_EQ(data.status().field, "data");
}

TEST(SnowplowPostTest, BatchTooLargeRejectsWholeRequest) {
  MappingOptions options;
  options.max_batch_events = 2;
  auto result = DecodeSnowplowPost(
      Post({TrackerEvent("a", ""), TrackerEvent("b", ""), TrackerEvent("c", "")}), kNow, options);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code, Code::kTooLarge);
  EXPECT_EQ(result.status().reason, "batch_too_large");
  EXPECT_TRUE(
      DecodeSnowplowPost(Post({TrackerEvent("a", ""), TrackerEvent("b", "")}), kNow, options).ok());
}

TEST(SnowplowPostTest, NonObjectEventIsBadRow) {
  auto out = MustDecode(Post({"42", TrackerEvent("a", "")}));
  ASSERT_EQ(out.bad_rows.size(), 1u);
  EXPECT_EQ(out.bad_rows[0].reason, "invalid_event");
  EXPECT_EQ(out.bad_rows[0].payload, "42");
  EXPECT_EQ(out.events.size(), 1u);
}

TEST(SnowplowPostTest, BadBase64IsBadRowNamingTheField) {
  std::string bad_ue = TrackerEvent("a", R"("e":"ue","ue_px":"eyJzY2hlbWEi*")");
  std::string bad_cx = TrackerEvent("b", R"("cx":"%%%")");
  auto out = MustDecode(Post({bad_ue, bad_cx, TrackerEvent("c", "")}));
  ASSERT_EQ(out.bad_rows.size(), 2u);
  EXPECT_EQ(out.bad_rows[0].reason, "invalid_base64");
  EXPECT_EQ(out.bad_rows[0].field, "ue_px");
  EXPECT_EQ(out.bad_rows[0].tenant, "shop1");
  EXPECT_EQ(out.bad_rows[0].payload, bad_ue);  // the raw event, compact
  EXPECT_EQ(out.bad_rows[1].reason, "invalid_base64");
  EXPECT_EQ(out.bad_rows[1].field, "cx");
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].event_id, "c");
}

TEST(SnowplowPostTest, BadInnerJsonIsBadRowNamingTheField) {
  auto out = MustDecode(Post({
      TrackerEvent("a", R"("e":"ue","ue_pr":"{not json")"),
      TrackerEvent("b", "\"e\":\"ue\",\"ue_px\":\"" + Base64("{\"schema\":") + "\""),
      TrackerEvent("c", "\"cx\":\"" + Base64("[1,") + "\""),
      TrackerEvent("d", R"("co":"{\"schema\":\"x\",\"data\":{}}")"),
      TrackerEvent("e", R"("e":"ue","ue_pr":"{\"schema\":\"iglu:x/y/jsonschema/1-0-0\"}")"),
  }));
  ASSERT_EQ(out.bad_rows.size(), 5u);
  EXPECT_TRUE(out.events.empty());
  EXPECT_EQ(out.bad_rows[0].reason, "invalid_json");
  EXPECT_EQ(out.bad_rows[0].field, "ue_pr");
  EXPECT_EQ(out.bad_rows[1].reason, "invalid_json");
  EXPECT_EQ(out.bad_rows[1].field, "ue_px");
  EXPECT_EQ(out.bad_rows[2].reason, "invalid_json");
  EXPECT_EQ(out.bad_rows[2].field, "cx");
  EXPECT_EQ(out.bad_rows[3].reason, "invalid_field");  // contexts data is not an array
  EXPECT_EQ(out.bad_rows[3].field, "co");
  EXPECT_EQ(out.bad_rows[4].reason, "invalid_field");  // self-describing event without data
  EXPECT_EQ(out.bad_rows[4].field, "ue_pr");
}

TEST(SnowplowPostTest, SelfDescribingWithoutPayloadIsBadRow) {
  auto out = MustDecode(Post({TrackerEvent("a", R"("e":"ue")")}));
  ASSERT_EQ(out.bad_rows.size(), 1u);
  EXPECT_EQ(out.bad_rows[0].reason, "missing_field");
  EXPECT_EQ(out.bad_rows[0].field, "ue_pr");
}

TEST(SnowplowPostTest, MissingEidIsBadRowOthersStillAccepted) {
  std::string no_eid = R"({"e":"pv","aid":"shop1","duid":"d-1"})";
  std::string empty_eid = R"({"e":"pv","eid":"","duid":"d-1"})";
  auto out = MustDecode(Post({TrackerEvent("a", ""), no_eid, empty_eid, TrackerEvent("b", "")}));
  ASSERT_EQ(out.bad_rows.size(), 2u);
  for (const auto& bad : out.bad_rows) {
    EXPECT_EQ(bad.reason, "missing_field");
    EXPECT_EQ(bad.field, "eid");
  }
  EXPECT_EQ(out.bad_rows[0].payload, no_eid);
  EXPECT_EQ(out.bad_rows[0].tenant, "shop1");
  EXPECT_EQ(out.bad_rows[1].tenant, "default");
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[1].event_id, "b");
}

TEST(SnowplowPostTest, MissingEventTypeIsBadRow) {
  auto out = MustDecode(Post({R"({"eid":"a","duid":"d"})"}));
  ASSERT_EQ(out.bad_rows.size(), 1u);
  EXPECT_EQ(out.bad_rows[0].reason, "missing_field");
  EXPECT_EQ(out.bad_rows[0].field, "e");
}

TEST(SnowplowPostTest, UserIdFallsBackUidDuidNuid) {
  auto out = MustDecode(Post({
      R"({"e":"pv","eid":"1","uid":"u","duid":"d","nuid":"n"})",
      R"({"e":"pv","eid":"2","uid":"","duid":"d","nuid":"n"})",
      R"({"e":"pv","eid":"3","nuid":"n"})",
      R"({"e":"pv","eid":"4","uid":"","duid":""})",
  }));
  ASSERT_EQ(out.events.size(), 3u);
  EXPECT_EQ(out.events[0].user_id, "u");
  EXPECT_EQ(out.events[1].user_id, "d");
  EXPECT_EQ(out.events[2].user_id, "n");
  ASSERT_EQ(out.bad_rows.size(), 1u);
  EXPECT_EQ(out.bad_rows[0].reason, "missing_field");
  EXPECT_EQ(out.bad_rows[0].field, "duid");
}

TEST(SnowplowPostTest, TenantFromAidDefaultAndAllowList) {
  MappingOptions options;
  options.default_tenant = "main";
  auto out = MustDecode(Post({R"({"e":"pv","eid":"1","duid":"d"})"}), options);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].tenant, "main");

  options.allowed_tenants = {"shop1", "main"};
  std::string other = R"({"e":"pv","eid":"2","aid":"shop9","duid":"d"})";
  out = MustDecode(Post({TrackerEvent("1", ""), other, R"({"e":"pv","eid":"3","duid":"d"})"}),
                   options);
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[0].tenant, "shop1");
  EXPECT_EQ(out.events[1].tenant, "main");
  ASSERT_EQ(out.bad_rows.size(), 1u);
  EXPECT_EQ(out.bad_rows[0].reason, "tenant_not_allowed");
  EXPECT_EQ(out.bad_rows[0].field, "aid");
  EXPECT_EQ(out.bad_rows[0].tenant, "shop9");
  EXPECT_EQ(out.bad_rows[0].payload, other);
}

TEST(SnowplowPostTest, TimestampPrefersTtmThenDtmThenStmThenNow) {
  auto out = MustDecode(Post({
      R"({"e":"pv","eid":"1","duid":"d","ttm":"10","dtm":"20","stm":"30"})",
      R"({"e":"pv","eid":"2","duid":"d","dtm":"20","stm":"30"})",
      R"({"e":"pv","eid":"3","duid":"d","stm":"30"})",
      R"({"e":"pv","eid":"4","duid":"d"})",
  }));
  ASSERT_EQ(out.events.size(), 4u);
  EXPECT_EQ(out.events[0].timestamp_ms, 10);
  EXPECT_EQ(out.events[1].timestamp_ms, 20);
  EXPECT_EQ(out.events[2].timestamp_ms, 30);
  EXPECT_EQ(out.events[3].timestamp_ms, kNow);
  for (const auto& e : out.events) EXPECT_EQ(e.collector_ms, kNow);
}

TEST(SnowplowPostTest, NonNumericOrNonStringTimestampIsBadRow) {
  auto out = MustDecode(Post({
      R"({"e":"pv","eid":"1","duid":"d","dtm":"yesterday","stm":"30"})",
      R"({"e":"pv","eid":"2","duid":"d","ttm":"1.5"})",
      R"({"e":"pv","eid":"3","duid":"d","dtm":1700000000000})",
  }));
  ASSERT_EQ(out.bad_rows.size(), 3u);
  EXPECT_EQ(out.bad_rows[0].reason, "invalid_field");
  EXPECT_EQ(out.bad_rows[0].field, "dtm");
  EXPECT_EQ(out.bad_rows[1].field, "ttm");
  EXPECT_EQ(out.bad_rows[2].reason, "invalid_field");  // protocol values are strings
  EXPECT_EQ(out.bad_rows[2].field, "dtm");
}

TEST(SnowplowPostTest, PageViewWithoutProductUrlIsAcceptedWithoutItem) {
  auto out = MustDecode(Post({
      R"({"e":"pv","eid":"1","duid":"d","url":"https://shop.example/cart"})",
      R"({"e":"pv","eid":"2","duid":"d","url":"https://shop.example/en/products/caf%C3%A9"})",
  }));
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[0].type, EventType::kView);
  EXPECT_EQ(out.events[0].item_id, "");
  EXPECT_EQ(out.events[1].item_id, "café");
}

TEST(SnowplowPostTest, CustomItemUrlPattern) {
  MappingOptions options;
  options.item_url_pattern = "/p/{item}.html";
  auto out = MustDecode(
      Post({R"({"e":"pv","eid":"1","duid":"d","url":"https://s.example/fr/p/sku-9.html?a=b"})"}),
      options);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].item_id, "sku-9");
}

TEST(SnowplowPostTest, EcommerceActionsMapToTypesWithProductEntity) {
  std::string contexts =
      Contexts(R"([{"schema":"iglu:com.acme/other/jsonschema/1-0-0","data":{"id":"no"}},)"
               R"({"schema":")" +
               std::string(kProduct) +
               R"(","data":{"id":"sku-1","price":5}},)"
               R"({"schema":")" +
               std::string(kProduct) + R"(","data":{"id":"sku-2"}}])");
  std::vector<std::string> events;
  const std::vector<std::pair<std::string, EventType>> cases = {
      {"product_view", EventType::kView},
      {"add_to_cart", EventType::kAddToCart},
      {"remove_from_cart", EventType::kRemoveFromCart},
      {"transaction", EventType::kPurchase},
      {"checkout_step", EventType::kOther}};
  for (const auto& [action, type] : cases) {
    std::string ue = Unstruct(kEcommerceAction, R"({"type":")" + action + "\"}");
    // Alternate the encodings: padded standard base64 and plain JSON.
    std::string extra = events.size() % 2 == 0
                            ? "\"e\":\"ue\",\"ue_px\":\"" + Base64(ue, false, true) +
                                  "\",\"cx\":\"" + Base64(contexts, false, true) + "\""
                            : "\"e\":\"ue\",\"ue_pr\":" + Quote(ue) + ",\"co\":" + Quote(contexts);
    events.push_back(TrackerEvent(action, extra));
  }
  auto out = MustDecode(Post(events));
  ASSERT_TRUE(out.bad_rows.empty()) << out.bad_rows[0].reason << " " << out.bad_rows[0].field;
  ASSERT_EQ(out.events.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(out.events[i].type, cases[i].second) << cases[i].first;
    EXPECT_EQ(out.events[i].item_id, "sku-1") << cases[i].first;  // first product entity
  }
}

TEST(SnowplowPostTest, LegacyCartEvents) {
  std::string add = Unstruct("iglu:com.snowplowanalytics.snowplow/add_to_cart/jsonschema/1-0-0",
                             R"({"sku":"s-7","quantity":2})");
  std::string remove =
      Unstruct("iglu:com.snowplowanalytics.snowplow/remove_from_cart/jsonschema/1-0-0",
               R"({"sku":"s-8","quantity":1})");
  auto out =
      MustDecode(Post({TrackerEvent("1", "\"e\":\"ue\",\"ue_pr\":" + Quote(add)),
                       TrackerEvent("2", "\"e\":\"ue\",\"ue_px\":\"" + Base64(remove) + "\"")}));
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[0].type, EventType::kAddToCart);
  EXPECT_EQ(out.events[0].item_id, "s-7");
  EXPECT_EQ(out.events[1].type, EventType::kRemoveFromCart);
  EXPECT_EQ(out.events[1].item_id, "s-8");
}

TEST(SnowplowPostTest, CustomSchemaTypeAndItemFields) {
  std::string purchase = Unstruct("iglu:com.acme/order/jsonschema/1-0-0",
                                  R"({"event_type":"purchase","product_id":1234,"id":"x"})");
  std::string unknown =
      Unstruct("iglu:com.acme/wishlist/jsonschema/1-0-0", R"({"type":"wishlist_add","sku":"w-1"})");
  // Not wrapped in unstruct_event: accepted as the self-describing event itself.
  std::string bare = R"({"schema":"iglu:com.acme/cart/jsonschema/1-0-0",)"
                     R"("data":{"action":"add_to_cart","item_id":"c-1"}})";
  auto out = MustDecode(Post({TrackerEvent("1", "\"e\":\"ue\",\"ue_pr\":" + Quote(purchase)),
                              TrackerEvent("2", "\"e\":\"ue\",\"ue_pr\":" + Quote(unknown)),
                              TrackerEvent("3", "\"e\":\"ue\",\"ue_pr\":" + Quote(bare))}));
  ASSERT_EQ(out.events.size(), 3u);
  EXPECT_EQ(out.events[0].type, EventType::kPurchase);
  EXPECT_EQ(out.events[0].item_id, "1234");  // product_id comes before id in item_fields
  EXPECT_EQ(out.events[0].properties,
            R"({"schema":"iglu:com.acme/order/jsonschema/1-0-0",)"
            R"("data":{"event_type":"purchase","product_id":1234,"id":"x"}})");
  EXPECT_EQ(out.events[1].type, EventType::kOther);
  EXPECT_EQ(out.events[1].item_id, "w-1");
  EXPECT_EQ(out.events[2].type, EventType::kAddToCart);
  EXPECT_EQ(out.events[2].item_id, "c-1");
}

TEST(SnowplowPostTest, TransactionsStructuredAndPagePings) {
  auto out = MustDecode(Post({
      R"({"e":"tr","eid":"1","duid":"d","tr_id":"o-1","tr_tt":"49.90"})",
      R"({"e":"ti","eid":"2","duid":"d","ti_id":"o-1","ti_sk":"sku-3","ti_pr":"9.98","ti_qu":"5"})",
      R"({"e":"se","eid":"3","duid":"d","se_ca":"shop","se_ac":"add_to_cart","se_la":"sku-4"})",
      R"({"e":"se","eid":"4","duid":"d","se_ca":"ui","se_ac":"zoom","se_pr":"sku-5"})",
      R"({"e":"pp","eid":"5","duid":"d","url":"https://shop.example/products/sku-6"})",
      R"({"e":"ad","eid":"6","duid":"d"})",
  }));
  ASSERT_TRUE(out.bad_rows.empty());
  ASSERT_EQ(out.events.size(), 6u);
  EXPECT_EQ(out.events[0].type, EventType::kPurchase);
  EXPECT_EQ(out.events[0].item_id, "");
  EXPECT_EQ(out.events[0].properties, R"({"tr_id":"o-1","tr_tt":"49.90"})");
  EXPECT_EQ(out.events[1].type, EventType::kPurchase);
  EXPECT_EQ(out.events[1].item_id, "sku-3");
  EXPECT_EQ(out.events[1].properties,
            R"({"ti_id":"o-1","ti_sk":"sku-3","ti_pr":"9.98","ti_qu":"5"})");
  EXPECT_EQ(out.events[2].type, EventType::kAddToCart);
  EXPECT_EQ(out.events[2].item_id, "sku-4");
  EXPECT_EQ(out.events[3].type, EventType::kOther);
  EXPECT_EQ(out.events[3].item_id, "sku-5");
  EXPECT_EQ(out.events[4].type, EventType::kOther);
  EXPECT_EQ(out.events[4].item_id, "sku-6");
  EXPECT_EQ(out.events[5].type, EventType::kOther);
  EXPECT_EQ(out.events[5].item_id, "");
}

TEST(SnowplowPostTest, BadRowPayloadIsTruncated) {
  std::string big(3 * kMaxBadRowPayload, 'x');
  auto out = MustDecode(Post({R"({"e":"pv","duid":"d","page":")" + big + "\"}"}));
  ASSERT_EQ(out.bad_rows.size(), 1u);
  EXPECT_EQ(out.bad_rows[0].payload.size(), kMaxBadRowPayload);
}

TEST(SnowplowQueryTest, RealNodeTrackerGetPageView) {
  std::string query = ReadFixture("snowplow/node_tracker_get_pageview.txt");
  auto result = DecodeSnowplowQuery(query, kNow, {});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_TRUE(result->bad_rows.empty());
  ASSERT_EQ(result->events.size(), 1u);
  const events::Event& e = result->events[0];
  EXPECT_EQ(e.event_id, query.substr(query.find("&eid=") + 5, 36));
  EXPECT_EQ(e.type, EventType::kView);
  EXPECT_EQ(e.item_id, "blue-shirt");
  EXPECT_EQ(e.user_id, "user-42");
  EXPECT_EQ(e.tenant, "shop1");
  EXPECT_EQ(e.session_id, "5b2c1e44-0000-4000-8000-0000000000a1");
  EXPECT_NE(e.timestamp_ms, kNow);
}

TEST(SnowplowQueryTest, KeepsTheDecodedParametersWhenAsked) {
  MappingOptions options;
  options.keep_raw = true;
  auto result = DecodeSnowplowQuery(
      "e=pv&eid=q1&aid=shop1&duid=d-9&url=https%3A%2F%2Fshop.example%2Fproducts%2Fhat&page=A+hat",
      kNow, options);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->events.size(), 1u);
  EXPECT_EQ(result->events[0].raw,
            R"({"e":"pv","eid":"q1","aid":"shop1","duid":"d-9",)"
            R"("url":"https://shop.example/products/hat","page":"A hat"})");
}

TEST(SnowplowQueryTest, KeepsOnlyTheListedParametersTheFirstOfDuplicates) {
  MappingOptions options;
  options.keep_raw = true;
  options.raw_fields = std::vector<std::string>{"page", "url"};
  auto result = DecodeSnowplowQuery(
      "e=pv&eid=q1&aid=shop1&duid=d-9&url=https%3A%2F%2Fshop.example%2Fproducts%2Fhat&page=A+hat"
      "&page=again",
      kNow, options);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->events.size(), 1u);
  EXPECT_EQ(result->events[0].raw, R"({"url":"https://shop.example/products/hat","page":"A hat"})");
}

TEST(SnowplowQueryTest, DecodesEncodedJsonPlusAndLeadingQuestionMark) {
  std::string ue = Unstruct(kEcommerceAction, R"({"type":"add_to_cart"})");
  std::string co =
      Contexts(R"([{"schema":")" + std::string(kProduct) + R"(","data":{"id":"a b"}}])");
  auto encode = [](std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.') {
        out.push_back(static_cast<char>(c));
      } else {
        char buf[4];
        std::snprintf(buf, sizeof(buf), "%%%02X", c);
        out += buf;
      }
    }
    return out;
  };
  std::string query = "?e=ue&eid=q1&aid=shop+one&duid=d&ue_pr=" + encode(ue) + "&co=" + encode(co);
  auto result = DecodeSnowplowQuery(query, kNow, {});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->events.size(), 1u) << result->bad_rows[0].reason;
  EXPECT_EQ(result->events[0].type, EventType::kAddToCart);
  EXPECT_EQ(result->events[0].item_id, "a b");
  EXPECT_EQ(result->events[0].tenant, "shop one");
}

TEST(SnowplowQueryTest, InvalidQueryIsRequestError) {
  auto result = DecodeSnowplowQuery("e=pv&eid=%zz", kNow, {});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().reason, "invalid_query");
  EXPECT_EQ(result.status().field, "query");
}

TEST(SnowplowQueryTest, RejectedEventKeepsQueryAsPayload) {
  auto result = DecodeSnowplowQuery("e=pv&duid=d&aid=shop1", kNow, {});
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->bad_rows.size(), 1u);
  EXPECT_EQ(result->bad_rows[0].reason, "missing_field");
  EXPECT_EQ(result->bad_rows[0].field, "eid");
  EXPECT_EQ(result->bad_rows[0].payload, "e=pv&duid=d&aid=shop1");
  EXPECT_EQ(result->bad_rows[0].tenant, "shop1");
  auto base64 = DecodeSnowplowQuery("e=ue&eid=1&duid=d&ue_px=%21%21", kNow, {});
  ASSERT_EQ(base64->bad_rows.size(), 1u);
  EXPECT_EQ(base64->bad_rows[0].reason, "invalid_base64");
  EXPECT_EQ(base64->bad_rows[0].field, "ue_px");
}

}  // namespace
}  // namespace streamrec::collector
