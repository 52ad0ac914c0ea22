#include <gtest/gtest.h>

#include <string>

#include "collector/decode.h"

namespace streamrec::collector {
namespace {

using common::Code;
using events::EventType;

constexpr int64_t kNow = 1'800'000'000'000;

events::DecodeOutput MustDecode(std::string_view body, const MappingOptions& options = {}) {
  auto result = DecodeNativeJson(body, kNow, options);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? std::move(result).value() : events::DecodeOutput{};
}

// A single rejected event: its bad row.
events::BadRow MustReject(std::string_view body, const MappingOptions& options = {}) {
  auto out = MustDecode(body, options);
  EXPECT_TRUE(out.events.empty()) << body;
  EXPECT_EQ(out.bad_rows.size(), 1u) << body;
  return out.bad_rows.empty() ? events::BadRow{} : out.bad_rows[0];
}

TEST(NativeJsonTest, SingleObjectWithEveryField) {
  auto out = MustDecode(R"({"event_id":"e1","type":"add_to_cart","user_id":"u1","item_id":"i1",
      "timestamp":1700000000123,"tenant":"shop1","session_id":"s1",
      "properties":{ "price" : 12.5, "tags":["a", "b"] }})");
  ASSERT_TRUE(out.bad_rows.empty());
  ASSERT_EQ(out.events.size(), 1u);
  events::Event want{.event_id = "e1",
                     .tenant = "shop1",
                     .user_id = "u1",
                     .item_id = "i1",
                     .type = EventType::kAddToCart,
                     .timestamp_ms = 1'700'000'000'123,
                     .collector_ms = kNow,
                     .session_id = "s1",
                     .properties = R"({"price":12.5,"tags":["a","b"]})"};
  EXPECT_EQ(out.events[0], want);
}

TEST(NativeJsonTest, DefaultsAndNumericIds) {
  MappingOptions options;
  options.default_tenant = "main";
  auto out = MustDecode(
      R"({"event_id":"e1","type":"view","user_id":981,"item_id":12345,"session_id":null})",
      options);
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].tenant, "main");
  EXPECT_EQ(out.events[0].user_id, "981");
  EXPECT_EQ(out.events[0].item_id, "12345");
  EXPECT_EQ(out.events[0].timestamp_ms, kNow);  // absent timestamp
  EXPECT_EQ(out.events[0].session_id, "");
  EXPECT_EQ(out.events[0].properties, "");
}

TEST(NativeJsonTest, ArrayOfNYieldsNEventsInOrder) {
  std::string body = "[";
  for (int i = 0; i < 200; ++i) {
    body += (i ? "," : "") + std::string(R"({"event_id":"e)") + std::to_string(i) +
            R"(","type":"purchase","user_id":"u","item_id":")" + std::to_string(i) + "\"}";
  }
  body += "]";
  auto out = MustDecode(body);
  ASSERT_EQ(out.events.size(), 200u);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(out.events[i].event_id, "e" + std::to_string(i));
    EXPECT_EQ(out.events[i].item_id, std::to_string(i));
    EXPECT_EQ(out.events[i].type, EventType::kPurchase);
  }
}

TEST(NativeJsonTest, TimestampAsFloatingPointNumber) {
  auto out = MustDecode(R"({"event_id":"e","type":"other","user_id":"u","timestamp":1.7e12})");
  ASSERT_EQ(out.events.size(), 1u);
  EXPECT_EQ(out.events[0].timestamp_ms, 1'700'000'000'000);
}

TEST(NativeJsonTest, ItemRequiredOnlyForViewAndCartEvents) {
  for (std::string type : {"view", "add_to_cart", "remove_from_cart"}) {
    auto bad = MustReject(R"({"event_id":"e","type":")" + type + R"(","user_id":"u"})");
    EXPECT_EQ(bad.reason, "missing_field") << type;
    EXPECT_EQ(bad.field, "item_id") << type;
  }
  auto empty = MustReject(R"({"event_id":"e","type":"view","user_id":"u","item_id":""})");
  EXPECT_EQ(empty.field, "item_id");
  for (std::string type : {"purchase", "other"}) {
    auto out = MustDecode(R"({"event_id":"e","type":")" + type + R"(","user_id":"u"})");
    EXPECT_EQ(out.events.size(), 1u) << type;
  }
}

TEST(NativeJsonTest, MissingOrEmptyIds) {
  auto no_event_id = MustReject(R"({"type":"other","user_id":"u","tenant":"t"})");
  EXPECT_EQ(no_event_id.reason, "missing_field");
  EXPECT_EQ(no_event_id.field, "event_id");
  EXPECT_EQ(no_event_id.tenant, "t");
  EXPECT_EQ(no_event_id.payload, R"({"type":"other","user_id":"u","tenant":"t"})");
  auto empty_user = MustReject(R"({"event_id":"e","type":"other","user_id":""})");
  EXPECT_EQ(empty_user.reason, "missing_field");
  EXPECT_EQ(empty_user.field, "user_id");
  auto no_user = MustReject(R"({"event_id":"e","type":"other"})");
  EXPECT_EQ(no_user.field, "user_id");
  auto bool_user = MustReject(R"({"event_id":"e","type":"other","user_id":true})");
  EXPECT_EQ(bool_user.reason, "invalid_field");
  EXPECT_EQ(bool_user.field, "user_id");
}

TEST(NativeJsonTest, BadType) {
  for (std::string type : {R"("teleport")", R"("")", "3", R"("View")"}) {
    auto bad = MustReject(R"({"event_id":"e","user_id":"u","item_id":"i","type":)" + type + "}");
    EXPECT_EQ(bad.reason, "invalid_field") << type;
    EXPECT_EQ(bad.field, "type") << type;
  }
  auto missing = MustReject(R"({"event_id":"e","user_id":"u","item_id":"i"})");
  EXPECT_EQ(missing.reason, "missing_field");
  EXPECT_EQ(missing.field, "type");
}

TEST(NativeJsonTest, BadTimestamp) {
  for (std::string ts : {R"("1700000000000")", "-5", "true", "{}", "1e300"}) {
    auto bad =
        MustReject(R"({"event_id":"e","type":"other","user_id":"u","timestamp":)" + ts + "}");
    EXPECT_EQ(bad.reason, "invalid_field") << ts;
    EXPECT_EQ(bad.field, "timestamp") << ts;
  }
}

TEST(NativeJsonTest, PropertiesMustBeAnObject) {
  for (std::string props : {"[1]", R"("x")", "5"}) {
    auto bad =
        MustReject(R"({"event_id":"e","type":"other","user_id":"u","properties":)" + props + "}");
    EXPECT_EQ(bad.reason, "invalid_field") << props;
    EXPECT_EQ(bad.field, "properties") << props;
  }
}

TEST(NativeJsonTest, TenantChecks) {
  MappingOptions options;
  options.allowed_tenants = {"shop1"};
  auto bad =
      MustReject(R"({"event_id":"e","type":"other","user_id":"u","tenant":"shop2"})", options);
  EXPECT_EQ(bad.reason, "tenant_not_allowed");
  EXPECT_EQ(bad.field, "tenant");
  EXPECT_EQ(bad.tenant, "shop2");
  auto not_string = MustReject(R"({"event_id":"e","type":"other","user_id":"u","tenant":1})");
  EXPECT_EQ(not_string.field, "tenant");
  auto ok =
      MustDecode(R"({"event_id":"e","type":"other","user_id":"u","tenant":"shop1"})", options);
  EXPECT_EQ(ok.events.size(), 1u);
}

TEST(NativeJsonTest, MixedArrayKeepsGoodEvents) {
  auto out = MustDecode(R"([{"event_id":"a","type":"other","user_id":"u"}, 7,
      {"event_id":"b","type":"nope","user_id":"u"}, {"event_id":"c","type":"other","user_id":"u"}])");
  ASSERT_EQ(out.events.size(), 2u);
  EXPECT_EQ(out.events[0].event_id, "a");
  EXPECT_EQ(out.events[1].event_id, "c");
  ASSERT_EQ(out.bad_rows.size(), 2u);
  EXPECT_EQ(out.bad_rows[0].reason, "invalid_event");
  EXPECT_EQ(out.bad_rows[0].payload, "7");
  EXPECT_EQ(out.bad_rows[1].field, "type");
}

TEST(NativeJsonTest, RequestLevelErrors) {
  auto invalid = DecodeNativeJson(R"({"event_id":)", kNow, {});
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.status().code, Code::kInvalidArgument);
  EXPECT_EQ(invalid.status().reason, "invalid_json");
  EXPECT_EQ(invalid.status().field, "body");

  for (std::string body : {R"("event")", "42", "null"}) {
    auto shape = DecodeNativeJson(body, kNow, {});
    ASSERT_FALSE(shape.ok()) << body;
    EXPECT_EQ(shape.status().reason, "invalid_payload") << body;
  }

  MappingOptions options;
  options.max_batch_events = 2;
  auto large = DecodeNativeJson("[{},{},{}]", kNow, options);
  ASSERT_FALSE(large.ok());
  EXPECT_EQ(large.status().code, Code::kTooLarge);
  EXPECT_EQ(large.status().reason, "batch_too_large");

  auto empty = MustDecode("[]");
  EXPECT_TRUE(empty.events.empty());
  EXPECT_TRUE(empty.bad_rows.empty());
}

}  // namespace
}  // namespace streamrec::collector
