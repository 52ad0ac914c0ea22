#include "events/event.h"

#include <gtest/gtest.h>

namespace streamrec::events {
namespace {

TEST(EventCodecTest, RoundTripKeepsEveryField) {
  Event e{.event_id = "c6ef3124-b53a-4b13-a233-0088f79dcbcb",
          .tenant = "shop1",
          .user_id = "u-42",
          .item_id = "blue-shirt",
          .type = EventType::kAddToCart,
          .timestamp_ms = 1'700'000'000'123,
          .collector_ms = 1'700'000'000'456,
          .session_id = "s1",
          .properties = R"({"price":12.5})",
          .raw = R"({"e":"pv","url":"https://shop.example/products/blue-shirt"})"};
  auto decoded = DecodeEvent(EncodeEvent(e));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, e);
}

TEST(EventCodecTest, RecordsWithoutRawFieldsStayVersionOne) {
  // Version 1 is what binaries before raw fields read: a log without them can still be rolled back.
  Event plain{.event_id = "e1", .tenant = "shop1", .user_id = "u1", .item_id = "i1"};
  std::string bytes = EncodeEvent(plain);
  EXPECT_EQ(bytes[0], 1);
  auto decoded = DecodeEvent(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, plain);
  Event with_raw = plain;
  with_raw.raw = R"({"e":"pv"})";
  EXPECT_EQ(EncodeEvent(with_raw)[0], 2);
}

TEST(EventCodecTest, NegativeTimestampsAndEmptyFieldsRoundTrip) {
  Event e;
  e.timestamp_ms = -5;
  auto decoded = DecodeEvent(EncodeEvent(e));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, e);
}

TEST(EventCodecTest, TruncatedRecordIsAnError) {
  Event e{.event_id = "abc", .user_id = "user"};
  std::string bytes = EncodeEvent(e);
  bytes.resize(bytes.size() - 3);
  EXPECT_FALSE(DecodeEvent(bytes).ok());
  EXPECT_FALSE(DecodeEvent("").ok());
}

TEST(EventTypeTest, NamesRoundTrip) {
  for (auto t : {EventType::kView, EventType::kAddToCart, EventType::kPurchase,
                 EventType::kRemoveFromCart, EventType::kOther, EventType::kImpression,
                 EventType::kClick}) {
    EXPECT_EQ(ParseEventType(EventTypeName(t)), t);
  }
  EXPECT_FALSE(ParseEventType("teleport").has_value());
}

}  // namespace
}  // namespace streamrec::events
